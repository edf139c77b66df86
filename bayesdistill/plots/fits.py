"""Figures of a fitted posterior: fit, residuals, compute-optimal frontier, sampler diagnostics.

Every function returns a :class:`matplotlib.figure.Figure` and never calls
``plt.show``. Figures are built with :class:`~matplotlib.figure.Figure`
directly (not through pyplot); the sampler diagnostics come from arviz-plots,
which draws through pyplot, and are taken out of pyplot's figure registry
(:func:`from_arviz_plots`). So figures do not pile up there and display exactly
once in a notebook. Save one with
``fig.savefig("fit.png", dpi=150)``.
"""

from __future__ import annotations

import numpy as np
from matplotlib import cm, colors, ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..allocation.supervised import compute_optimal
from ..inference.validation import unique_tokens
from ..laws.flops import supervised_flops

#: viridis without its palest yellows, which vanish on white
CMAP = colors.ListedColormap(cm.viridis(np.linspace(0.0, 0.85, 256)), name="viridis_dark")
BAND, PRED_BAND = 0.35, 0.12  # alphas of the law's band and the predictive band
EXTEND = 2.0  # curves run this factor beyond each model's smallest and largest D


def format_count(x: float) -> str:
    """Format a count of parameters, tokens or FLOPs compactly.

    Parameters
    ----------
    x : float

    Returns
    -------
    str
        E.g. ``"124M"``, ``"1.3B"``, ``"5.7M"``, ``"20T"``; ``"3e+25"`` beyond 1e15.

    Examples
    --------
    >>> format_count(1.336e9), format_count(124e6), format_count(5727840)
    ('1.3B', '124M', '5.7M')
    """
    x = float(x)
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            v = x / scale
            if abs(v) >= 1000:
                return f"{x:.2g}"
            return f"{v:.2g}{suffix}" if v < 10 else f"{v:.0f}{suffix}"
    return f"{x:.3g}"


def count_formatter():
    return ticker.FuncFormatter(lambda x, _pos: format_count(x))


def new_axes(nrows=1, ncols=1, figsize=(7.0, 4.8), **kw):
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _size_colours(sizes):
    """A LogNorm colour map over the distinct model sizes."""
    lo, hi = float(np.min(sizes)), float(np.max(sizes))
    if hi <= lo:
        lo, hi = lo / 1.5, hi * 1.5
    norm = colors.LogNorm(lo, hi)
    return cm.ScalarMappable(norm=norm, cmap=CMAP)


def _size_colorbar(fig, mappable, sizes, ax):
    cbar = fig.colorbar(mappable, ax=ax, pad=0.02, aspect=30)
    cbar.set_label("model size N (non-embedding parameters)")
    if len(sizes) <= 10:
        cbar.set_ticks(list(sizes))
        cbar.set_ticks([], minor=True)
    cbar.formatter = count_formatter()
    cbar.update_ticks()
    return cbar


def loss_ticks(ax):
    """Plain decimal ticks on a log-scaled loss axis (its range is usually under a decade)."""
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)))
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _describe(post) -> str:
    return f"{post.law.name} law, {post.noise.replace('_', '-')} noise"


def plot_fit(post, ax=None) -> Figure:
    """Loss against training tokens, one curve per model size in the data.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (its figure is returned); default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Data points, the posterior median of the law, its 90% band (darker)
        and the 90% predictive band of a new run (lighter), coloured by N.
    """
    data = post.data
    sizes = np.sort(data["N"].unique())
    if ax is None:
        fig, axes = new_axes(figsize=(7.5, 5.0))
        ax = axes[0, 0]
    else:
        fig = ax.figure
    sm = _size_colours(sizes)
    grids = []
    for n in sizes:
        d = data.loc[data["N"] == n, "D"]
        grids.append(np.geomspace(d.min() / EXTEND, d.max() * EXTEND, 60))
    pred = post.bands(np.repeat(sizes, 60), np.concatenate(grids))
    for i, n in enumerate(sizes):
        c = sm.to_rgba(n)
        p = pred.iloc[i * 60:(i + 1) * 60]
        ax.fill_between(p["D"], p["pred_q05"], p["pred_q95"], color=c, alpha=PRED_BAND, lw=0)
        ax.fill_between(p["D"], p["q05"], p["q95"], color=c, alpha=BAND, lw=0)
        ax.plot(p["D"], p["median"], color=c, lw=1.6)
        rows = data[data["N"] == n]
        ax.scatter(rows["D"], rows["loss"], color=c, edgecolor="k", linewidth=0.6, s=28, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(count_formatter())
    loss_ticks(ax)
    ax.set_xlabel("training tokens D")
    ax.set_ylabel("validation loss (nats per token)")
    ax.set_title(f"Fit: {_describe(post)}, {len(data)} runs")
    ax.grid(True, which="major", alpha=0.3)
    handles = [
        Line2D([], [], ls="", marker="o", mfc="0.6", mec="k", mew=0.6, label="observed runs"),
        Line2D([], [], color="0.3", lw=1.6, label="posterior median"),
        Patch(color="0.3", alpha=BAND, lw=0, label="90% band of the law"),
        Patch(color="0.3", alpha=PRED_BAND, lw=0, label="90% predictive band (new run)"),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.85)
    _size_colorbar(fig, sm, sizes, ax)
    return fig


def _relative_residuals(post):
    data = post.data
    p = post.bands(data["N"].to_numpy(), data["D"].to_numpy(), **unique_tokens(post, data))
    med = p["median"].to_numpy()
    rel = 100 * (data["loss"].to_numpy() / med - 1)
    lo = 100 * (p["pred_q05"].to_numpy() / med - 1)
    hi = 100 * (p["pred_q95"].to_numpy() / med - 1)
    return data, rel, lo, hi


def plot_residuals(post) -> Figure:
    """Relative residuals (observed / median - 1, in %) against N and against D.

    Parameters
    ----------
    post : Posterior

    Returns
    -------
    matplotlib.figure.Figure
        Two panels sharing the y axis. Grey bars are each run's 90%
        predictive interval relative to the median; runs outside theirs are
        ringed in red (about 10% of runs are expected outside).
    """
    data, rel, lo, hi = _relative_residuals(post)
    outside = (rel < lo) | (rel > hi)
    sizes = np.sort(data["N"].unique())
    sm = _size_colours(sizes)
    fig, axes = new_axes(1, 2, figsize=(11.0, 4.4), sharey=True)
    # jitter x within a column of runs at one N so their bars do not hide each other
    order = data.groupby("N")["D"].rank(method="first").to_numpy() - 1
    count = data.groupby("N")["D"].transform("size").to_numpy()
    jitter = 10 ** (0.04 * (order - (count - 1) / 2) / np.maximum(count, 1) ** 0.5)
    for ax, x, name in ((axes[0, 0], data["N"].to_numpy() * jitter, "model size N (parameters)"),
                        (axes[0, 1], data["D"].to_numpy(), "training tokens D")):
        ax.vlines(x, lo, hi, color="0.55", alpha=0.45, lw=3.5, zorder=1)
        ax.axhline(0, color="k", lw=0.8, zorder=0)
        ax.scatter(x, rel, c=sm.to_rgba(data["N"].to_numpy()), edgecolor="k", linewidth=0.5, s=26, zorder=3)
        if outside.any():
            ax.scatter(x[outside], rel[outside], facecolor="none", edgecolor="red", linewidth=1.4,
                       s=110, zorder=4)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(count_formatter())
        ax.set_xlabel(name)
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("residual: observed / median law - 1 (%)")
    axes[0, 0].yaxis.set_major_formatter(ticker.PercentFormatter(decimals=None))
    h = [
        Line2D([], [], color="0.55", alpha=0.45, lw=3.5, label="90% predictive interval"),
        Line2D([], [], ls="", marker="o", ms=10, mfc="none", mec="red", mew=1.4,
               label=f"outside it: {int(outside.sum())} of {len(rel)} (~10% expected)"),
    ]
    axes[0, 1].legend(handles=h, loc="best", fontsize="small", framealpha=0.85)
    fig.suptitle(f"Relative residuals: {_describe(post)}")
    _size_colorbar(fig, sm, sizes, axes[0, :].tolist())
    return fig


def plot_frontier(post, budgets=None, accounting: str = "paper") -> Figure:
    """Compute-optimal model size, tokens and loss against the training budget.

    Parameters
    ----------
    post : Posterior
    budgets : array-like, optional
        FLOPs; default ``np.logspace(18, 24, 25)``.
    accounting : {"paper", "6ND"}
        FLOP accounting of the budget (see :func:`bayesdistill.laws.flops.supervised_flops`).

    Returns
    -------
    matplotlib.figure.Figure
        Three log-log panels: N*, D* and the loss at the optimum, each with
        the posterior median and 90% band. The fitted runs are marked at
        their own compute (same accounting) for reference; the shaded span is
        the compute range the data cover.
    """
    budgets = np.logspace(18, 24, 25) if budgets is None else np.asarray(budgets, dtype=float)
    co = compute_optimal(post, budgets, accounting=accounting)
    data = post.data
    C_runs = np.asarray(supervised_flops(data["N"].to_numpy(), data["D"].to_numpy(), accounting=accounting))
    fig, axes = new_axes(1, 3, figsize=(13.5, 4.4), sharex=True)
    c_label = "6ND" if accounting == "6ND" else "3F(N)D"
    panels = ((co.N, data["N"], "optimal model size N* (parameters)", "C0"),
              (co.D, data["D"], "optimal training tokens D*", "C1"),
              (co.loss, data["loss"], "loss at the optimum (nats per token)", "C2"))
    for ax, (draws, runs, label, colour) in zip(axes[0], panels):
        q05, med, q95 = np.quantile(draws, [0.05, 0.5, 0.95], axis=0)
        ax.axvspan(C_runs.min(), C_runs.max(), color="0.85", alpha=0.6, lw=0, zorder=0,
                   label="compute range of the data")
        ax.fill_between(co.budgets, q05, q95, color=colour, alpha=0.3, lw=0, label="90% interval")
        ax.plot(co.budgets, med, color=colour, lw=2, label="posterior median")
        ax.scatter(C_runs, runs, s=14, color="0.3", alpha=0.7, zorder=3,
                   label=f"fitted runs (C = {c_label})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"training budget C (FLOPs, {c_label})")
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
        if ax is not axes[0, 2]:
            ax.yaxis.set_major_formatter(count_formatter())
        else:
            loss_ticks(ax)
    ex = co.exponents()
    for ax, sym, e in ((axes[0, 0], "N", "a"), (axes[0, 1], "D", "b")):
        ax.set_title(rf"${sym}^* \propto C^{{{e}}}$,  {e} = {ex.loc[e, 'median']:.3f} "
                     f"(90%: {ex.loc[e, 'q05']:.3f} to {ex.loc[e, 'q95']:.3f})", fontsize="medium")
    axes[0, 2].set_title("loss at the compute-optimal allocation", fontsize="medium")
    axes[0, 0].legend(loc="upper left", fontsize="small", framealpha=0.85)
    axes[0, 0].set_xlim(min(co.budgets.min(), C_runs.min()) / 1.5, max(co.budgets.max(), C_runs.max()) * 1.5)
    fig.suptitle(f"Compute-optimal frontier: {_describe(post)}, {accounting} accounting")
    return fig


def isoflop_groups(data) -> list[np.ndarray]:
    """Index arrays of runs to draw as IsoFLOP curves: the sweep's IsoFLOP slices
    (:func:`bayesdistill.inference.validation.isoflop_slices`), else its compute levels (approximately
    equal compute: half-decade bins), else all runs as one group."""
    from ..errors import SweepError
    from ..inference.validation import compute_levels, isoflop_slices

    groups = isoflop_slices(data)
    if groups:
        return groups
    try:
        levels = compute_levels(data, min_runs=3)
    except SweepError:
        return [np.arange(len(data))]
    return [np.flatnonzero(levels == k) for k in range(int(levels.max()) + 1)]


def plot_isoflop(post, budgets=None, ax=None, seed: int = 0) -> Figure:
    """IsoFLOP picture: loss against model size at fixed compute, with the posterior's N*.

    Parameters
    ----------
    post : Posterior
        A supervised (or joint) fit; its supervised runs are grouped by compute
        (:func:`isoflop_groups`) and drawn at C = 6 N D.
    budgets : array-like, optional
        Further budgets (FLOPs, 6ND) to draw without data; default one IsoFLOP level (half a
        decade, ~3.2x) beyond the largest fitted budget: the next budget a sweep would run.
    ax : matplotlib Axes, optional
    seed : int
        Seed of the noise draws of the predictive band.

    Returns
    -------
    matplotlib.figure.Figure
        Per budget: the runs, the posterior median curve L(N, C / 6N), its 90% predictive band
        (noise and the discrepancy included, so it widens beyond the fitted compute), the 90%
        interval of N* (shaded bar on the curve's floor) with its median (|) and the best run
        observed at that budget (star).
    """
    from ..inference.validation import log10_compute

    data = post.data
    groups = isoflop_groups(data)
    c_runs = log10_compute(data)
    levels = [float(c_runs[g].mean()) for g in groups]
    c_max = float(c_runs.max())
    extra = [c_max + 0.5] if budgets is None else list(np.log10(np.atleast_1d(np.asarray(budgets, float))))
    if ax is None:
        fig, axes = new_axes(figsize=(8.0, 5.2))
        ax = axes[0, 0]
    else:
        fig = ax.figure
    all_c = levels + extra
    norm = colors.Normalize(min(all_c), max(all_c) + 1e-9)
    co = compute_optimal(post, 10.0 ** np.asarray(all_c), accounting="6ND")
    lo_n, hi_n = float(data["N"].min()) / 3, float(data["N"].max()) * 3
    for j, c in enumerate(all_c):
        colour = CMAP(norm(c))
        n_star = co.N[:, j]
        q05, med, q95 = np.quantile(n_star, [0.05, 0.5, 0.95])
        if j < len(groups):
            g = data.iloc[groups[j]]
            grid = np.geomspace(min(g["N"].min() / 2, q05), max(g["N"].max() * 2, q95), 60)
        else:
            grid = np.geomspace(min(lo_n, q05 / 2), max(hi_n, q95 * 2), 60)
        b = post.bands(grid, 10.0 ** c / (6.0 * grid), seed=seed)
        dashed = j >= len(groups)
        ax.fill_between(grid, b["pred_q05"], b["pred_q95"], color=colour, alpha=PRED_BAND if not dashed else 0.08, lw=0)
        ax.plot(grid, b["median"], color=colour, lw=1.8, ls="--" if dashed else "-",
                label=f"C = {format_count(10.0 ** c)}" + (" (beyond the data)" if dashed else ""))
        floor = float(b["pred_q05"].min())
        ax.plot([q05, q95], [floor, floor], color=colour, lw=5, alpha=0.6, solid_capstyle="butt")
        ax.plot([med], [floor], marker="|", ms=12, color=colour)
        if j < len(groups):
            ax.scatter(g["N"], g["loss"], s=18, color=colour, edgecolor="0.2", lw=0.4, zorder=3)
            best = g.loc[g["loss"].idxmin()]
            ax.scatter([best["N"]], [best["loss"]], marker="*", s=140, color=colour, edgecolor="k", lw=0.8, zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(count_formatter())
    loss_ticks(ax)
    ax.set_xlabel("model size N (parameters)")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", lw=5, alpha=0.6), Line2D([], [], marker="*", ls="", color="0.5",
                                                                      markeredgecolor="k", ms=11)]
    labels += ["N* 90% interval (| median)", "best run observed"]
    ax.legend(handles, labels, fontsize="x-small", loc="upper right", framealpha=0.85, ncol=2 if len(labels) > 8 else 1)
    ax.set_title(f"IsoFLOP curves: {_describe(post)}; 90% predictive bands", fontsize="medium")
    return fig


def _diagnostic_names(post):
    return [n for n in post.param_names if n in post.idata.posterior]


def from_arviz_plots(pc) -> Figure:
    """The matplotlib figure of an arviz-plots ``PlotCollection`` / ``PlotMatrix``, taken out of pyplot's
    figure registry (arviz-plots creates it with ``pyplot.subplots``): it stays a plain figure to return."""
    import matplotlib.pyplot as plt

    fig = pc.viz["figure"].item()
    plt.close(fig)
    return fig


def plot_trace(post) -> Figure:
    """Trace and marginal density of each coefficient and noise parameter, by chain.

    Parameters
    ----------
    post : Posterior

    Returns
    -------
    matplotlib.figure.Figure
        One row per parameter (left: density per chain, titled with its name; right: trace), from
        :func:`arviz_plots.plot_trace_dist`.
    """
    import arviz_plots as azp

    names = _diagnostic_names(post)
    pc = azp.plot_trace_dist(post.idata, var_names=names, compact=False, backend="matplotlib",
                             figure_kwargs={"figsize": (11.0, 1.7 * len(names) + 0.6)})
    for name in names:
        pc.viz["plot"][name].sel(column="dist").item().set_title(name, fontsize="medium")
    fig = from_arviz_plots(pc)
    fig.suptitle(f"Traces: {_describe(post)} (one colour per chain)")
    return fig


def plot_rank(post) -> Figure:
    """Rank plots per chain: the ECDF of each chain's fractional ranks minus the uniform one, with its
    simultaneous 99% envelope (inside it when chains mix well).

    Parameters
    ----------
    post : Posterior

    Returns
    -------
    matplotlib.figure.Figure
        One panel per parameter, from :func:`arviz_plots.plot_rank` (ArviZ 1.x draws rank ECDFs where
        0.23 drew rank histograms).
    """
    import arviz_plots as azp

    names = _diagnostic_names(post)
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    pc = azp.plot_rank(post.idata, var_names=names, backend="matplotlib", col_wrap=ncols,
                       figure_kwargs={"figsize": (3.4 * ncols, 3.3 * nrows + 0.5)})
    fig = from_arviz_plots(pc)
    for ax in fig.axes:
        if not ax.has_data():  # the unused panels of the last row
            ax.set_visible(False)
    fig.suptitle(f"Rank plots: {_describe(post)} (curves should stay inside the envelope)")
    return fig
