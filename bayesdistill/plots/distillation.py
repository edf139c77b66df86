"""Figures of a distillation (joint) posterior: capacity gap, student loss against tokens, coefficient pairs.

Like :mod:`bayesdistill.plots`, every function returns a
:class:`matplotlib.figure.Figure` built without pyplot and never shows it.
They need a posterior of a distillation law (``bd.fit(..., law="distillation")``)
and raise :class:`~bayesdistill.errors.BayesDistillError` for a supervised one.
Bands are 90% posterior intervals of the law (the mean loss), not of a new run.
"""

from __future__ import annotations

import numbers

import numpy as np
from matplotlib import transforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .._checks import positive_array
from ..errors import BayesDistillError
from ..inference.students import student_log_loss_draws
from ..laws.distillation import require_distillation
from .fits import BAND, count_formatter, format_count, from_arviz_plots, loss_ticks, new_axes

#: distillation coefficients shown on a log10 scale in the pair plot (they span decades)
LOG_PARAMS = ("A_prime", "B_prime", "c1")
#: how the pair plot names each coefficient
LABELS = {"A_prime": "A'", "B_prime": "B'", "alpha_prime": "alpha'", "beta_prime": "beta'",
          "gamma_prime": "gamma'"}
MAX_LOSS = 15.0  # a teacher "loss" above this is taken for a teacher size given by mistake
STUDENT, TEACHER, SUPERVISED = "C0", "C3", "0.25"


def _scalar(x, name) -> float:
    a = positive_array(x, name)
    if a.size != 1:
        raise BayesDistillError(f"{name} must be a single value, got {a.size} values")
    return float(a[0])


def _quantiles(L):
    """(q05, median, q95) over draws (axis 0)."""
    return np.quantile(np.asarray(L, dtype=float), [0.05, 0.5, 0.95], axis=0)


def _on_axes(ax, figsize):
    if ax is None:
        fig, axes = new_axes(figsize=figsize)
        return fig, axes[0, 0]
    return ax.figure, ax


def plot_capacity_gap(post, N_S, tokens_per_param_S: float = 20.0, tokens_per_param_T: float = 20.0,
                      N_T_grid=None, ax=None) -> Figure:
    """Loss of one distilled student against the size of its teacher (the capacity gap).

    Parameters
    ----------
    post : Posterior
        A posterior of a distillation law.
    N_S : float
        Student size (non-embedding parameters).
    tokens_per_param_S : float
        The student distils on ``D_S = tokens_per_param_S * N_S`` tokens.
    tokens_per_param_T : float
        Every teacher is trained supervised on ``tokens_per_param_T * N_T`` tokens.
    N_T_grid : array-like, optional
        Teacher sizes (default: that of :meth:`Posterior.capacity_gap`, 1e8 to ~3e11).
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (its figure is returned); default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Student loss (median and 90% band) against ``N_T`` on a log axis; the
        teacher's own loss; the same student trained supervised on ``D_S``
        tokens (horizontal line and band); and, in a strip at the bottom, a
        histogram over posterior draws of the teacher size that minimises the
        student loss (its median marked by a vertical line).
    """
    N_S = _scalar(N_S, "N_S")
    tpp_S = _scalar(tokens_per_param_S, "tokens_per_param_S")
    tpp_T = _scalar(tokens_per_param_T, "tokens_per_param_T")
    D_S = N_S * tpp_S
    curve, best = post.capacity_gap(N_S, D_S, N_T_grid, tpp_T)
    N_T = curve["N_T"].to_numpy()
    teacher = post.bands(N_T, curve["D_T"].to_numpy())
    sup = post.bands(N_S, D_S).iloc[0]
    fig, ax = _on_axes(ax, (7.5, 5.2))

    ax.axhspan(sup["q05"], sup["q95"], color=SUPERVISED, alpha=0.18, lw=0)
    ax.axhline(sup["median"], color=SUPERVISED, ls="--", lw=1.3)
    ax.fill_between(N_T, teacher["q05"], teacher["q95"], color=TEACHER, alpha=0.15, lw=0)
    ax.plot(N_T, teacher["median"], color=TEACHER, ls=":", lw=1.6)
    ax.fill_between(N_T, curve["q05"], curve["q95"], color=STUDENT, alpha=BAND, lw=0)
    ax.plot(N_T, curve["median"], color=STUDENT, lw=2)
    best_med = float(np.exp(np.median(np.log(best))))
    ax.axvline(best_med, color="k", lw=1.0, alpha=0.7)
    ax.axvline(N_S, color="0.5", lw=0.8, ls="-.")
    ax.text(N_S, 0.48, " teacher = student size", rotation=90, fontsize="x-small", color="0.35",
            va="bottom", ha="right", transform=transforms.blended_transform_factory(ax.transData, ax.transAxes))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(N_T.min(), N_T.max())
    lo = min(teacher["q05"].min(), curve["q05"].min(), sup["q05"])
    hi = max(teacher["q95"].max(), curve["q95"].max(), sup["q95"])
    ax.set_ylim(lo / (hi / lo) ** 0.35, hi * (hi / lo) ** 0.05)  # the bottom strip holds the histogram
    ax.xaxis.set_major_formatter(count_formatter())
    loss_ticks(ax)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_xlabel(f"teacher size N_T (each teacher trained on {tpp_T:g} tokens per parameter)")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(f"Capacity gap: {format_count(N_S)} student distilled on {format_count(D_S)} tokens "
                 f"({tpp_S:g} per parameter)", fontsize="medium")

    hax = ax.inset_axes([0.0, 0.0, 1.0, 0.2], sharex=ax)
    edges = np.sqrt(N_T[1:] * N_T[:-1])
    edges = np.concatenate([[N_T[0] ** 2 / edges[0]], edges, [N_T[-1] ** 2 / edges[-1]]])
    hax.hist(best, bins=edges, color="0.35", alpha=0.55)
    hax.patch.set_alpha(0.0)
    hax.set_yticks([])
    hax.tick_params(labelbottom=False, bottom=False)
    for side in ("top", "left", "right"):
        hax.spines[side].set_visible(False)
    hax.set_ylim(0, None)
    q05, q95 = np.quantile(best, [0.05, 0.95])
    hax.text(0.01, 0.92, f"best teacher per draw: median {format_count(best_med)}, 90% "
             f"{format_count(q05)} to {format_count(q95)}", transform=hax.transAxes,
             fontsize="x-small", va="top", color="0.2")
    handles = [
        Line2D([], [], color=STUDENT, lw=2, label="distilled student: median"),
        Patch(color=STUDENT, alpha=BAND, lw=0, label="distilled student: 90% band"),
        Line2D([], [], color=TEACHER, ls=":", lw=1.6, label="the teacher's own loss L_T"),
        Line2D([], [], color=SUPERVISED, ls="--", lw=1.3, label="same student, supervised, same tokens"),
        Patch(color="0.35", alpha=0.55, lw=0, label="histogram of the best teacher size"),
    ]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 0.21), fontsize="small", framealpha=0.85)
    return fig


def _teacher_args(teacher):
    """``(kwargs for student_log_loss_draws, legend label)`` of a teacher given as L_T or (N_T, D_T)."""
    if isinstance(teacher, numbers.Real):
        L_T = float(teacher)
        if not 0 < L_T < MAX_LOSS:
            raise BayesDistillError(f"a teacher given as one number is its loss L_T (nats per token), "
                                    f"got {teacher!r}; give a teacher size as a pair (N_T, D_T)")
        return {"L_T": L_T}, f"teacher of loss L_T = {L_T:.3g}"
    try:
        N_T, D_T = (float(v) for v in teacher)
    except (TypeError, ValueError):
        raise BayesDistillError(f"each teacher must be a loss L_T or a pair (N_T, D_T), got {teacher!r}") from None
    positive_array([N_T, D_T], "teacher (N_T, D_T)")
    return {"N_T": N_T, "D_T": D_T}, f"teacher {format_count(N_T)} on {format_count(D_T)} tokens"


def plot_student_vs_tokens(post, N_S, teachers, D_S=None) -> Figure:
    """Loss of a distilled student against its distillation tokens, for several teachers.

    Parameters
    ----------
    post : Posterior
        A posterior of a distillation law.
    N_S : float
        Student size (non-embedding parameters).
    teachers : sequence
        Each teacher as its loss ``L_T`` (a number) or as ``(N_T, D_T)``, its
        size and supervised training tokens (its loss then comes from the
        supervised law, draw by draw).
    D_S : array-like, optional
        Distillation tokens (default: ``N_S * np.logspace(0, 3.5, 60)``, 1 to
        ~3000 tokens per parameter).

    Returns
    -------
    matplotlib.figure.Figure
        Top: student loss (median and 90% band) per teacher, the teacher's loss
        (dotted, the limit as ``D_S`` grows) and the same student trained
        supervised on ``D_S`` tokens (black, with band). Bottom: the posterior
        probability that distillation from each teacher beats supervised training.
    """
    N_S = _scalar(N_S, "N_S")
    D = N_S * np.logspace(0, 3.5, 60) if D_S is None else np.sort(positive_array(D_S, "D_S"))
    if isinstance(teachers, numbers.Real) or len(teachers) == 0:
        raise BayesDistillError("teachers must be a non-empty list of losses L_T or pairs (N_T, D_T)")
    specs = [_teacher_args(t) for t in teachers]
    require_distillation(post.law, "distillation plots need")
    sup = np.asarray(post.log_loss_draws(np.full_like(D, N_S), D))
    fig, axes = new_axes(2, 1, figsize=(7.5, 6.6), sharex=True, height_ratios=[3, 1.3])
    ax, pax = axes[0, 0], axes[1, 0]
    s05, smed, s95 = _quantiles(np.exp(sup))
    ax.fill_between(D, s05, s95, color=SUPERVISED, alpha=0.2, lw=0)
    ax.plot(D, smed, color="k", lw=1.8, ls="--", label="same student, supervised")
    for i, (kw, label) in enumerate(specs):
        colour = f"C{i % 10}"
        mu, log_lt, _ = student_log_loss_draws(post, N_S, D, **kw)
        mu = np.asarray(mu)
        q05, med, q95 = _quantiles(np.exp(mu))
        ax.fill_between(D, q05, q95, color=colour, alpha=BAND, lw=0)
        ax.plot(D, med, color=colour, lw=2, label=f"distilled from a {label}")
        ax.axhline(float(np.median(np.exp(np.asarray(log_lt)))), color=colour, ls=":", lw=1.2)
        pax.plot(D, (mu < sup).mean(0), color=colour, lw=1.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    loss_ticks(ax)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(f"A {format_count(N_S)} student: distilled vs supervised (90% bands; dotted: teacher's loss)",
                 fontsize="medium")
    ax.legend(loc="upper right", fontsize="small", framealpha=0.85)
    top = ax.secondary_xaxis("top", functions=(lambda d: d / N_S, lambda m: m * N_S))
    top.set_xlabel("tokens per student parameter D_S / N_S", fontsize="small")
    pax.axhline(0.5, color="0.5", lw=0.8, ls="--")
    pax.set_ylim(-0.03, 1.03)
    pax.set_xlim(D.min(), D.max())
    pax.xaxis.set_major_formatter(count_formatter())
    pax.grid(True, alpha=0.3)
    pax.set_ylabel("P(distilled < supervised)", fontsize="small")
    pax.set_xlabel("distillation tokens D_S (supervised: training tokens)")
    return fig


def _pair_data(post, names, max_draws):
    """``{label: array (chain, draw)}`` of ``names``, log10 for :data:`LOG_PARAMS`, thinned to ``max_draws``."""
    p = post.idata.posterior
    per_chain = max(1, int(max_draws) // p.sizes["chain"])
    keep = np.unique(np.linspace(0, p.sizes["draw"] - 1, min(per_chain, p.sizes["draw"])).astype(int))
    out = {}
    for n in names:
        v = np.asarray(p[n].values, dtype=float)[:, keep]
        label = LABELS.get(n, n)
        out[f"log10 {label}" if n in LOG_PARAMS else label] = np.log10(v) if n in LOG_PARAMS else v
    return out


def plot_distill_pairs(post, var_names=None, kind: str = "scatter", max_draws: int = 400) -> Figure:
    """Pairwise posterior of the distillation coefficients, with marginals.

    Parameters
    ----------
    post : Posterior
        A posterior of a distillation law.
    var_names : list of str, optional
        Coefficients to show (default: every distillation coefficient of the
        law, e.g. ``A_prime, B_prime, alpha_prime, beta_prime, gamma_prime, c0,
        c1, f1, d1``). ``A_prime``, ``B_prime`` and ``c1`` are shown as log10.
    kind : {"scatter", "kde", "hexbin"}
        Off-diagonal panels: the draws, contours of their density (25%, 50% and 90% of the mass,
        as in :func:`arviz_plots.plot_pair`) or hexagonal bins.
    max_draws : int
        Thin the draws (evenly, per chain) to at most this many in all.

    Returns
    -------
    matplotlib.figure.Figure
        The lower triangle of :func:`arviz_plots.plot_pair` with marginal densities
        on the diagonal and the medians as lines. Expect strong correlations: ``A'`` with ``alpha'``
        (and ``gamma'``), and ``c1`` with ``d1`` and ``f1`` (strength, place
        and sharpness of the capacity-gap break).
    """
    require_distillation(post.law, "distillation plots need")
    names = list(post.law.distill_params if var_names is None else var_names)
    unknown = [n for n in names if n not in post.idata.posterior]
    if unknown or len(names) < 2:
        raise BayesDistillError(f"var_names must name two or more coefficients of the posterior; "
                                f"unknown: {unknown}" if unknown else "var_names needs two or more names")
    if kind not in ("scatter", "kde", "hexbin"):
        raise BayesDistillError(f"kind must be 'scatter', 'kde' or 'hexbin', got {kind!r}")
    import arviz_base as azb
    import arviz_plots as azp

    data = _pair_data(post, names, max_draws)
    n = len(data)
    visuals = {"scatter": {"alpha": 0.45, "color": STUDENT} if kind == "scatter" else False,
               "contour": kind == "kde", "dist": {"color": STUDENT}}
    with azb.rc_context({"plot.max_subplots": n * n + 1}):
        pm = azp.plot_pair(azb.from_dict({"posterior": data}), marginal=True, triangle="lower", visuals=visuals,
                           backend="matplotlib", figure_kwargs={"figsize": (1.55 * n + 1.0, 1.55 * n + 0.6)})
    axes, labels = pm.viz["plot"].values, list(data)
    med = {k: float(np.median(v)) for k, v in data.items()}
    for i in range(n):
        axes[i, i].axvline(med[labels[i]], color="k", lw=0.8, alpha=0.6)
        for j in range(i):
            ax = axes[i, j]
            if kind == "hexbin":
                ax.hexbin(data[labels[j]].ravel(), data[labels[i]].ravel(), gridsize=15, cmap="Oranges", mincnt=1)
            ax.axvline(med[labels[j]], color="k", lw=0.8, alpha=0.6)
            ax.axhline(med[labels[i]], color="k", lw=0.8, alpha=0.6)
            ax.scatter([med[labels[j]]], [med[labels[i]]], s=14, color="k", zorder=3)
    fig = from_arviz_plots(pm)
    for ax in fig.axes:
        ax.tick_params(labelsize=7)
        ax.xaxis.label.set_fontsize(9)
        ax.yaxis.label.set_fontsize(9)
    kept = next(iter(data.values())).size
    fig.suptitle(f"Distillation coefficients: pairwise posterior ({kept} draws; log10 of A', B', c1; "
                 "lines: medians)", fontsize="medium")
    return fig
