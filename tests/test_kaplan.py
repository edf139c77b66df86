"""The Kaplan et al. (2020) law L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (issue 21)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import KAPLAN_TRUTH, PINNED, synthetic_sweep, true_loss

import bayesdistill as bd


@pytest.fixture(scope="module")
def kaplan_post():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        return bd.fit(synthetic_sweep("kaplan", seed=3), "kaplan", chains=2, draws=400, warmup=400, seed=0, **PINNED)


def test_registered_with_its_priors():
    law = bd.get_law("kaplan")
    assert law.params == ("N_c", "D_c", "alpha_N", "alpha_D")
    assert "kaplan" in bd.list_laws()
    theta = {k: np.asarray(v) for k, v in KAPLAN_TRUTH.items()}
    N, D = np.array([1e8, 1e9]), np.array([2e9, 2e10])
    np.testing.assert_allclose(np.asarray(law(theta, N, D)), true_loss("kaplan", KAPLAN_TRUTH, N, D), rtol=1e-5)


def test_recovers_the_coefficients(kaplan_post):
    """42 runs drawn from Kaplan et al.'s own fit with 1% noise: every coefficient inside its 95% interval."""
    s = kaplan_post.summary(prob=0.95)
    for name, value in KAPLAN_TRUTH.items():
        lo, hi = s.loc[name].iloc[3], s.loc[name].iloc[4]  # mean, sd, median, then the interval
        assert lo <= value <= hi, (name, lo, value, hi)
    # the exponents are the law's identified part: a few percent
    d = kaplan_post.draws(["alpha_N", "alpha_D"])
    assert np.std(d["alpha_N"]) / np.median(d["alpha_N"]) < 0.05


def test_compute_optimal_matches_the_closed_form(kaplan_post):
    """With C = 6ND the optimum minimises (N_c/N)^a + 6 D_c N / C: N* = (a N_c^a C / (6 D_c))^(1/(a+1)),
    a = alpha_N/alpha_D. The generic per-draw solver must find it."""
    opt = bd.compute_optimal(kaplan_post, [1e20, 1e22], accounting="6ND")
    d = kaplan_post.draws(["N_c", "D_c", "alpha_N", "alpha_D"])
    a = d["alpha_N"] / d["alpha_D"]
    for j, C in enumerate([1e20, 1e22]):
        exact = (a * d["N_c"] ** a * C / (6 * d["D_c"])) ** (1 / (a + 1))
        np.testing.assert_allclose(opt.N[:, j], exact, rtol=2e-3)


def test_save_load_predict(kaplan_post, tmp_path):
    loaded = bd.load(kaplan_post.save(tmp_path / "kaplan.nc"))
    assert loaded.law.name == "kaplan"
    N = np.array([3e8, 3e9])
    np.testing.assert_allclose(loaded.predict(N, 20 * N)["median"], kaplan_post.predict(N, 20 * N)["median"])
