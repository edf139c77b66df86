"""Recovery of the distillation law on the full synthetic replica (slow: run with ``-m slow``).

The replica is SYNTHETIC (Table 6 laws plus 1% noise, ``bd.paper_sweep``); with the Table 6
prior preset and target_accept 0.99 the joint fit passes its review and every true coefficient
lies inside its 90% interval. With the default priors (default settings) every coefficient the
data identify (``Posterior.identification``) is recovered; depending on the seed the fit shows
0-3 divergences per 4,000 draws (0, 1, 3 for seeds 0, 1, 2 with chains on 2 cores), so its review
does not reliably pass: see the README, "Distillation".
A single sweep and seed: "every truth inside its 90% interval" is seed-sensitive by nature.
"""

from __future__ import annotations

import numpy as np
import pytest

import bayesdistill as bd
from bayesdistill.laws.distillation import TABLE6


@pytest.mark.slow
def test_replica_recovery_with_table6_preset():
    post = bd.fit(bd.paper_sweep(seed=0), law="distillation", priors=bd.paper_priors(),
                  target_accept=0.99, progress_bar=False, seed=0, chain_method="sequential")
    assert post.review().ok, str(post.review())
    s = post.summary()
    outside = {k: (v, s.loc[k, "q05"], s.loc[k, "q95"]) for k, v in TABLE6.items()
               if not s.loc[k, "q05"] <= v <= s.loc[k, "q95"]}
    assert not outside, outside
    # predictions at held-out configurations within 1% of the true law
    from bayesdistill.data.replica import student_loss, supervised_loss

    N_S, D_S, N_T = np.array([2.0e8, 7.0e8, 1.5e9]), np.array([8e9, 3e10, 6e10]), np.array([1e9, 3e9, 8e9])
    L_T = supervised_loss(N_T, 20 * N_T)
    pred = post.predict_student(N_S=N_S, D_S=D_S, L_T=L_T)
    np.testing.assert_allclose(pred["median"], student_loss(N_S, D_S, L_T), rtol=0.01)


@pytest.mark.slow
def test_replica_recovery_with_default_priors():
    import warnings

    from bayesdistill.data.replica import student_loss, supervised_loss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)  # a few divergences: see the module docstring
        post = bd.fit(bd.paper_sweep(seed=0), law="distillation", progress_bar=False, seed=0,
                      chain_method="sequential")
    checks = {c.name: c.value for c in post.review().checks}
    assert checks["max R-hat"] <= 1.01 and checks["min ESS bulk"] >= 400 and checks["divergences"] <= 5, checks
    s, ident = post.summary(), post.identification()
    identified = [k for k in TABLE6 if ident.loc[k, "identified"]]
    assert {"E", "alpha", "beta", "c0", "f1"} <= set(identified) and "B_prime" not in identified
    outside = {k: (TABLE6[k], s.loc[k, "q05"], s.loc[k, "q95"]) for k in identified
               if not s.loc[k, "q05"] <= TABLE6[k] <= s.loc[k, "q95"]}
    assert not outside, outside
    N_S, D_S, N_T = np.array([2.0e8, 7.0e8, 1.5e9]), np.array([8e9, 3e10, 6e10]), np.array([1e9, 3e9, 8e9])
    L_T = supervised_loss(N_T, 20 * N_T)
    pred = post.predict_student(N_S=N_S, D_S=D_S, L_T=L_T)
    np.testing.assert_allclose(pred["median"], student_loss(N_S, D_S, L_T), rtol=0.01)


@pytest.mark.slow
def test_few_runs_table6_preset_beats_default_priors():
    # 40 runs (15 supervised + 25 distillation) of the synthetic replica; held-out: 100 other
    # distillation runs, scored against the noise-free law. Measured: median relative error
    # 0.34% (preset) vs 0.51% (default); on another subset 0.16% vs 0.21%.
    import warnings

    import pandas as pd

    from bayesdistill.data.replica import student_loss

    df = bd.paper_sweep(seed=0)
    sup, dis = df[df.kind == "supervised"], df[df.kind == "distillation"]
    train = pd.concat([sup.sample(15, random_state=1), dis.sample(25, random_state=2)])
    held = dis.drop(train.index, errors="ignore").sample(100, random_state=3)
    truth = student_loss(held.N.values, held.D.values, held.L_T.values)
    err = {}
    for label, priors in (("default", None), ("preset", bd.paper_priors())):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bd.FitWarning)  # 2 x 500 draws: the review may fail
            post = bd.fit(train, law="distillation", priors=priors, chains=2, draws=500, warmup=500,
                          progress_bar=False, chain_method="sequential")
        pred = post.predict_student(N_S=held.N.values, D_S=held.D.values, L_T=held.L_T.values)
        err[label] = float(np.median(np.abs(pred["median"].to_numpy() / truth - 1)))
    assert err["preset"] < 0.01
    assert err["preset"] < 0.8 * err["default"], err
