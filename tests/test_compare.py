"""bd.compare: columns, evidence ranking on synthetic sweeps, error paths, CLI (issue 5)."""

from __future__ import annotations

import argparse
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import BUSBRIDGE_TRUTH, FAST, quiet_fit, synthetic_sweep

import bayesdistill as bd
from bayesdistill.cli.comparison import add_compare_parser, run_compare
from bayesdistill.inference.comparison import COLUMNS, compare, log_evidence
from bayesdistill.inference.evidence import EvidenceWarning

#: a Busbridge truth with gamma clearly below 1, on the conftest grid widened to 3e9 parameters
GAMMA_TRUTH = dict(BUSBRIDGE_TRUTH, gamma=0.5)
SIZES = np.geomspace(1e7, 3e9, 8)
#: the conftest's small sampler settings (compilations shared with the other tests)
TINY = {k: v for k, v in FAST.items() if k != "progress_bar"}
LEAN = {**TINY, "smc": False, "extrapolation": False, "prior_sensitivity": False}


def quiet(fn, *args, **kwargs):
    """Run ``fn`` tolerating the FitWarnings of tiny fits; returns (result, EvidenceWarnings raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", bd.FitWarning)
        warnings.simplefilter("always", EvidenceWarning)
        out = fn(*args, **kwargs)
    return out, [w for w in caught if issubclass(w.category, EvidenceWarning)]


def busbridge_truth(seed=0):
    return synthetic_sweep("busbridge", GAMMA_TRUTH, sizes=SIZES, seed=seed)


def chinchilla_truth(seed=0):
    return synthetic_sweep("chinchilla", sizes=SIZES, seed=seed)


@pytest.fixture(scope="module")
def compared():
    """(table, EvidenceWarnings) of both supervised laws on a Busbridge-truth sweep, tiny settings.

    Six fits, SMC and bridge sampling for two laws: ~2 min of compilation, so the tests on it are
    slow; ``test_every_column_on_one_law`` runs every estimator in the default suite.
    """
    return quiet(compare, busbridge_truth(), ["chinchilla", "busbridge"], smc_particles=300, smc_seeds=4, **TINY)


@pytest.fixture(scope="module")
def table(compared):
    return compared[0]


def test_every_column_on_one_law(chinchilla_sweep):
    """Every estimator (bridge, SMC, Laplace, wide priors, LOO, the extrapolation refit) on one law."""
    table, _ = quiet(compare, chinchilla_sweep, ["chinchilla"], smc_particles=100, smc_seeds=2, **TINY)
    assert list(table.columns) == COLUMNS and list(table.index) == ["chinchilla"]
    assert table[[c for c in COLUMNS if c != "pareto_k_bad"]].notna().all().all(), table.T
    assert table["weight"].iloc[0] == pytest.approx(1.0) and table["p_model"].iloc[0] == pytest.approx(1.0)
    assert table.attrs["runs"] == 42 and table.attrs["holdout"]["held_out_runs"] > 0


@pytest.mark.slow
def test_columns_and_index(table):
    assert list(table.columns) == COLUMNS
    assert list(table.index) == ["chinchilla", "busbridge"] and table.index.name == "law"
    assert table[[c for c in COLUMNS if c != "pareto_k_bad"]].notna().all().all()
    assert table["weight"].sum() == pytest.approx(1.0, abs=1e-6)
    assert table["p_model"].sum() == pytest.approx(1.0)
    assert table["log_bf"].max() == 0.0
    assert (table["log_z_se"] < 0.3).all() and (table["log_z_smc_se"] < 0.3).all()
    assert table.attrs["holdout"]["held_out_runs"] == 14 and table.attrs["runs"] == 56
    assert "log loss" in table.attrs["observed"]


@pytest.mark.slow
def test_true_variant_has_highest_evidence(table):
    assert table["log_z"].idxmax() == "busbridge"
    assert table.loc["chinchilla", "log_bf"] < -2.3  # at least 10:1
    assert table["extrap_lpd"].idxmax() == "busbridge"


@pytest.mark.slow
def test_estimators_agree(compared):
    table, warned = compared
    # 300 particles and 200 draws per chain: looser than the defaults (benchmarks/bench_compare.py)
    assert (abs(table["log_z"] - table["log_z_smc"]) < 0.6).all(), table[["log_z", "log_z_smc"]]
    assert all("disagree" in str(w.message) for w in warned)
    assert (abs(table["log_z"] - table["log_z_laplace"]) < 2.0).all()  # a rough sanity value
    assert (abs(table["log_z_wide"] - table["log_z"]) < 10).all()


def test_error_paths():
    sweep = chinchilla_truth()
    with pytest.raises(bd.LawError, match="unknown law"):
        compare(sweep, ["chinchilla", "gompertz"])
    with pytest.raises(bd.LawError, match="improper"):
        compare(sweep, ["chinchilla"], priors={"E": ("uniform", 0.0, math.inf)})
    with pytest.raises(bd.LawError, match="supervised laws with distillation laws"):
        compare(sweep, ["chinchilla", "distillation"])
    with pytest.raises(bd.SweepError, match="needs distillation runs"):
        compare(sweep, ["distillation", "distillation_nobpl"])
    with pytest.raises(bd.LawError, match="not distinct"):
        compare(sweep, ["chinchilla", "chinchilla:student_t"])
    with pytest.raises(bd.LawError, match="at least one law"):
        compare(sweep, [])
    with pytest.raises(bd.LawError, match="holdout_quantile"):
        compare(sweep, ["chinchilla"], holdout_quantile=1.0)
    with pytest.raises(bd.LawError, match="unknown noise"):
        compare(sweep, ["chinchilla:cauchy"])
    with pytest.raises(bd.SweepError, match="extrapolation refit"):
        compare(sweep.iloc[:12], ["chinchilla"], holdout_quantile=0.5)


def test_variant_labels():
    from bayesdistill.inference.comparison import _variants

    v = _variants(["chinchilla", ("chinchilla", "normal"), {"law": "busbridge", "label": "gamma law"}],
                  "student_t", None, "distance")
    assert [x["label"] for x in v] == ["chinchilla:student_t", "chinchilla:normal", "gamma law"]
    assert [x["noise"] for x in v] == ["student_t", "normal", "student_t"]


def test_evidence_of_a_posterior(chinchilla_sweep):
    post = quiet_fit(chinchilla_sweep, "chinchilla")
    out = log_evidence(post, chinchilla_sweep)
    assert np.isfinite(out["log_z"]) and 0 < out["log_z_se"] < 0.3
    assert abs(out["log_z"] - out["log_z_laplace"]) < 2.0
    with pytest.raises(bd.LawError, match="not fitted to this sweep"):
        log_evidence(post, chinchilla_sweep.iloc[:-3])


def test_cli_compare_json(tmp_path, capsys, chinchilla_sweep):
    """The CLI on a Chinchilla-truth sweep: the true variant has the highest evidence here too."""
    path = tmp_path / "runs.csv"
    chinchilla_sweep.to_csv(path, index=False)
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    add_compare_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--json", "compare", str(path), "--laws", "chinchilla", "busbridge",
                              "--chains", "2", "--draws", "200", "--warmup", "200", "--no-smc",
                              "--no-extrapolation", "--no-prior-sensitivity", "--no-retry"])
    assert args.func is run_compare
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=bd.FitWarning)
        assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["columns"] == COLUMNS and set(out["table"]) == {"chinchilla", "busbridge"}
    best = pd.DataFrame(out["table"]).T["log_z"].astype(float).idxmax()
    assert best == "chinchilla"


def test_keep_fits_returns_the_posteriors(chinchilla_sweep):
    """keep_fits=True: the same table, with the fits, the refits without the held-out runs and the pointwise LOO."""
    res, _ = quiet(compare, chinchilla_sweep, ["chinchilla", "chinchilla:normal"], keep_fits=True,
                   **{**LEAN, "extrapolation": True})
    assert isinstance(res, bd.inference.LawComparison) and list(res.table.columns) == COLUMNS
    assert list(res.fits) == list(res.refits) == list(res.loo) == list(res.table.index)
    held = int(res.held_out.sum())
    assert held == res.table.attrs["holdout"]["held_out_runs"] > 0
    for label, post in res.fits.items():
        assert isinstance(post, bd.Posterior) and post.noise == label.split(":")[1]
        assert len(post.data) == 42 and len(res.refits[label].data) == 42 - held
        assert float(res.loo[label].elpd) == pytest.approx(res.table.loc[label, "elpd_loo"])
        assert len(res.loo[label].elpd_i) == 42
    mix = bd.average(res.fits, weights="stacking")
    np.testing.assert_allclose(mix.weights, res.table["weight"].to_numpy(float), atol=1e-6)
    assert "2 refits without the" in repr(res)


def _compare_args(path, *extra):
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    add_compare_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["--json", "compare", str(path), "--laws", "chinchilla", "busbridge", "--chains", "2",
                              "--draws", "200", "--warmup", "200", "--no-smc", "--no-extrapolation",
                              "--no-prior-sensitivity", "--no-retry", *extra])


def test_cli_compare_average(tmp_path, capsys, chinchilla_sweep):
    """--average: the table's weights, each law's and the mixture's compute-optimal N*, D*, loss at the budget."""
    path = tmp_path / "runs.csv"
    chinchilla_sweep.to_csv(path, index=False)
    args = _compare_args(path, "--average", "evidence")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=bd.FitWarning)
        assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    av, table = out["average"], pd.DataFrame(out["table"]).T
    assert av["method"] == "evidence" and set(av["weights"]) == {"chinchilla", "busbridge"}
    for k, w in av["weights"].items():
        assert w == pytest.approx(float(table.loc[k, "p_model"]), abs=1e-9)
    c_max = float((6 * chinchilla_sweep["N"] * chinchilla_sweep["D"]).max())
    assert av["largest_sweep_compute"] == pytest.approx(c_max) and av["budget"] == pytest.approx(10 * c_max)
    rows = av["compute_optimal"]
    assert list(rows) == ["chinchilla", "busbridge", "average"]
    for r in rows.values():
        for q in ("N", "D", "loss"):
            assert r[f"{q}_q05"] <= r[f"{q}_median"] <= r[f"{q}_q95"]
    for q in ("N", "D", "loss"):  # a mixture's median lies between its components' medians
        lo, hi = sorted(rows[k][f"{q}_median"] for k in ("chinchilla", "busbridge"))
        assert lo * 0.999 <= rows["average"][f"{q}_median"] <= hi * 1.001
    # the text output, and a budget of one's own
    args = _compare_args(path, "--average", "stacking", "--budget", "1e22")
    args.json = False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=bd.FitWarning)
        assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "Averaged posterior (stacking weights" in text and "1.00e+22 FLOPs" in text and "average" in text


def test_cli_compare_average_refuses_what_it_cannot_do(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("N,D,loss\n")  # never read: the options are checked first
    with pytest.raises(bd.BayesDistillError, match="--budget sets the prediction of --average"):
        args = _compare_args(path, "--budget", "1e22")
        args.func(args)
    args = _compare_args(path, "--average", "stacking")
    args.laws = ["distillation", "distillation_nobpl"]
    with pytest.raises(bd.BayesDistillError, match="supervised laws only"):
        args.func(args)


@pytest.mark.slow
@pytest.mark.parametrize("truth", ["chinchilla", "busbridge"])
def test_true_variant_wins_nine_of_ten(truth):
    """Ten sweeps from each truth: the true variant has the highest evidence in at least nine."""
    make = chinchilla_truth if truth == "chinchilla" else busbridge_truth
    wins = [quiet(compare, make(seed), ["chinchilla", "busbridge"], seed=seed, **LEAN)[0]["log_z"].idxmax() == truth
            for seed in range(1, 11)]
    assert sum(wins) >= 9, wins
