"""Recipe comparison: the compute multiplier of recipe B over A (``bd.compare_recipes``), on known laws."""

from __future__ import annotations

import arviz_base as azb
import numpy as np
import pytest
from conftest import CHINCHILLA_TRUTH

import bayesdistill as bd
from bayesdistill.decisions.recipes import crossing, least_compute
from bayesdistill.inference.review import Review


def point_posterior(theta: dict, n: int = 40, spread: float = 0.0, seed: int = 0, name: str | None = None):
    """A Chinchilla posterior whose draws sit at ``theta`` (times lognormal jitter ``spread``)."""
    rng = np.random.default_rng(seed)
    draws = {k: (v * np.exp(spread * rng.standard_normal(n)))[None, :] for k, v in theta.items()}
    law = bd.get_law("chinchilla")
    post = bd.Posterior(azb.from_dict({"posterior": draws}), law, dict(law.priors), "normal", {"N": 0.0, "D": 0.0},
                        {"group": {"name": name}} if name else {})
    post._review = Review(())
    return post


def test_better_recipe_has_multiplier_above_one_everywhere():
    a = point_posterior(CHINCHILLA_TRUTH, name="a")
    b = point_posterior({**CHINCHILLA_TRUTH, "E": 1.7}, name="b")
    res = bd.compare_recipes(a, b, budgets=[1e20, 1e21, 1e22, 1e23])
    assert (res.a, res.b) == ("a", "b")
    assert np.all(res.table["multiplier"] > 1) and np.all(res.table["p_b_beats_a"] == 1.0)
    assert res.crossovers == [] and res.preferred() == ["b"] * 4
    # a lower irreducible loss matters more as the loss approaches it: the multiplier grows with budget
    assert np.all(np.diff(res.table["multiplier"].to_numpy()) > 0)
    back = bd.compare_recipes(b, a, budgets=[1e20, 1e21, 1e22, 1e23])
    assert np.all(back.table["multiplier"] < 1) and np.all(back.table["p_b_beats_a"] == 0.0)


def test_multiplier_is_exact_for_a_pure_compute_shift():
    """B = A with every run's loss that of A at twice the compute: (N, D) -> (sqrt 2 N, sqrt 2 D)."""
    t = CHINCHILLA_TRUTH
    k = np.sqrt(2.0)
    b = {**t, "A": t["A"] * k ** -t["alpha"], "B": t["B"] * k ** -t["beta"]}
    res = bd.compare_recipes(point_posterior(t), point_posterior(b), budgets=[1e20, 1e22])
    np.testing.assert_allclose(res.table["multiplier"], 2.0, rtol=0.01)


def test_crossover_when_the_better_recipe_changes():
    a = point_posterior(CHINCHILLA_TRUTH)
    b = point_posterior({**CHINCHILLA_TRUTH, "E": 1.6, "A": 3000.0})   # worse when small, better at scale
    C = np.logspace(17, 25, 17)
    res = bd.compare_recipes(a, b, budgets=C)
    assert len(res.crossovers) == 1
    c = res.crossovers[0]
    pref = res.preferred()
    assert pref[0] == "A" and pref[-1] == "B"
    la, lb = (bd.compute_optimal(p, [c / 1.2, c * 1.2], accounting="6ND").loss[0] for p in (a, b))
    assert lb[0] > la[0] and lb[1] < la[1]


def test_interval_and_probability_from_uncertain_draws():
    a = point_posterior(CHINCHILLA_TRUTH, n=400, spread=0.01, seed=1)
    b = point_posterior({**CHINCHILLA_TRUTH, "E": 1.78}, n=400, spread=0.01, seed=2)
    res = bd.compare_recipes(a, b, budgets=[1e21, 1e23], prob=0.9)
    t = res.table
    assert np.all(t["q05"] < t["multiplier"]) and np.all(t["multiplier"] < t["q95"])
    assert np.all((t["p_b_beats_a"] > 0.05) & (t["p_b_beats_a"] < 0.95))   # close recipes: not certain
    np.testing.assert_allclose(t["p_b_beats_a"], (res.multiplier > 1).mean(0), atol=0.01)
    assert "P(B beats A)" in repr(res) and res.to_dict()["table"][0]["budget"] == 1e21


def test_least_compute_and_crossing():
    logC = np.log([1.0, 10.0, 100.0])
    loss = np.array([[3.0, 2.0, 1.0], [3.0, 3.0, 3.0]])
    np.testing.assert_allclose(np.exp(least_compute(logC, loss, 2.5)), [np.sqrt(10.0), np.nan])
    np.testing.assert_allclose(np.exp(least_compute(logC, loss, np.array([[3.5, 1.0], [3.0, 0.5]]))),
                               [[1.0, 100.0], [1.0, np.nan]])
    assert np.isnan(crossing(logC, [0.0, 1.0, 2.0], 3.0))


def test_bad_recipe_input():
    a = point_posterior(CHINCHILLA_TRUTH)
    with pytest.raises(bd.BayesDistillError, match="budgets must be FLOP values"):
        bd.compare_recipes(a, a, budgets=[-1.0])
    with pytest.raises(bd.BayesDistillError, match="must be a supervised Posterior"):
        bd.compare_recipes("x", a)
    with pytest.raises(bd.BayesDistillError, match="posterior= must be a grouped fit"):
        bd.compare_recipes("x", "y", posterior=a)
