"""Distilled-student predictions (:mod:`bayesdistill.inference.students`) and their plots, on one tiny joint fit."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import bayesdistill as bd  # noqa: E402
from bayesdistill.errors import BayesDistillError, SweepError  # noqa: E402
from bayesdistill.inference.posterior import Posterior  # noqa: E402
from bayesdistill.inference.students import student_log_loss_draws  # noqa: E402
from bayesdistill.plots import distillation as plots_distill  # noqa: E402

#: 2 chains x 30 draws: enough for shapes and per-draw properties, not for the review
TINY = {"chains": 2, "draws": 30, "warmup": 30, "seed": 0, "progress_bar": False, "chain_method": "sequential",
        "retry": False}
COLUMNS = ["mean", "median", "q05", "q95", "pred_q05", "pred_q95"]


def tiny_joint_sweep() -> pd.DataFrame:
    """60 supervised + 117 distillation runs of the paper replica (every protocol), deterministic."""
    sweep = bd.paper_sweep(seed=0)
    return pd.concat([sweep[sweep["kind"] == "supervised"].iloc[:60],
                      sweep[sweep["kind"] == "distillation"].iloc[::6]], ignore_index=True)


@pytest.fixture(scope="module")
def joint():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        # 2 x 100 draws: at 2 x 30 the posterior widths that identification() compares are Monte Carlo
        # noise (E's width ratio 0.21 on one run, 0.15 at 2 x 100 and 0.14 at 2 x 200)
        return bd.fit(tiny_joint_sweep(), law="distillation", **{**TINY, "draws": 100, "warmup": 100})


@pytest.fixture(scope="module")
def supervised(joint):
    """The same draws read as a supervised (busbridge) posterior: exercises the error paths without a fit."""
    return Posterior(joint.idata, bd.get_law("busbridge"), joint.priors, joint.noise, joint.centre, joint.config)


def test_predict_student_columns_and_bands(joint):
    assert joint.is_distillation and joint.n_draws == 200
    p = joint.predict_student([1e8, 4e8, 4e8], [4e9, 4e9, 4e10], N_T=2e9, D_T=4e10)
    assert list(p.columns) == ["N_S", "D_S", "N_T", "D_T", *COLUMNS] and len(p) == 3
    assert (p["q05"] <= p["median"]).all() and (p["median"] <= p["q95"]).all()
    assert ((p["pred_q95"] - p["pred_q05"]) > (p["q95"] - p["q05"])).all()  # run noise widens the band
    assert (p["pred_q05"] <= p["median"]).all() and (p["median"] <= p["pred_q95"]).all()
    # fixed teacher: a larger student, or more tokens, gives a lower loss (the law is monotone in both)
    assert p["median"].iloc[0] > p["median"].iloc[1] > p["median"].iloc[2]
    assert ((p["median"] > 1.5) & (p["median"] < 4.0)).all()


def test_teacher_given_by_loss_or_by_size(joint):
    by_size = joint.student_vs_supervised(3e8, 6e9, N_T=2e9, D_T=4e10)
    L_T = float(by_size["teacher_median"].iloc[0])
    by_loss = joint.predict_student(3e8, 6e9, L_T=L_T)
    assert list(by_loss.columns) == ["N_S", "D_S", "L_T", *COLUMNS]
    assert by_loss["L_T"].iloc[0] == L_T
    # the teacher's law uncertainty is small: its median loss gives nearly the same student
    assert by_loss["median"].iloc[0] == pytest.approx(by_size["distill_median"].iloc[0], rel=0.01)
    # scalars broadcast against arrays on either side
    p = joint.predict_student(3e8, [6e9, 6e10], L_T=[2.0, 2.4])
    assert len(p) == 2 and list(p["L_T"]) == [2.0, 2.4]


def test_student_never_beats_teacher_loss(joint):
    """Eq. 8 gives L_S > L_T; at huge N_S and D_S the two meet (within float32)."""
    N_S, D_S, L_T = (a.ravel() for a in np.meshgrid([1e8, 1e10, 1e14], [1e9, 1e12, 1e16],
                                                     [1.3, 2.0, 2.8, 5.0], indexing="ij"))
    mu, log_lt, _ = student_log_loss_draws(joint, N_S, D_S, L_T=L_T)
    mu, log_lt = np.asarray(mu, dtype=float), np.asarray(log_lt, dtype=float)
    assert mu.shape == (joint.n_draws, N_S.size)
    assert np.all(np.isfinite(mu)) and np.all(mu >= log_lt - 1e-6)
    p = joint.predict_student(N_S, D_S, L_T=L_T)
    assert np.all(p["q05"] >= p["L_T"] * (1 - 1e-6))


def test_student_vs_supervised(joint):
    # a 100M student on 10 tokens per parameter from a strong 7.75B teacher; then a 1B student on
    # 10,000 tokens per parameter from a teacher (L_T = 3) worse than what it reaches alone
    c = joint.student_vs_supervised([1e8, 1e9], [1e9, 1e13], L_T=[2.0, 3.0])
    for tag in ("distill", "supervised"):
        assert (c[f"{tag}_q05"] <= c[f"{tag}_median"]).all() and (c[f"{tag}_median"] <= c[f"{tag}_q95"]).all()
    p = c["p_distill_beats_supervised"]
    assert p.between(0, 1).all()
    assert p.iloc[0] > 0.9 and p.iloc[1] < 0.1
    assert c["teacher_median"].to_numpy() == pytest.approx([2.0, 3.0], rel=1e-6)
    by_size = joint.student_vs_supervised(1e8, 2e9, N_T=[5e8, 8e9], D_T=[1e10, 1.6e11])
    assert by_size["p_distill_beats_supervised"].between(0, 1).all()
    assert by_size["teacher_median"].iloc[0] > by_size["teacher_median"].iloc[1]


def test_capacity_gap(joint):
    curve, best = joint.capacity_gap(1.434e8, 2.868e9)
    assert len(curve) == 57 and best.shape == (joint.n_draws,)
    assert list(curve.columns) == ["N_T", "D_T", "L_T_median", "mean", "median", "q05", "q95"]
    assert np.allclose(curve["D_T"], 20 * curve["N_T"]) and np.isin(best, curve["N_T"]).all()
    assert (np.diff(curve["L_T_median"]) < 0).all()  # bigger teachers at fixed M_T are better
    grid = np.geomspace(3e8, 3e11, 12)
    curve, best = joint.capacity_gap(1.434e8, 2.868e9, N_T_grid=grid, tokens_per_param_T=40)
    assert np.array_equal(curve["N_T"], grid) and np.allclose(curve["D_T"], 40 * grid)
    assert np.isin(best, grid).all() and (curve["q05"] <= curve["q95"]).all()


def test_supervised_posterior_is_refused(supervised):
    assert not supervised.is_distillation
    calls = [lambda: supervised.predict_student(1e8, 1e9, L_T=2.5),
             lambda: supervised.student_vs_supervised(1e8, 1e9, N_T=1e9, D_T=2e10),
             lambda: supervised.capacity_gap(1e8, 2e9),
             lambda: plots_distill.plot_distill_pairs(supervised),
             lambda: plots_distill.plot_student_vs_tokens(supervised, 1e8, [2.5])]
    for call in calls:
        with pytest.raises(BayesDistillError, match="supervised law 'busbridge'.*law='distillation'"):
            call()


@pytest.mark.parametrize("kwargs, match", [
    ({}, "give the teacher as L_T="),
    ({"N_T": 1e9}, "give the teacher as L_T="),
    ({"D_T": 2e10}, "give the teacher as L_T="),
    ({"N_S": -1e8, "L_T": 2.5}, "N_S must be positive"),
    ({"D_S": [1e9, np.nan], "L_T": 2.5}, "D_S must be positive"),
    ({"L_T": 0.0}, "L_T must be positive"),
    ({"N_T": 1e9, "D_T": -2e10}, "D_T must be positive"),
    ({"N_S": [1e8, 2e8], "D_S": [1e9, 2e9, 3e9], "L_T": 2.5}, "do not broadcast"),
    ({"L_T": [2.0, 2.5, 3.0], "N_S": [1e8, 2e8]}, "do not broadcast"),
])
def test_bad_arguments(joint, kwargs, match):
    args = {"N_S": 1e8, "D_S": 2e9, **kwargs}
    with pytest.raises(BayesDistillError, match=match):
        joint.predict_student(**args)


def test_save_load_round_trip(joint, tmp_path):
    path = joint.save(tmp_path / "joint.nc")
    back = bd.load(path)
    assert back.is_distillation and back.law.name == "distillation" and back.noise == joint.noise
    assert back.param_names == joint.param_names and back.centre == joint.centre
    for name in joint.idata.posterior.data_vars:
        assert np.array_equal(back.idata.posterior[name].values, joint.idata.posterior[name].values), name
    args = ([1e8, 5e8], 1e10)
    pd.testing.assert_frame_equal(back.predict_student(*args, N_T=2e9, D_T=4e10),
                                  joint.predict_student(*args, N_T=2e9, D_T=4e10))
    pd.testing.assert_frame_equal(back.student_vs_supervised(*args, L_T=2.3),
                                  joint.student_vs_supervised(*args, L_T=2.3))


def test_fit_needs_both_kinds_of_runs():
    sweep = tiny_joint_sweep()
    with pytest.raises(SweepError, match="needs supervised runs too"):
        bd.fit(sweep[sweep["kind"] == "distillation"], law="distillation", **TINY)
    with pytest.raises(SweepError, match="needs distillation runs"):
        bd.fit(sweep[sweep["kind"] == "supervised"], law="distillation", **TINY)
    with pytest.raises(BayesDistillError, match="teacher must be 'measured' or 'law'"):
        bd.fit(sweep, law="distillation", teacher="bogus", **TINY)


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_plot_capacity_gap(joint):
    fig = plots_distill.plot_capacity_gap(joint, 1.434e8, N_T_grid=np.geomspace(1e8, 1e11, 25))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "143M student" in ax.get_title()
    assert len(ax.get_legend().get_texts()) == 5 and len(ax.child_axes) == 1  # the best-teacher histogram
    other = Figure()
    target = other.subplots()
    assert plots_distill.plot_capacity_gap(joint, 2e8, tokens_per_param_S=80, ax=target) is other
    with pytest.raises(BayesDistillError, match="N_S must be a single value"):
        plots_distill.plot_capacity_gap(joint, [1e8, 2e8])


def test_plot_student_vs_tokens(joint):
    fig = plots_distill.plot_student_vs_tokens(joint, 5.46e8, [(1.82e9, 3.64e10), 2.2],
                                               D_S=np.geomspace(1e9, 1e12, 15))
    assert isinstance(fig, Figure)
    ax, pax = _visible_axes(fig)[:2]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "same student, supervised" and len(labels) == 3
    assert "1.8B" in labels[1] and "L_T = 2.2" in labels[2]
    assert pax.get_ylim()[0] < 0 < 1 < pax.get_ylim()[1]
    for bad in ([], [1.82e9], [(1e9,)], ["teacher"]):
        with pytest.raises(BayesDistillError, match="teacher"):
            plots_distill.plot_student_vs_tokens(joint, 5.46e8, bad)


def test_plot_distill_pairs(joint):
    fig = plots_distill.plot_distill_pairs(joint, max_draws=40)
    assert isinstance(fig, Figure)
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert {"log10 A'", "log10 c1", "f1", "d1", "gamma'"} <= labels
    assert "40 draws" in fig.get_suptitle()
    small = plots_distill.plot_distill_pairs(joint, var_names=["c1", "f1"], kind="kde")
    assert isinstance(small, Figure)
    with pytest.raises(BayesDistillError, match="unknown"):
        plots_distill.plot_distill_pairs(joint, var_names=["c1", "nope"])


# ------------------------------------------------------------ identification


def test_identification_separates_what_the_runs_pin_down(joint):
    ident = joint.identification(num_samples=2000)
    assert {"A_prime", "B_prime", "c1", "f1", "c1*f1", "1/f1", "alpha_prime*gamma_prime"} <= set(ident.index)
    assert list(ident.columns) == ["prior_q05", "prior_q95", "q05", "median", "q95", "width_ratio", "identified"]
    # the supervised irreducible loss and the student's size exponent (times gamma') are pinned down by
    # 177 runs; the student's data term is not (it is ~1% of the size term on the paper's design)
    assert ident.loc["E", "identified"] and ident.loc["alpha_prime*gamma_prime", "identified"]
    assert not ident.loc["B_prime", "identified"]
    assert ident.loc["E", "width_ratio"] < 0.2 < ident.loc["B_prime", "width_ratio"]
    assert (ident["prior_q05"] <= ident["prior_q95"]).all() and (ident["q05"] <= ident["q95"]).all()
    # same seed, same numbers
    pd.testing.assert_frame_equal(ident, joint.identification(num_samples=2000))


def test_identification_checks_its_arguments(joint):
    with pytest.raises(BayesDistillError, match="num_samples"):
        joint.identification(num_samples=10)
    with pytest.raises(BayesDistillError, match="threshold"):
        joint.identification(threshold=0)
