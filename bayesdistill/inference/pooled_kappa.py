"""``discrepancy="compute"`` for grouped fits: one ``kappa`` and ``omega`` shared by the groups.

The same leave-last-level-out as :func:`bayesdistill.inference.sampling.fit` uses for one sweep
(see :mod:`bayesdistill.inference.model`), done per group inside one inner fit: each group's runs
are binned into IsoFLOP levels (:func:`bayesdistill.inference.validation.compute_levels`), the
grouped ``distance`` model is refitted (the main fit's compiled sampler, the held-out runs masked
out) to every group's levels below its largest, and the largest level of every group, ``e_i``
decades of compute beyond that group's inner runs, gives the likelihood of one ``(kappa, omega)`` (the
groups share the inner draws, so their held-out runs enter one joint predictive density). A group
with one level, or too few runs below its largest, holds nothing out; when no group holds out,
``kappa`` and ``omega`` keep their prior (said in the config).
"""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np

from ..errors import SweepError
from .misfit import loglik_grid, misfit_draws
from .model import DISTANCE_KINDS, distance_geometry, distance_sq, noise_scale


def learn_group_kappa(rows, law, pri, noise, args, kwargs, run_inner, seed, n_draws, discrepancy="compute"):
    """Draws of the shared ``kappa`` and ``omega`` and how they were learnt (as :func:`.kappa.kappa_from_inner`).

    ``args`` are the pooled model's ``(logN, logD, code, centre)``; ``run_inner(args, kwargs)``
    returns draws of the inner posterior (site -> ``(S, ...)``), their weights (None: equal) and a
    dict saying how they were made.
    """
    from .validation import MIN_FIT_RUNS, compute_levels, log10_compute

    rows = rows.reset_index(drop=True)
    logN, logD, code, centre = args
    codes = np.asarray(code)
    n_groups = int(np.asarray(centre["loc_logN"]).shape[0])
    need = max(MIN_FIT_RUNS, len([k for k in pri if k in law.params]))
    inner, why = np.ones(len(rows), bool), []
    for g in range(n_groups):
        idx = np.flatnonzero(codes == g)
        try:
            levels = compute_levels(rows.iloc[idx])
        except SweepError as exc:
            why.append(f"group {g}: {exc}")
            continue
        below = levels < levels.max()
        if levels.max() == 0 or below.sum() < need:
            why.append(f"group {g}: {int(below.sum())} runs below its largest compute level, fewer than {need}")
            continue
        inner[idx[~below]] = False
    if inner.all():
        draws, summary = misfit_draws(None, pri, n_draws, seed)
        return draws, {"source": "prior: " + "; ".join(why), **summary}
    t0 = time.perf_counter()
    lN, lD = np.asarray(logN, float), np.asarray(logD, float)
    geo = [distance_geometry(lN[inner & (codes == g)], lD[inner & (codes == g)]) for g in range(n_groups)]
    inner_centre = {"N": float(lN[inner].mean()), "D": float(lD[inner].mean()), **{k: [x[k] for x in geo] for k in geo[0]}}
    arg = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in inner_centre.items()}
    draws, weights, how = run_inner((logN, logD, code, arg), {**kwargs, "mask": jnp.asarray(inner)})
    s = {k: np.asarray(v, dtype=float) for k, v in draws.items()}
    test = np.flatnonzero(~inner)
    g_test = codes[test]
    theta = {k: s[k][:, g_test] for k in law.params}                    # (draws, held-out runs)
    mu = np.asarray(law.log_loss(theta, lN[test][None, :], lD[test][None, :]), dtype=float)
    scale = s["sigma"][:, None] * np.ones_like(mu)
    if discrepancy in DISTANCE_KINDS:
        per_run = {k: np.asarray(v)[g_test] for k, v in inner_centre.items() if k not in ("N", "D")}
        scale = np.asarray(noise_scale(s["sigma"][:, None], s["tau"][:, None],
                                       distance_sq(lN[test], lD[test], per_run)[None, :]), dtype=float)
    c = log10_compute(rows)
    c_max = np.array([c[inner & (codes == g)].max() for g in range(n_groups)])
    e = np.maximum(0.0, c[test] - c_max[g_test])
    nu = s["nu"] if noise == "student_t" else None
    ll = loglik_grid(np.log(rows["loss"].to_numpy(float)[test]), mu, scale, nu, e, weights=weights, seed=seed)
    draws, summary = misfit_draws(ll, pri, n_draws, seed)
    info = {"source": "leave-last-level-out per group, shared kappa and omega", "inner_runs": int(inner.sum()),
            "held_out_runs": int((~inner).sum()), "held_out_decades": float(np.median(e)), **summary,
            **how, "inner_seconds": time.perf_counter() - t0, "loglik": np.round(ll, 4).tolist()}
    if why:
        info["groups_without_held_out"] = why
    return draws, info
