"""Decisions under law uncertainty: ``bd.average`` (issue 21)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

import bayesdistill as bd
from bayesdistill.errors import BayesDistillError


@pytest.fixture(scope="module")
def pair(chinchilla_sweep, chinchilla_post):
    """The session's Chinchilla fit and a Busbridge fit of the same sweep."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        bus = bd.fit(chinchilla_sweep, "busbridge", seed=1, **FAST)
    return {"chinchilla": chinchilla_post, "busbridge": bus}


N = np.array([3e8, 1e10])  # inside the sweep, and ten times its largest model
D = 20 * N


def test_one_weight_is_that_posterior(pair):
    one = bd.average(pair, weights=[1.0, 0.0])
    assert one.n_draws == pair["chinchilla"].n_draws and one.names == ["chinchilla", "busbridge"]
    pd.testing.assert_frame_equal(one.predict(N, D), pair["chinchilla"].predict(N, D))
    a, b = bd.compute_optimal(one, [1e21]), bd.compute_optimal(pair["chinchilla"], [1e21])
    np.testing.assert_array_equal(a.N, b.N)


def test_a_mixture_carries_both_laws(pair):
    mix = bd.average(pair, weights=[1, 1])
    counts = mix.summary_dict()["draws"]
    assert abs(counts["chinchilla"] - counts["busbridge"]) <= 1 and mix.n_draws == sum(counts.values())
    law = {k: np.asarray(p.log_loss_draws(N, D)) for k, p in pair.items()}
    m = np.asarray(mix.log_loss_draws(N, D))
    assert m.shape == (mix.n_draws, 2)
    # every mixture draw is a draw of one of the laws, and the mixture's quantiles bracket both medians
    lo, hi = np.quantile(m, [0.05, 0.95], axis=0)
    for v in law.values():
        assert np.all(lo <= np.median(v, 0) + 1e-6) and np.all(np.median(v, 0) <= hi + 1e-6)
    opt = bd.compute_optimal(mix, [1e21, 1e22])
    assert opt.N.shape == (mix.n_draws, 2) and np.all(np.isfinite(opt.N))
    bands = mix.bands(N, D)
    assert np.all(bands["pred_q05"] <= bands["median"]) and np.all(bands["median"] <= bands["pred_q95"])


def test_stacking_weights_sum_to_one(pair):
    mix = bd.average(pair)  # stacking by default
    assert mix.method == "stacking" and mix.weights.sum() == pytest.approx(1.0)
    assert np.all((mix.weights >= 0) & (mix.weights <= 1))
    table = mix.weights_table()
    assert list(table.index) == ["chinchilla", "busbridge"] and table["draws"].sum() == mix.n_draws
    assert "weights by stacking" in repr(mix)


def test_bad_input_says_what_is_wrong(pair, busbridge_post):
    with pytest.raises(BayesDistillError, match="at least one posterior"):
        bd.average([])
    with pytest.raises(BayesDistillError, match="2 non-negative numbers"):
        bd.average(pair, weights=[1, -1])
    with pytest.raises(BayesDistillError, match="2 non-negative numbers"):
        bd.average(pair, weights=[1, 2, 3])
    with pytest.raises(BayesDistillError, match="not one of"):
        bd.average(pair, weights="bma")
    with pytest.raises(BayesDistillError, match="not a Posterior"):
        bd.average([pair["chinchilla"], "fit.nc"])
    with pytest.raises(BayesDistillError, match="distillation"):
        bd.average([bd.default_posterior()])
    with pytest.raises(BayesDistillError, match="other runs than item 0"):
        bd.average([pair["chinchilla"], busbridge_post])  # fitted to another sweep


def test_scores_of_a_mixture(pair, chinchilla_sweep):
    """The IsoFLOP scores take a mixture: its log score is the weighted mixture of the laws' densities."""
    from bayesdistill.inference.validation import held_out_log_score, score

    test = chinchilla_sweep.iloc[:5]
    N, D, y = (test[c].to_numpy(float) for c in ("N", "D", "loss"))
    one = bd.average(pair, weights=[1, 0])
    np.testing.assert_allclose(held_out_log_score(one, N, D, y), held_out_log_score(pair["chinchilla"], N, D, y))
    half = bd.average(pair, weights=[1, 1])
    each = [np.exp(held_out_log_score(p, N, D, y)) for p in pair.values()]
    np.testing.assert_allclose(np.exp(held_out_log_score(half, N, D, y)), 0.5 * (each[0] + each[1]), rtol=1e-6)
    s = score(half, test)
    assert s["n"] == 5 and 0 <= s["coverage90"] <= 1


# ------------------------------------------------------------ decisions over a mixture of distillation laws
STUDENT, BUDGET = 3e8, 1e21
DECIDE = {"n_candidates": 32}


@pytest.fixture(scope="module")
def distill_pair():
    """The shipped distillation fit and a copy whose irreducible loss E is 3% higher (a second 'law' of the
    same runs that predicts every loss higher); both taken as passing their review."""
    from bayesdistill.inference.posterior import Posterior
    from bayesdistill.inference.review import Review

    post = bd.default_posterior()
    idata = post.idata.copy(deep=True)
    idata.posterior["E"].values[...] *= 1.03
    high = Posterior(idata, post.law, post.priors, post.noise, post.centre, post.config)
    post._review = high._review = Review(())
    return {"shipped": post, "higher": high}


def _recommend(p):
    return bd.recommend(p, budget=BUDGET, student_size=STUDENT, scenarios=("teacher_inference",), **DECIDE)


def test_a_distillation_mixture_with_one_weight_decides_as_that_fit(distill_pair):
    one = bd.average(distill_pair, weights=[1, 0])
    assert one.is_distillation and one.n_draws == distill_pair["shipped"].n_draws
    a, b = _recommend(one), _recommend(distill_pair["shipped"])
    assert a.option == b.option and a.allocation == b.allocation and a.objective_value == b.objective_value
    np.testing.assert_array_equal(a.losses, b.losses)
    pd.testing.assert_frame_equal(a.options, b.options)
    kw = {"target_loss": 2.6, "student_size": STUDENT, "budgets": np.logspace(19, 24, 11)}
    pd.testing.assert_frame_equal(bd.least_budget(one, n_candidates=16, **kw),
                                  bd.least_budget(distill_pair["shipped"], n_candidates=16, **kw))
    ea, eb = bd.efficiency(one, **kw), bd.efficiency(distill_pair["shipped"], **kw)
    pd.testing.assert_frame_equal(ea[0], eb[0])


def test_a_distillation_mixture_decides_between_its_laws(distill_pair):
    recs = {k: _recommend(p) for k, p in distill_pair.items()}
    mix = bd.average(distill_pair, weights=[1, 1])
    rec = _recommend(mix)
    assert len(rec.losses) == mix.n_draws
    lo, hi = sorted(float(np.mean(r.losses)) for r in recs.values())
    assert lo < float(np.mean(rec.losses)) < hi  # the mixture's expected loss lies between the laws'
    assert recs["shipped"].objective_value < rec.objective_value < recs["higher"].objective_value
    # the budget to reach a loss with 90% probability: between the two laws' (within the grid's resolution)
    kw = {"target_loss": 2.45, "student_size": STUDENT, "budgets": np.logspace(19, 24, 31), "n_candidates": 16,
          "scenarios": ("teacher_inference",)}
    need = {k: float(bd.least_budget(p, **kw).loc["teacher_inference", "budget"]) for k, p in distill_pair.items()}
    mixed = float(bd.least_budget(mix, **kw).loc["teacher_inference", "budget"])
    assert need["shipped"] < need["higher"] and need["shipped"] * 0.99 <= mixed <= need["higher"] * 1.01, (need, mixed)
    summary, draws = bd.efficiency(mix, target_loss=2.6, student_size=STUDENT, budgets=np.logspace(19, 25, 25))
    assert len(draws) == mix.n_draws


def test_distillation_mixtures_refuse_what_they_cannot_mean(distill_pair, chinchilla_post):
    with pytest.raises(BayesDistillError, match="not both"):
        bd.average([distill_pair["shipped"], chinchilla_post])
    with pytest.raises(BayesDistillError, match="need the sweep"):
        bd.average(distill_pair, weights="evidence")
    with pytest.raises(BayesDistillError, match="not a mixture"):
        bd.value_of_information(bd.average(distill_pair, weights=[1, 1]), pd.DataFrame(
            {"N_S": [1e8], "D_S": [2e9], "N_T": [1e9], "D_T": [2e10]}), budget=BUDGET, student_size=STUDENT)
    with pytest.raises(BayesDistillError, match="distillation fit"):
        _recommend(bd.average([chinchilla_post]))


@pytest.mark.slow
def test_a_mixture_of_two_distillation_laws_fitted_to_one_sweep():
    """Two distillation laws with different coefficients (with and without the capacity gap) on the replica:
    stacking weights, and a recommendation whose losses are the mixture of the laws' own."""
    sweep = bd.paper_sweep(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        posts = {law: bd.fit(sweep, law, seed=0, **FAST) for law in ("distillation", "distillation_nobpl")}
    mix = bd.average(posts)
    assert mix.is_distillation and mix.weights.sum() == pytest.approx(1.0)
    by_evidence = bd.average(posts, weights="evidence", sweep=sweep)
    assert by_evidence.weights.sum() == pytest.approx(1.0) and np.all(np.isfinite(by_evidence.weights))
    assert [law.name for law in mix.laws] == [k for k, n in mix.summary_dict()["draws"].items() if n > 0]
    half = bd.average(posts, weights=[1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        rec = bd.recommend(half, budget=BUDGET, student_size=STUDENT, **DECIDE)
        each = [bd.recommend(p, budget=BUDGET, student_size=STUDENT, **DECIDE) for p in posts.values()]
    assert len(rec.losses) == half.n_draws and np.all(np.isfinite(rec.losses))
    lo, hi = sorted(float(np.mean(r.losses)) for r in each)
    assert lo - 0.01 <= float(np.mean(rec.losses)) <= hi + 0.01
