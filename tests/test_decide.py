"""Decisions under uncertainty: objectives, recommend, the dual, efficiency, value of information.

Most tests use the posterior shipped in ``models/`` (a converged joint fit to the
synthetic paper replica), so they exercise the artifact users get as well.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import bayesdistill as bd  # noqa: E402
from bayesdistill.decisions.objectives import cvar, get_objective  # noqa: E402
from bayesdistill.decisions.recommendation import losses_under_draws, pick  # noqa: E402
from bayesdistill.errors import BayesDistillError, FitWarning  # noqa: E402
from bayesdistill.inference.posterior import Posterior  # noqa: E402
from bayesdistill.inference.review import Check, Review  # noqa: E402
from bayesdistill.laws.flops import forward_flops  # noqa: E402
from bayesdistill.plots import decisions as plots_decide  # noqa: E402

FAST = {"n_candidates": 32}


@pytest.fixture(scope="module")
def post():
    return bd.default_posterior()


def _with_draws(post, fn):
    """A copy of ``post`` whose coefficient draws are ``fn(values)``; its review is taken as passed."""
    idata = post.idata.copy(deep=True)
    for k in post.law.params:
        idata.posterior[k].values[...] = fn(idata.posterior[k].values)
    p = Posterior(idata, post.law, post.priors, post.noise, post.centre, post.config)
    p._review = Review(())
    return p


@pytest.fixture(scope="module")
def point(post):
    """Every draw at the posterior mean: a point posterior."""
    return _with_draws(post, lambda v: np.full_like(v, v.mean()))


# ----------------------------------------------------------- objectives
def test_objectives_by_name():
    L = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    assert get_objective("mean")(L) == pytest.approx(4.0)
    assert get_objective("quantile:0.5")(L) == pytest.approx(3.0)
    assert get_objective("cvar:0.8")(L) == pytest.approx(10.0)
    assert cvar(L, 0.6) == pytest.approx(7.0)
    assert get_objective("p_target:3.5")(L) == pytest.approx(-0.6)
    assert get_objective(lambda x: x.max())(L) == 10.0


@pytest.mark.parametrize("bad", ["median", "quantile", "quantile:1.5", "cvar:x", "p_target:-1", 3])
def test_bad_objectives(bad):
    with pytest.raises(BayesDistillError, match="objective"):
        get_objective(bad)


def test_risk_averse_objective_picks_the_safer_option_when_means_tie():
    safe = np.full(1000, 2.0)
    risky = np.where(np.arange(1000) % 2 == 0, 1.9, 2.1)       # same mean, spread
    L = np.stack([risky, safe])
    assert get_objective("mean").matrix(L) == pytest.approx([2.0, 2.0])
    assert pick(L, get_objective("quantile:0.9")) == 1
    assert pick(L, get_objective("cvar:0.9")) == 1
    assert pick(L, get_objective("p_target:1.95")) == 0           # only the risky one can reach 1.95


def test_expected_loss_picks_the_candidate_nearest_the_posterior_mean():
    """Analytic: for loss (x - theta)^2 the expected loss is minimised at x = E[theta]."""
    theta = np.random.default_rng(0).normal(2.0, 0.5, 4000)
    xs = np.linspace(0, 4, 81)
    L = (xs[:, None] - theta[None, :]) ** 2
    assert xs[pick(L, get_objective("mean"))] == pytest.approx(theta.mean(), abs=0.026)


# ------------------------------------------------------------ recommend
def test_shipped_posterior_is_a_passing_synthetic_fit(post):
    assert post.is_distillation and post.review().ok
    assert post.config["synthetic"] is True and "SYNTHETIC" in post.config["source"]


def test_recommendation_spends_the_budget_and_reports_uncertainty(post):
    rec = bd.recommend(post, budget=1e22, student_size=1e9,
                       scenarios=("teacher_inference", "pretraining_inference", "supervised"), **FAST)
    assert rec.option in ("teacher_inference", "pretraining_inference", "supervised")
    a = rec.allocation
    assert a["flops_total"] == pytest.approx(1e22, rel=1e-4)
    assert rec.losses.shape == (post.n_draws,)
    s = rec.loss_summary
    assert s["q05"] < s["median"] < s["q95"]
    assert 0.0 <= rec.p_distill_beats_supervised <= 1.0 and rec.plugin_regret >= 0.0
    d = json.loads(json.dumps(rec.to_dict()))
    assert d["option"] == rec.option and len(d["options"]) == 3
    assert "Recommended" in str(rec) and "SYNTHETIC" in str(rec)


def test_supervised_only_has_the_closed_form_answer(post):
    rec = bd.recommend(post, budget=1e21, student_size=3e8, scenarios=("supervised",), **FAST)
    D = 1e21 / (3 * forward_flops(3e8))
    assert rec.option == "supervised" and rec.allocation["D_S"] == pytest.approx(D, rel=1e-4)
    direct = np.exp(np.asarray(post.log_loss_draws([3e8], [D])))[:, 0]
    np.testing.assert_allclose(rec.losses, direct, rtol=1e-5)
    assert np.isnan(rec.p_distill_beats_supervised)


def test_regret_is_zero_when_the_posterior_is_a_point(point):
    rec = bd.recommend(point, budget=1e21, student_size=3e8, scenarios=("teacher_inference", "supervised"), **FAST)
    assert rec.plugin_regret == pytest.approx(0.0, abs=5e-7)  # float32 losses ~2.40: one ulp is 2.4e-7
    assert rec.plugin["option"] == rec.option
    assert rec.p_distill_beats_supervised in (0.0, 1.0)
    assert np.ptp(rec.losses) == pytest.approx(0.0, abs=1e-5)


def test_risk_averse_recommendation_trades_mean_for_tail(post):
    kw = {"budget": 1e21, "student_size": 3e8, "scenarios": ("teacher_inference", "supervised"), **FAST}
    mean, q90 = bd.recommend(post, objective="mean", **kw), bd.recommend(post, objective="quantile:0.9", **kw)
    assert np.quantile(q90.losses, 0.9) <= np.quantile(mean.losses, 0.9) + 1e-7
    assert mean.losses.mean() <= q90.losses.mean() + 1e-7


def test_paper_findings_as_decisions(post):
    """Distillation from an existing teacher wins at small compute; training a teacher for one student loses."""
    small = bd.recommend(post, budget=1e19, student_size=3e8, scenarios=("teacher_inference", "supervised"), **FAST)
    assert small.option == "teacher_inference" and small.p_distill_beats_supervised > 0.9
    big = bd.recommend(post, budget=1e24, student_size=1e9, scenarios=("pretraining_inference", "supervised"), **FAST)
    assert big.option == "supervised" and big.p_distill_beats_supervised < 0.3


def test_same_seed_same_recommendation(post):
    kw = {"budget": 1e22, "student_size": 1e9, **FAST}
    assert bd.recommend(post, seed=3, **kw).to_dict() == bd.recommend(post, seed=3, **kw).to_dict()


def test_failed_review_warns_loudly_and_strict_refuses(post):
    bad = _with_draws(post, lambda v: v)
    bad._review = Review((Check("max R-hat", 1.2, "<= 1.01", False, "run longer"),))
    with pytest.warns(FitWarning, match="FAILED its review"):
        rec = bd.recommend(bad, budget=1e21, student_size=3e8, **FAST)
    assert not rec.review_ok and "FAILED its review" in str(rec)
    with pytest.raises(BayesDistillError, match="FAILED its review"):
        bd.recommend(bad, budget=1e21, student_size=3e8, strict=True, **FAST)


@pytest.mark.parametrize("kwargs, match", [
    ({"scenarios": ("teacher_magic",)}, "unknown scenarios"),
    ({"objective": "median"}, "unknown objective"),
    ({"n_candidates": 0}, "n_candidates"),
    ({"budget": -1.0}, "budget"),
    ({"student_size": 1e3}, "student_size"),
])
def test_recommend_errors(post, kwargs, match):
    with pytest.raises(BayesDistillError, match=match):
        bd.recommend(post, **{"budget": 1e21, "student_size": 3e8, **kwargs})


def test_recommend_needs_a_distillation_fit(post):
    sup = Posterior(post.idata, bd.get_law("busbridge"), post.priors, post.noise, post.centre, post.config)
    with pytest.raises(BayesDistillError, match="distillation fit"):
        bd.recommend(sup, budget=1e21, student_size=3e8)


def test_losses_under_draws_matches_student_predictions(post):
    alloc = {"D_S": np.array([2e10, 2e10]), "N_T": np.array([3e9, np.nan]), "D_T": np.array([6e10, np.nan])}
    L = losses_under_draws(post.law, {k: np.asarray(v) for k, v in post.theta().items()}, 1e9, alloc)
    stu = post.student_vs_supervised(1e9, 2e10, N_T=3e9, D_T=6e10)
    assert np.median(L[0]) == pytest.approx(stu["distill_median"].iloc[0], rel=1e-5)
    assert np.median(L[1]) == pytest.approx(stu["supervised_median"].iloc[0], rel=1e-5)


# ------------------------------------------------------ dual, efficiency
def test_least_budget_grows_with_the_required_probability(post):
    kw = {"target_loss": 2.6, "student_size": 3e8, "scenarios": ("teacher_inference", "supervised"),
          "budgets": np.logspace(19, 23, 9), "n_candidates": 16}
    lo, hi = bd.least_budget(post, p=0.5, **kw), bd.least_budget(post, p=0.95, **kw)
    assert lo["reached"].all()
    assert (hi["budget"] >= lo["budget"] * (1 - 1e-9)).all()
    impossible = bd.least_budget(post, **{**kw, "target_loss": 1.0})
    assert not impossible["reached"].any() and impossible["budget"].isna().all()


def test_efficiency_ratio_of_distillation(post):
    summary, draws = bd.efficiency(post, target_loss=2.6, student_size=3e8, budgets=np.logspace(18, 24, 13))
    assert set(summary.index) == {"compute_ratio", "token_ratio"}
    assert len(draws) == post.n_draws
    # an existing teacher makes a small student cheaper to reach a modest target
    assert summary.loc["compute_ratio", "median"] > 1 and summary.loc["compute_ratio", "p_gt_1"] > 0.9
    with pytest.raises(BayesDistillError, match="distillation scenario"):
        bd.efficiency(post, target_loss=2.6, student_size=3e8, scenario="supervised")
    with pytest.raises(BayesDistillError, match="target_loss"):
        bd.efficiency(post, target_loss="low", student_size=3e8)


# ------------------------------------------------ value of information
def test_value_of_information_ranks_runs(post):
    far = {"kind": "distillation", "N_S": 3e8, "D_S": 3e12, "N_T": 3e9, "D_T": 6e11}
    runs = [{"kind": "supervised", "N": 3e8, "D": 6e9},          # inside the sweep: little to learn
            {"kind": "supervised", "N": 3e9, "D": 6e11},         # beyond it: moves the decision
            far, {**far, "flops": 1e25}]
    v = bd.value_of_information(post, runs, budget=1e23, student_size=3e8,
                                scenarios=("teacher_inference", "supervised"), n_outcomes=64, n_candidates=16)
    assert list(v.columns).count("flops") == 1
    assert list(v["evsi_per_eflop"]) == sorted(v["evsi_per_eflop"], reverse=True)
    assert (v["evsi"] >= 0).all() and (v["weights_ess"] > 1).all()
    assert v.loc[1, "evsi"] > 10 * v.loc[0, "evsi"] and v.loc[1, "p_decision_changes"] > 0.1
    assert v.loc[2, "evsi"] == v.loc[3, "evsi"]                 # same run, same simulated outcomes
    assert v.loc[3, "flops"] == 1e25 and v.index[-1] == 3        # its price ranks it last
    with pytest.raises(BayesDistillError, match="kind"):
        bd.value_of_information(post, [{"kind": "rl", "N": 1e8, "D": 1e9}], budget=1e21, student_size=3e8)
    with pytest.raises(BayesDistillError, match="teacher"):
        bd.value_of_information(post, [{"kind": "distillation", "N_S": 1e8, "D_S": 1e9}], budget=1e21,
                                student_size=3e8)


# ----------------------------------------------------------------- plots
def test_decision_plots(post):
    rec = bd.recommend(post, budget=1e21, student_size=3e8, **FAST)
    figs = [plots_decide.plot_option_losses(rec),
            plots_decide.plot_shares(post, student_size=3e8, budgets=np.logspace(20, 24, 5)),
            plots_decide.plot_distill_map(post, sizes=np.logspace(8, 9.5, 3), budgets=np.logspace(20, 24, 3))]
    assert all(isinstance(f, Figure) for f in figs)


# ------------------------------------------------------------------- CLI
def _cli(*args):
    return subprocess.run([sys.executable, "-m", "bayesdistill.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_recommend_answers_from_the_shipped_posterior():
    r = _cli("recommend", "--budget", "1e22", "--student-size", "1e9", "--candidates", "32", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["option"] in ("pretraining_inference", "supervised") and "SYNTHETIC" in d["posterior"]
    r = _cli("recommend", "--budget", "1e22", "--student-size", "1e9", "--candidates", "32")
    assert r.returncode == 0 and "Recommended" in r.stdout and "Every option" in r.stdout


def test_cli_optimal_distillation():
    r = _cli("optimal", "--budget", "1e21", "--student-size", "3e8", "--scenarios", "teacher_inference",
             "supervised", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["allocations"]
    assert [x["scenario"] for x in rows] == ["teacher_inference", "supervised"]
    assert rows[0]["D_T_median"] == pytest.approx(1e17, rel=1e-3)     # teacher inference: D_T to its bound
    r = _cli("optimal", "--budget", "1e21")
    assert r.returncode == 2 and "posterior FILE" in r.stderr


def test_warnings_are_not_swallowed(post):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bd.recommend(post, budget=1e21, student_size=3e8, **FAST)   # a passing fit warns about nothing
