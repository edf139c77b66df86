"""The law's misfit beyond the fitted compute (``kappa``, ``omega``) and its population prior."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bayesdistill as bd
from bayesdistill.errors import BayesDistillError
from bayesdistill.inference import misfit as M
from bayesdistill.inference.model import misfit_sd
from bayesdistill.inference.population import fit_population


def _closed_form(r, v, a):
    """log N(r | 0, diag(v) + a a^T): the level-shared misfit with Gaussian noise, exactly."""
    cov = np.diag(v) + np.outer(a, a)
    sign, logdet = np.linalg.slogdet(cov)
    return -0.5 * (r @ np.linalg.solve(cov, r) + logdet + len(r) * np.log(2 * np.pi))


def test_quadrature_matches_the_closed_form_of_a_shared_gaussian_misfit():
    """With Gaussian noise the level-shared integral has a closed form (rank-one covariance); the
    adaptive Gauss-Hermite rule must match it on the whole grid, also where the misfit is 30x the noise."""
    rng = np.random.default_rng(0)
    n = 6
    e = np.linspace(0.05, 0.4, n)
    mu = rng.normal(0, 0.01, (1, n))
    scale = np.full((1, n), 0.003)
    y = 0.02 + 0.003 * rng.standard_normal(n)          # a level that sits 2% off the law
    ll = M.loglik_grid(y, mu, scale, None, e)
    for i in range(0, len(M.KAPPA_GRID), 6):
        for j in range(0, len(M.OMEGA_GRID), 5):
            a = misfit_sd(M.KAPPA_GRID[i], M.OMEGA_GRID[j], e)
            assert ll[i, j] == pytest.approx(_closed_form(y - mu[0], scale[0] ** 2, a), abs=1e-3)


def test_runs_inside_the_fitted_range_say_nothing_about_the_misfit():
    y = np.zeros(8)
    ll = M.loglik_grid(y, np.full((3, 8), 0.01), np.full((3, 8), 0.02), np.full(3, 5.0), np.zeros(8))
    np.testing.assert_allclose(ll, ll[0, 0])


def test_levels_that_miss_recover_the_random_walk_scale():
    """200 independent levels 0.1 decade out, each shifted as a whole by omega sqrt(e) z with omega =
    0.03 (noise 0.002): the summed evidence peaks near omega = 0.03 on the kappa = 0 edge."""
    rng = np.random.default_rng(1)
    e = np.full(5, 0.1)
    total = 0.0
    for _ in range(200):
        y = 0.03 * np.sqrt(0.1) * rng.standard_normal() + 0.002 * rng.standard_normal(5)
        total = total + M.loglik_grid(y, np.zeros((1, 5)), np.full((1, 5), 0.002), None, e)
    # the evidence is about the misfit sd a at e = 0.1 (kappa and omega trade along a ridge): its maximum
    i, j = np.unravel_index(np.argmax(total), total.shape)
    a = misfit_sd(M.KAPPA_GRID[i], M.OMEGA_GRID[j], 0.1)
    assert 0.8 * 0.03 * np.sqrt(0.1) < a < 1.2 * 0.03 * np.sqrt(0.1)


def test_one_level_is_one_observation_of_a_systematic_misfit():
    """Twenty runs that all miss by 1% are one draw of the shared misfit, not twenty: a misfit three
    times the best-supported one costs under 2.5 nats (one normal draw at a third of its sd), where
    twenty independent errors would rule it out by ~60."""
    e = np.full(20, 0.1)
    ll = M.loglik_grid(np.full(20, 0.01), np.zeros((1, 20)), np.full((1, 20), 0.002), None, e)[0]  # kappa = 0
    best = int(np.argmax(ll))
    three = int(np.argmin(np.abs(M.OMEGA_GRID - 3 * M.OMEGA_GRID[best])))
    assert 0.02 < M.OMEGA_GRID[best] < 0.05  # a = omega sqrt(0.1) ~ the 1% miss
    assert ll[best] - ll[three] < 2.5
    # the same runs scattered +-1% are not a shared misfit: they favour none
    scatter = M.loglik_grid(0.01 * np.tile([1, -1], 10), np.zeros((1, 20)), np.full((1, 20), 0.002), None, e)
    assert np.argmax(scatter[0]) == 0


def _peaked(omega0):
    ll = np.zeros((len(M.KAPPA_GRID), len(M.OMEGA_GRID)))
    return ll - 0.5 * ((M.OMEGA_GRID[None, :] - omega0) / 0.003) ** 2 - 0.5 * (M.KAPPA_GRID[:, None] / 0.003) ** 2


def test_population_follows_its_sweeps():
    big = fit_population({f"s{i}": _peaked(0.03) for i in range(6)})
    small = fit_population({f"s{i}": _peaked(0.0) for i in range(6)})
    assert 0.015 < big["predictive"]["omega"]["q50"] < 0.045
    assert small["predictive"]["omega"]["q90"] < big["predictive"]["omega"]["q50"]
    assert set(big["sweeps"]) == {f"s{i}" for i in range(6)}
    with pytest.raises(BayesDistillError, match="at least one sweep"):
        fit_population({})


def test_shipped_population_prior():
    pop = M.population()
    assert np.shape(pop["log_density"]) == (len(M.KAPPA_GRID), len(M.OMEGA_GRID))
    assert {"chinchilla_points", "gadre_c4 / rpj", "porian_rw_cosine", "olmo2_ladder"} <= set(pop["evidence"]) | set(
        pop["absent_sweeps"])
    mass = np.exp(M.log_mass(pop["log_density"]))
    assert mass.sum() == pytest.approx(1.0)
    assert 0 < pop["predictive"]["omega"]["q50"] < pop["predictive"]["omega"]["q90"] < 0.15


def test_missing_or_broken_population_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(BayesDistillError, match="missing.*make misfit-prior"):
        M.population(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BayesDistillError, match="cannot read.*make misfit-prior"):
        M.population(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"log_density": [[0.0]], "kappa_grid": [0.0], "omega_grid": [0.0]}))
    with pytest.raises(BayesDistillError, match="other grids"):
        M.population(other)


def test_user_priors_replace_the_population_marginal():
    both = M.log_prior_grid({"kappa": bd.Prior("population"), "omega": bd.Prior("population")})
    mine = M.log_prior_grid({"kappa": bd.Prior("halfnormal", {"scale": 0.01}), "omega": bd.Prior("population")})
    assert both.shape == mine.shape
    # the user's kappa prior: its density ratio along kappa is the half-normal's, at every omega
    ratio = mine[5, :] - mine[0, :]
    expected = -0.5 * (M.KAPPA_GRID[5] / 0.01) ** 2 + 0.5 * (1e-9 / 0.01) ** 2
    np.testing.assert_allclose(ratio, expected, atol=1e-4)
    # a fit saved before omega existed holds it at 0
    draws, info = M.misfit_draws(None, {"kappa": bd.Prior("halfnormal", {"scale": 0.02})}, 100, 0)
    assert np.all(draws["omega"] == 0) and np.all(draws["kappa"] >= 0)
