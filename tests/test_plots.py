"""Tests of :mod:`bayesdistill.plots` and :mod:`bayesdistill.report` on small synthetic fits."""

from __future__ import annotations

import re
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import bayesdistill as bd  # noqa: E402
from bayesdistill import plots  # noqa: E402
from bayesdistill.errors import BayesDistillError, FitWarning  # noqa: E402
from bayesdistill.report.markdown import fmt, markdown_table, write_report  # noqa: E402
from bayesdistill.report.tables import text_table  # noqa: E402

TRUE = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37}
TINY = {"chains": 2, "draws": 50, "warmup": 50, "seed": 0, "progress_bar": False, "chain_method": "sequential",
        "retry": False}


def synthetic_sweep(seed: int = 0) -> pd.DataFrame:
    """25 runs: 5 model sizes x 5 token budgets, Chinchilla law with 1% lognormal noise."""
    rng = np.random.default_rng(seed)
    N, tpp = np.meshgrid(np.geomspace(2e7, 8e8, 5), [5, 10, 20, 40, 80], indexing="ij")
    N, D = N.ravel(), (N * tpp).ravel()
    law = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    return pd.DataFrame({"N": N, "D": D, "loss": law * np.exp(0.01 * rng.standard_normal(N.size))})


def _tiny_fit(law):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # 2 x 50 draws cannot pass the review
        return bd.fit(synthetic_sweep(), law=law, **TINY)


@pytest.fixture(scope="module", params=["chinchilla", "busbridge"])
def post(request):
    return _tiny_fit(request.param)


@pytest.fixture(scope="module")
def chinchilla_post():
    return _tiny_fit("chinchilla")


def _main_axes(fig):
    """Visible axes that are not colorbars."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def test_plot_fit(post):
    fig = plots.plot_fit(post)
    assert isinstance(fig, Figure)
    (ax,) = _main_axes(fig)
    assert ax.get_xscale() == "log"
    assert "tokens" in ax.get_xlabel() and "nats" in ax.get_ylabel()
    assert post.law.name in ax.get_title()
    assert len(fig.axes) == 2  # the plot and its colorbar
    assert len(ax.collections) >= 3 * post.data["N"].nunique()  # two bands + points per size
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "observed runs"


def test_plot_fit_into_given_axes(chinchilla_post):
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.plot_fit(chinchilla_post, ax=ax) is fig
    assert ax.get_xscale() == "log"


def test_plot_residuals(post):
    fig = plots.plot_residuals(post)
    assert isinstance(fig, Figure)
    axes = _main_axes(fig)
    assert len(axes) == 2
    assert all(ax.get_xscale() == "log" for ax in axes)
    assert "%" in axes[0].get_ylabel()
    assert "model size" in axes[0].get_xlabel() and "tokens" in axes[1].get_xlabel()
    assert "expected" in axes[1].get_legend().get_texts()[1].get_text()


def test_plot_frontier(post):
    budgets = np.logspace(19, 23, 5)
    fig = plots.plot_frontier(post, budgets=budgets, accounting="6ND")
    axes = _main_axes(fig)
    assert len(axes) == 3
    assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in axes)
    assert "FLOPs" in axes[0].get_xlabel()
    assert "parameters" in axes[0].get_ylabel() and "tokens" in axes[1].get_ylabel()
    assert "nats" in axes[2].get_ylabel()
    median_N = axes[0].get_lines()[0].get_ydata()
    assert np.all(np.diff(median_N) > 0)  # bigger budget, bigger model


def test_plot_frontier_rejects_bad_accounting(chinchilla_post):
    with pytest.raises(BayesDistillError, match="accounting"):
        plots.plot_frontier(chinchilla_post, budgets=[1e21], accounting="flops")


def test_plot_trace(post):
    fig = plots.plot_trace(post)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * len(post.param_names)
    titles = {ax.get_title() for ax in fig.axes}
    assert set(post.param_names) <= titles


def test_plot_rank(post):
    fig = plots.plot_rank(post)
    assert isinstance(fig, Figure)
    axes = _main_axes(fig)
    assert len(axes) == len(post.param_names)
    assert {ax.get_title() for ax in axes} == set(post.param_names)


def test_bands_match_predict(chinchilla_post):
    N, D = np.array([1e8, 1e9]), np.array([2e9, 2e10])
    b = chinchilla_post.bands(N, D)
    p = chinchilla_post.predict(N, D)
    for col in ("median", "q05", "q95"):
        np.testing.assert_allclose(b[col], p[col], rtol=1e-5)
    # other noise draws: close, not equal; with 100 posterior draws a 5%/95% quantile of the predictive
    # moves by ~10% of the 90% interval's width between noise draws (Monte Carlo error)
    width = (p["pred_q95"] - p["pred_q05"]).to_numpy()
    for col in ("pred_q05", "pred_q95"):
        assert np.all(np.abs(b[col].to_numpy() - p[col].to_numpy()) < 0.25 * width), (b[col], p[col], width)
    assert np.all(b["pred_q05"] < b["q05"]) and np.all(b["pred_q95"] > b["q95"])


@pytest.mark.parametrize("x, text", [(124e6, "124M"), (1.336e9, "1.3B"), (5727840, "5.7M"),
                                     (2e13, "20T"), (500, "500"), (3e25, "3e+25")])
def test_format_count(x, text):
    assert plots.format_count(x) == text


@pytest.mark.parametrize("x, text", [(2.73e9, "2.73e+09"), (0.2333, "0.233"), (0.5, "0.500"),
                                     (190.08, "190"), (1234.5, "1234"), (0, "0"), (float("nan"), "nan"),
                                     (None, "-"), (1.2e-4, "1.20e-04")])
def test_fmt(x, text):
    assert fmt(x) == text


def test_tables():
    md = markdown_table(["a", "b"], [["x|y", 1.5]])
    assert md.splitlines() == ["| a | b |", "|:---|---:|", "| x\\|y | 1.5 |"]
    txt = text_table(["name", "v"], [["long name", "1"], ["s", "22"]]).splitlines()
    assert txt[0] == "name        v" and txt[2] == "long name   1" and txt[3] == "s          22"


def test_write_report(chinchilla_post, tmp_path):
    out = tmp_path / "nested" / "report"
    path = write_report(chinchilla_post, out, budget=1e21)
    assert path == out / "report.md"
    text = path.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == ["fit.png", "frontier.png", "isoflop.png", "rank.png", "residuals.png", "trace.png"]
    for link in links:
        assert (out / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    for heading in ("## What was fitted", "## Fit review", "## Posterior summary", "## Predictions",
                    "## Compute-optimal allocation at 1.00e+21 FLOPs"):
        assert heading in text
    assert "THIS FIT FAILED ITS REVIEW" in text  # 2 x 50 draws
    assert re.search(r"Mean leapfrog steps per draw: \d+\.\d", text)
    assert "| alpha |" in text and "a (N* ~ C^a)" in text
    assert "at 20 tokens/param" in text and "at 100 tokens/param" in text
    # re-writing replaces the files in place
    assert write_report(chinchilla_post, out, budget=1e22, accounting="6ND") == path
    assert "1.00e+22 FLOPs" in path.read_text()


def test_write_report_rejects_bad_budget(chinchilla_post, tmp_path):
    with pytest.raises(BayesDistillError, match="budget"):
        write_report(chinchilla_post, tmp_path / "rep", budget=-1.0)
    assert not (tmp_path / "rep").exists()


@pytest.fixture(scope="module")
def compared():
    """bd.compare(keep_fits=True) of two laws on the synthetic sweep, every estimator, tiny settings."""
    settings = {k: v for k, v in TINY.items() if k != "progress_bar"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny fits fail their review; the estimators may disagree
        return bd.compare(synthetic_sweep(), ["chinchilla", "busbridge"], smc_particles=100, smc_seeds=2,
                          keep_fits=True, **settings)


def test_comparison_plots(compared):
    """Smoke test of bayesdistill.plots.comparison: one figure each, with the variants and their legends."""
    table = compared.table
    fig = plots.plot_evidence(table)
    assert len(_main_axes(fig)) == 2 and "log Z" in fig.axes[0].get_xlabel()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["chinchilla", "busbridge"]
    assert len(_main_axes(plots.plot_evidence(table.drop(columns=["log_z_smc", "log_z_smc_se"])))) == 1
    fig = plots.plot_prior_sensitivity(table)
    assert "wider" in fig.axes[0].get_title()
    fig = plots.plot_loo_differences(compared)
    assert len(_main_axes(fig)) == 2 and len(fig.axes[1].get_legend().get_texts()) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        mix = bd.average(compared.refits)
    fig = plots.plot_extrapolation(compared, average=mix)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(texts) == 3 and texts[-1].startswith("average: covers")
    assert len(fig.axes[0].get_xticks()) == compared.held_out.sum()
    fig = plots.plot_frontiers({**compared.fits, "average": bd.average(compared.fits, weights=[1, 1])},
                               budgets=np.logspace(19, 23, 5))
    axes = _main_axes(fig)
    assert len(axes) == 3 and all(ax.get_xscale() == "log" for ax in axes)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["chinchilla", "busbridge", "average"]
    with pytest.raises(BayesDistillError, match="keep_fits=True"):
        plots.plot_loo_differences(table)
    with pytest.raises(BayesDistillError, match="prior_sensitivity=True"):
        plots.plot_prior_sensitivity(table.drop(columns=["log_z_wide"]))
