"""Compute-optimal allocation: closed forms, accounting, the 1-D minimiser, budgets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import true_loss
from scipy.optimize import minimize_scalar

import bayesdistill as bd
from bayesdistill.allocation.search import BOUNDS, bisect_min
from bayesdistill.allocation.supervised import compute_optimal
from bayesdistill.errors import BayesDistillError
from bayesdistill.laws.flops import forward_flops, supervised_flops, tokens_for_budget

#: Hoffmann et al. (2022), approach 3
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
BUDGETS = np.array([1e19, 1e21, 1e23])


class FakePosterior:
    """The two things compute_optimal needs from a Posterior: ``law`` and ``theta()``.

    Draws are made JAX arrays at call time, so under ``jax.enable_x64`` they are float64.
    """

    def __init__(self, theta: dict, law: str = "chinchilla"):
        self.law = bd.get_law(law)
        self._theta = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in theta.items()}

    def theta(self):
        return {k: jnp.asarray(v) for k, v in self._theta.items()}


@pytest.fixture(scope="module")
def draws() -> dict:
    """40 plausible Chinchilla coefficient draws."""
    rng = np.random.default_rng(0)
    n = 40
    return {"E": rng.uniform(1.5, 2.0, n), "A": rng.uniform(200, 1000, n), "B": rng.uniform(300, 3000, n),
            "alpha": rng.uniform(0.25, 0.45, n), "beta": rng.uniform(0.25, 0.45, n)}


def closed_form_6nd(theta: dict, C) -> tuple[np.ndarray, np.ndarray]:
    """Chinchilla optimum under C = 6ND: N* = G (C/6)^a, D* = C / (6 N*); shape (draws, budgets)."""
    al, be = (np.atleast_1d(theta[k])[:, None] for k in ("alpha", "beta"))
    A, B = (np.atleast_1d(theta[k])[:, None] for k in ("A", "B"))
    G = (al * A / (be * B)) ** (1 / (al + be))
    N = G * (np.asarray(C, float)[None, :] / 6) ** (be / (al + be))
    return N, np.asarray(C, float)[None, :] / (6 * N)


def chinchilla_loss(theta, N, D):
    return theta["E"] + theta["A"] * N ** -theta["alpha"] + theta["B"] * D ** -theta["beta"]


# ------------------------------------------------------------ 6ND closed form


def test_6nd_matches_closed_form_in_float64(draws):
    with jax.enable_x64(True):
        co = compute_optimal(FakePosterior(draws), BUDGETS, accounting="6ND")
    N, D = closed_form_6nd(draws, BUDGETS)
    assert co.N.shape == co.D.shape == co.loss.shape == (40, 3)
    np.testing.assert_allclose(co.N, N, rtol=1e-5)
    np.testing.assert_allclose(co.D, D, rtol=1e-5)
    np.testing.assert_allclose(co.loss, chinchilla_loss({k: v[:, None] for k, v in draws.items()}, N, D),
                               rtol=1e-9)
    np.testing.assert_allclose(co.a, draws["beta"] / (draws["alpha"] + draws["beta"]), atol=1e-6)
    np.testing.assert_allclose(co.b, draws["alpha"] / (draws["alpha"] + draws["beta"]), atol=1e-6)


def test_6nd_matches_closed_form_default_precision(draws):
    # default JAX float32: agreement within 2% (the test below asks for 1e-3)
    co = compute_optimal(FakePosterior(draws), BUDGETS, accounting="6ND")
    N, D = closed_form_6nd(draws, BUDGETS)
    np.testing.assert_allclose(co.N, N, rtol=2e-2)
    np.testing.assert_allclose(co.D * 6 * co.N, np.broadcast_to(BUDGETS, co.N.shape), rtol=1e-5)
    np.testing.assert_allclose(co.a, draws["beta"] / (draws["alpha"] + draws["beta"]), atol=2e-3)
    np.testing.assert_allclose(co.b, draws["alpha"] / (draws["alpha"] + draws["beta"]), atol=2e-3)
    assert np.all(co.a + co.b == pytest.approx(1.0, abs=1e-4))


def test_6nd_matches_closed_form_to_one_permille_default_precision(draws):
    co = compute_optimal(FakePosterior(draws), BUDGETS, accounting="6ND")
    N, _ = closed_form_6nd(draws, BUDGETS)
    np.testing.assert_allclose(co.N, N, rtol=1e-3)


def test_exponents_over_a_single_budget_use_default_span(draws):
    with jax.enable_x64(True):
        co = compute_optimal(FakePosterior(draws), 1e21, accounting="6ND")
    assert co.N.shape == (40, 1)
    # the slope is taken over 1e18..1e24 FLOPs; only draws whose optimum stays inside the
    # bounds on N and D over that span have an exact power law
    N, D = closed_form_6nd(draws, np.logspace(18, 24, 7))
    inside = np.all((N > BOUNDS[0]) & (D > BOUNDS[0]) & (N < BOUNDS[1]), axis=1)
    assert inside.sum() >= 30
    np.testing.assert_allclose(co.a[inside], (draws["beta"] / (draws["alpha"] + draws["beta"]))[inside],
                               atol=1e-6)


def test_hoffmann_chinchilla_point():
    C = 5.76e23  # Chinchilla's training budget
    N_cf, D_cf = closed_form_6nd(HOFFMANN, [C])
    with jax.enable_x64(True):
        co = compute_optimal(FakePosterior(HOFFMANN), C, accounting="6ND")
    assert co.N[0, 0] == pytest.approx(N_cf[0, 0], rel=1e-5)
    assert co.D[0, 0] == pytest.approx(D_cf[0, 0], rel=1e-5)
    # tens of billions of parameters, trillions of tokens
    assert 1e10 < co.N[0, 0] < 1e11
    assert 1e12 < co.D[0, 0] < 1e13
    assert co.a[0] == pytest.approx(0.28 / 0.62, abs=1e-6)
    # default precision: same point within float32 accuracy
    co32 = compute_optimal(FakePosterior(HOFFMANN), C, accounting="6ND")
    assert co32.N[0, 0] == pytest.approx(N_cf[0, 0], rel=2e-2)


# ------------------------------------------------------- paper accounting


def test_paper_accounting_spends_the_budget(draws):
    co = compute_optimal(FakePosterior(draws), BUDGETS)  # default accounting is the paper's
    assert co.accounting == "paper"
    C = np.broadcast_to(BUDGETS, co.N.shape)
    np.testing.assert_allclose(3 * forward_flops(co.N) * co.D, C, rtol=1e-5)
    np.testing.assert_allclose(co.D, tokens_for_budget(co.N, C), rtol=1e-5)
    np.testing.assert_allclose(supervised_flops(co.N, co.D), C, rtol=1e-5)
    # F(N) > 2N: the paper's accounting affords fewer tokens than 6ND at the same N
    assert np.all(co.D < C / (6 * co.N))


def test_optimum_is_a_minimum_of_the_loss_along_the_budget(draws):
    with jax.enable_x64(True):
        co = compute_optimal(FakePosterior(draws), BUDGETS)
    th = {k: v[:, None] for k, v in draws.items()}
    C = BUDGETS[None, :]
    for factor in (0.9, 1.1, 0.5, 2.0):
        N = co.N * factor
        assert np.all(chinchilla_loss(th, N, tokens_for_budget(N, C)) > co.loss)


@pytest.mark.parametrize("law", ["chinchilla", "busbridge"])
def test_bisection_agrees_with_scipy(draws, law):
    theta = {**draws, "gamma": np.linspace(0.7, 1.2, 40)} if law == "busbridge" else draws
    post = FakePosterior(theta, law)
    with jax.enable_x64(True):
        co = compute_optimal(post, BUDGETS)
    co32 = compute_optimal(post, BUDGETS)
    for i in (0, 7, 23, 39):
        th = {k: float(v[i]) for k, v in theta.items()}
        for j, C in enumerate(BUDGETS):
            def f(x, th=th, C=C):  # numpy float64 objective, independent of the package's law code
                N = np.exp(x)
                return np.log(true_loss(law, th, N, tokens_for_budget(N, C)))

            res = minimize_scalar(f, bounds=(np.log(BOUNDS[0]), np.log(C / (6 * BOUNDS[0]))), method="bounded",
                                  options={"xatol": 1e-10})
            assert co.N[i, j] == pytest.approx(np.exp(res.x), rel=1e-5)
            assert co32.N[i, j] == pytest.approx(np.exp(res.x), rel=2e-2)


def test_bisect_min_vectorised():
    lo, hi = jnp.zeros(4), jnp.full(4, 10.0)
    target = jnp.array([0.5, 3.0, 7.25, 9.9])
    x = bisect_min(lambda x: (x - target) ** 2, lo, hi)
    np.testing.assert_allclose(np.asarray(x), np.asarray(target), atol=1e-4)
    # a monotone objective ends at the boundary
    x = bisect_min(lambda x: -x, lo, hi)
    np.testing.assert_allclose(np.asarray(x), 10.0, atol=1e-4)


def test_compute_optimal_on_a_fitted_posterior(chinchilla_post):
    co = compute_optimal(chinchilla_post, [1e20, 1e22], accounting="6ND")
    th = chinchilla_post.draws(["A", "B", "alpha", "beta"])
    assert co.N.shape == (chinchilla_post.n_draws, 2)
    N, _ = closed_form_6nd(th, [1e20, 1e22])
    np.testing.assert_allclose(co.N, N, rtol=2e-2)
    assert np.all(np.diff(co.N, axis=1) > 0) and np.all(np.diff(co.D, axis=1) > 0)
    assert np.all(np.diff(co.loss, axis=1) < 0)  # more compute, lower loss


def test_summary_and_exponents(draws):
    co = compute_optimal(FakePosterior(draws), BUDGETS)
    s = co.summary()
    assert list(s["budget"]) == list(BUDGETS)
    for name in ("N", "D", "tokens_per_param", "loss"):
        assert np.all(s[f"{name}_q05"] <= s[f"{name}_median"])
        assert np.all(s[f"{name}_median"] <= s[f"{name}_q95"])
    np.testing.assert_allclose(s["N_median"], np.median(co.N, 0))
    assert np.all(s["bound_hit"] == 0.0)
    e = co.exponents()
    assert list(e.index) == ["a", "b"]
    assert e.loc["a", "mean"] == pytest.approx(co.a.mean())
    d = co.to_dict()
    assert d["accounting"] == "paper" and len(d["allocations"]) == 3


def test_bound_hit_reported_when_optimum_is_below_the_bounds():
    # at 1e13 FLOPs the 6ND optimum of the Hoffmann fit is N* ~ 4e5 < 1e6
    N_cf, _ = closed_form_6nd(HOFFMANN, [1e13])
    assert N_cf[0, 0] < BOUNDS[0]
    co = compute_optimal(FakePosterior(HOFFMANN), 1e13, accounting="6ND")
    assert co.N[0, 0] == pytest.approx(BOUNDS[0], rel=1e-3)
    assert co.summary()["bound_hit"].iloc[0] == 1.0


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize("budget, fragment", [
    (-1e21, "positive finite"),
    (0.0, "positive finite"),
    (np.nan, "positive finite"),
    (np.inf, "positive finite"),
    ([1e21, -1.0], "positive finite"),
    ([[1e21, 1e22]], "positive finite"),
    (1e12, "below the smallest allocation"),
])
def test_bad_budgets(budget, fragment):
    with pytest.raises(BayesDistillError, match=fragment):
        compute_optimal(FakePosterior(HOFFMANN), budget, accounting="6ND")


def test_unknown_accounting():
    with pytest.raises(BayesDistillError, match="unknown accounting 'flops'"):
        compute_optimal(FakePosterior(HOFFMANN), 1e21, accounting="flops")
