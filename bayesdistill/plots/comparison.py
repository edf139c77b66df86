"""Figures of a comparison of law variants (``bd.compare``) and of their average (``bd.average``).

The table-only figures (:func:`plot_evidence`, :func:`plot_prior_sensitivity`) take the table
``bd.compare`` returns; the others take what ``bd.compare(..., keep_fits=True)`` returns (a
:class:`~bayesdistill.inference.comparison.LawComparison`) or a dict of posteriors. Every function
returns a :class:`matplotlib.figure.Figure` (see :mod:`bayesdistill.plots.fits`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..allocation.supervised import compute_optimal
from ..errors import BayesDistillError
from ..laws.flops import supervised_flops
from .fits import count_formatter, loss_ticks, new_axes

#: each variant's colour, in the table's order (the average is black)
COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")
Z90 = 1.6449  # a 90% interval is +- Z90 standard errors


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def _need(table, columns, what):
    missing = [c for c in columns if c not in table.columns or table[c].isna().all()]
    if missing:
        raise BayesDistillError(f"{what} needs the columns {missing} of bd.compare's table (computed with "
                                "smc=True and prior_sensitivity=True)")


def plot_evidence(table) -> Figure:
    """log Z of every variant by both estimators, and the estimators' difference.

    Parameters
    ----------
    table : pandas.DataFrame
        ``bd.compare``'s table (or ``LawComparison.table``).

    Returns
    -------
    matplotlib.figure.Figure
        Left: log Z by bridge sampling and by tempered SMC with 90% error bars (+- 1.645 se), the
        best variant's log Z marked, and the 10:1 and 100:1 lines below it. Right: bridge minus SMC
        with the combined error: where the estimators agree, the errors of the left panel are the
        real uncertainty of log Z.
    """
    _need(table, ["log_z", "log_z_se"], "plot_evidence")
    labels = list(table.index)
    y = np.arange(len(labels))[::-1]
    smc = "log_z_smc" in table.columns and table["log_z_smc"].notna().any()
    fig, axes = new_axes(1, 2 if smc else 1, figsize=(11.0 if smc else 6.5, 0.55 * len(labels) + 1.8),
                         sharey=True, width_ratios=[2, 1] if smc else None)
    ax = axes[0, 0]
    best = float(table["log_z"].max())
    for val, lab, ls in ((best, "best", "-"), (best - np.log(10), "10:1 against", "--"),
                         (best - np.log(100), "100:1 against", ":")):
        ax.axvline(val, color="0.5", lw=1, ls=ls, zorder=0)
        ax.annotate(lab, (val, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -2),
                    textcoords="offset points", va="top", fontsize=8, color="0.4", rotation=90)
    ax.errorbar(table["log_z"], y + 0.12, xerr=Z90 * table["log_z_se"], fmt="o", color="C0", capsize=4,
                label="bridge sampling (NUTS draws)")
    if smc:
        ax.errorbar(table["log_z_smc"], y - 0.12, xerr=Z90 * table["log_z_smc_se"], fmt="s", color="C1",
                    capsize=4, label="tempered SMC")
    ax.set_yticks(y, labels)
    ax.set_xlabel("log Z (log marginal likelihood of the log losses)")
    ax.set_title("evidence of each variant (90% error bars)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    if smc:
        ax = axes[0, 1]
        diff = table["log_z"] - table["log_z_smc"]
        err = Z90 * np.hypot(table["log_z_se"], table["log_z_smc_se"])
        ax.axvline(0, color="0.5", lw=1)
        ax.axvspan(-0.2, 0.2, color="0.9", zorder=0, label="+- 0.2 nats")
        ax.errorbar(diff, y, xerr=err, fmt="o", color="0.2", capsize=4)
        ax.set_xlabel("bridge minus SMC (nats)")
        ax.set_title("do the estimators agree?")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(True, axis="x", alpha=0.3)
    return fig


def plot_prior_sensitivity(table) -> Figure:
    """log Z at the priors and with every prior ``widen`` times wider, each variant's ranking at both.

    Parameters
    ----------
    table : pandas.DataFrame
        ``bd.compare``'s table, computed with ``prior_sensitivity=True``.

    Returns
    -------
    matplotlib.figure.Figure
        One arrow per variant from log Z at its priors to log Z with the widened priors (90% error
        bars), and each one's rank at both: crossing arrows are verdicts the priors decide.
    """
    _need(table, ["log_z", "log_z_se", "log_z_wide", "log_z_wide_se"], "plot_prior_sensitivity")
    labels = list(table.index)
    widen = table.attrs.get("settings", {}).get("widen", 2.0)
    y = np.arange(len(labels))[::-1]
    rank = table["log_z"].rank(ascending=False).astype(int)
    rank_w = table["log_z_wide"].rank(ascending=False).astype(int)
    fig, axes = new_axes(figsize=(7.5, 0.55 * len(labels) + 1.8))
    ax = axes[0, 0]
    for i, (lab, yi) in enumerate(zip(labels, y)):
        a, b = float(table.loc[lab, "log_z"]), float(table.loc[lab, "log_z_wide"])
        ax.annotate("", (b, yi), (a, yi), arrowprops={"arrowstyle": "->", "color": _colour(i), "lw": 1.5})
        ax.errorbar([a], [yi], xerr=[Z90 * table.loc[lab, "log_z_se"]], fmt="o", color=_colour(i), capsize=3)
        ax.errorbar([b], [yi], xerr=[Z90 * table.loc[lab, "log_z_wide_se"]], fmt="o", mfc="white",
                    color=_colour(i), capsize=3)
        ax.annotate(f"#{rank[lab]} -> #{rank_w[lab]}", (max(a, b), yi), xytext=(8, 0), textcoords="offset points",
                    va="center", fontsize=8, color="0.3")
    ax.set_yticks(y, labels)
    ax.margins(x=0.15)
    ax.set_xlabel("log Z")
    ax.set_title(f"log Z at the priors (filled) and with every prior x{widen:g} wider (open)")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def _loo_and_runs(comparison):
    for attr in ("loo", "fits"):
        if not hasattr(comparison, attr):
            raise BayesDistillError("this plot needs what bd.compare(..., keep_fits=True) returns")
    return comparison.loo, next(iter(comparison.fits.values())).data


def plot_loo_differences(comparison, reference: str | None = None, accounting: str = "6ND") -> Figure:
    """Pointwise PSIS-LOO log predictive density of each variant minus the reference's, per run.

    Parameters
    ----------
    comparison : LawComparison
        What ``bd.compare(..., keep_fits=True)`` returns.
    reference : str, optional
        The variant subtracted (default: the one with the highest ``elpd_loo``).
    accounting : {"6ND", "paper"}
        Compute of a run on the x axis.

    Returns
    -------
    matplotlib.figure.Figure
        Left: each run's difference against its compute (above 0: the variant predicts that run
        better than the reference); runs with a Pareto k above the LOO threshold ringed. Right: the
        same differences accumulated over the runs sorted by compute, with the total and its
        standard error: does one run or a trend decide the LOO verdict?
    """
    loo, data = _loo_and_runs(comparison)
    labels = list(loo)
    if reference is None:
        reference = max(labels, key=lambda k: float(loo[k].elpd))
    if reference not in loo:
        raise BayesDistillError(f"reference {reference!r} is not one of the variants {labels}")
    C = np.asarray(supervised_flops(data["N"].to_numpy(float), data["D"].to_numpy(float), accounting))
    order = np.argsort(C, kind="stable")
    ref = np.asarray(loo[reference].elpd_i, float).reshape(-1)
    fig, axes = new_axes(1, 2, figsize=(12.0, 4.4))
    for ax in axes[0]:
        ax.axhline(0, color="0.5", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(f"compute of the run (FLOPs, {'6ND' if accounting == '6ND' else '3F(N)D'})")
        ax.grid(True, alpha=0.3)
    for i, lab in enumerate(labels):
        if lab == reference:
            continue
        d = np.asarray(loo[lab].elpd_i, float).reshape(-1) - ref
        k = np.asarray(loo[lab].pareto_k, float).reshape(-1)
        bad = k > float(loo[lab].good_k)
        se = float(np.sqrt(len(d)) * d.std(ddof=1))
        axes[0, 0].scatter(C, d, s=18, color=_colour(i), alpha=0.8, label=lab)
        axes[0, 0].scatter(C[bad], d[bad], s=90, facecolors="none", edgecolors=_colour(i), lw=1.2)
        axes[0, 1].step(C[order], np.cumsum(d[order]), where="post", color=_colour(i),
                        label=f"{lab}: {d.sum():+.1f} +- {se:.1f}")
    axes[0, 0].set_ylabel(f"elpd_i minus {reference}'s")
    axes[0, 0].set_title("per run (ringed: Pareto k too high)")
    axes[0, 0].legend(fontsize=8)
    axes[0, 1].set_ylabel("cumulative difference (nats)")
    axes[0, 1].set_title("summed over the runs by compute (legend: total +- se)")
    axes[0, 1].legend(fontsize=8, loc="lower left")
    return fig


def plot_extrapolation(comparison, average=None, accounting: str = "6ND") -> Figure:
    """Each variant's prediction of the held-out (most expensive) runs from its refit without them.

    Parameters
    ----------
    comparison : LawComparison
        What ``bd.compare(..., keep_fits=True)`` returns, with the extrapolation check.
    average : AveragedPosterior, optional
        A mixture of the refits (``bd.average(comparison.refits)``), drawn as one more variant.
    accounting : {"6ND", "paper"}

    Returns
    -------
    matplotlib.figure.Figure
        For every held-out run (sorted by compute) and variant: the observed loss over the
        variant's predicted median, minus 1 (dots), in the variant's 90% predictive interval on the
        same scale (bars): a dot outside its bar is a run the law missed. The legend gives each variant's 90% coverage and median absolute error.
    """
    refits = getattr(comparison, "refits", None)
    if not refits:
        raise BayesDistillError("plot_extrapolation needs the refits of bd.compare(..., keep_fits=True) with "
                                "extrapolation=True")
    held = comparison.sweep.df[np.asarray(comparison.held_out, bool)]
    held = held[held["kind"] == "supervised"] if "kind" in held else held
    N, D, y = (held[c].to_numpy(float) for c in ("N", "D", "loss"))
    C = np.asarray(supervised_flops(N, D, accounting))
    order = np.argsort(C, kind="stable")
    N, D, y, C = N[order], D[order], y[order], C[order]
    models = list(refits.items()) + ([("average", average)] if average is not None else [])
    fig, axes = new_axes(figsize=(max(7.0, 0.5 * len(y) * len(models) / 2.5 + 3), 4.6))
    ax = axes[0, 0]
    width = 0.8 / len(models)
    x = np.arange(len(y))
    ax.axhline(0, color="0.5", lw=1)
    for i, (lab, post) in enumerate(models):
        b = post.bands(N, D)
        med = b["median"].to_numpy()
        rel = 100 * (y / med - 1)
        lo, hi = 100 * (b["pred_q05"].to_numpy() / med - 1), 100 * (b["pred_q95"].to_numpy() / med - 1)
        cover = float(np.mean((y >= b["pred_q05"].to_numpy()) & (y <= b["pred_q95"].to_numpy())))
        colour = "k" if lab == "average" else _colour(i)
        xi = x - 0.4 + width * (i + 0.5)
        ax.vlines(xi, lo, hi, color=colour, lw=3, alpha=0.35)
        ax.scatter(xi, rel, s=18, color=colour, zorder=3,
                   label=f"{lab}: covers {cover:.0%}, median |error| {np.median(np.abs(rel)):.1f}%")
    ax.set_xticks(x, [f"{n / 1e6:.0f}M\n{d / 1e9:.0f}B" for n, d in zip(N, D)], fontsize=7)
    ax.set_xlabel("held-out run (parameters, tokens), by compute")
    ax.set_ylabel("observed / predicted median - 1 (%)")
    ax.set_title(f"the {len(y)} most expensive runs (dots) in each law's 90% predictive interval (bars), "
                 "from a refit on the others", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def plot_frontiers(posteriors, budgets=None, accounting: str = "6ND") -> Figure:
    """Compute-optimal N*, D* and loss against the budget for several posteriors (laws, an average).

    Parameters
    ----------
    posteriors : dict of str to Posterior or AveragedPosterior
        E.g. ``{**comparison.fits, "average": bd.average(comparison.fits)}``; a key ``"average"`` is
        drawn in black.
    budgets : array-like, optional
        FLOPs; default from the sweep's smallest compute to two decades above its largest.
    accounting : {"6ND", "paper"}

    Returns
    -------
    matplotlib.figure.Figure
        Three log-log panels (N*, D*, loss at the optimum), each posterior's median and 90% band;
        the shaded span is the compute the sweep covers.
    """
    if not posteriors:
        raise BayesDistillError("plot_frontiers needs at least one posterior")
    data = next(iter(posteriors.values())).data
    C_runs = np.asarray(supervised_flops(data["N"].to_numpy(float), data["D"].to_numpy(float), accounting))
    if budgets is None:
        budgets = np.logspace(np.log10(C_runs.min()), np.log10(C_runs.max()) + 2, 25)
    budgets = np.asarray(budgets, float)
    fig, axes = new_axes(1, 3, figsize=(14.0, 4.6), sharex=True)
    c_label = "6ND" if accounting == "6ND" else "3F(N)D"
    for ax in axes[0]:
        ax.axvspan(C_runs.min(), C_runs.max(), color="0.85", alpha=0.6, lw=0, zorder=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"training budget C (FLOPs, {c_label})")
        ax.grid(True, which="major", alpha=0.3)
    for i, (lab, post) in enumerate(posteriors.items()):
        co = compute_optimal(post, budgets, accounting=accounting)
        avg = lab == "average"
        colour = "k" if avg else _colour(i)
        for ax, draws in zip(axes[0], (co.N, co.D, co.loss)):
            q05, med, q95 = np.quantile(draws, [0.05, 0.5, 0.95], axis=0)
            if avg:
                ax.plot(budgets, q05, color=colour, lw=1, ls="--")
                ax.plot(budgets, q95, color=colour, lw=1, ls="--")
            else:
                ax.fill_between(budgets, q05, q95, color=colour, alpha=0.15, lw=0)
            ax.plot(budgets, med, color=colour, lw=2.5 if avg else 1.5, label=lab)
    for ax, label in zip(axes[0], ("optimal model size N*", "optimal training tokens D*",
                                   "loss at the optimum (nats per token)")):
        ax.set_ylabel(label)
    axes[0, 0].yaxis.set_major_formatter(count_formatter())
    axes[0, 1].yaxis.set_major_formatter(count_formatter())
    loss_ticks(axes[0, 2])
    axes[0, 0].legend(fontsize=8, title="median, 90% band (average: dashed)", title_fontsize=8)
    return fig
