"""Figures of decisions: loss of each option, compute shares against budget, where distillation wins.

Like :mod:`bayesdistill.plots`, every function returns a
:class:`matplotlib.figure.Figure` built without pyplot and never shows it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..allocation.distillation import allocate
from ..decisions.recommendation import Recommendation, check_scenarios
from ..errors import BayesDistillError
from ..laws.distillation import require_distillation
from .fits import BAND, count_formatter, new_axes

SHARES = (("share_student", "student training", "C0"), ("share_logits", "teacher logits", "C1"),
          ("share_teacher", "teacher training", "C3"))


def plot_option_losses(rec: Recommendation) -> Figure:
    """Posterior distribution of the student loss of each option's best allocation.

    Needs a :class:`~bayesdistill.decisions.recommendation.Recommendation` that kept its per-option
    losses (``rec.option_losses``, filled by :func:`bayesdistill.recommend`).
    """
    losses = getattr(rec, "option_losses", None)
    if not losses:
        raise BayesDistillError("this recommendation carries no per-option losses to plot")
    fig, axes = new_axes(figsize=(7.0, 4.2))
    ax = axes[0, 0]
    names = list(losses)
    parts = ax.violinplot([losses[n] for n in names], orientation="horizontal", showmedians=True,
                          quantiles=[[0.05, 0.95]] * len(names))
    for body, n in zip(parts["bodies"], names):
        body.set_alpha(0.5 if n != rec.option else 0.8)
    ax.set_yticks(range(1, len(names) + 1), [("> " if n == rec.option else "") + n for n in names])
    ax.set_xlabel("student loss (nats), best allocation of each option")
    ax.set_title(f"Options at {rec.budget:.2g} FLOPs, student {rec.student_size:.2g} params "
                 f"(P(distil beats supervised) = {rec.p_distill_beats_supervised:.2f})", fontsize=9)
    return fig


def plot_shares(posterior, *, student_size, scenario="pretraining_inference", budgets=None) -> Figure:
    """Compute shares (student training, teacher logits, teacher training) against budget, with 90% bands."""
    require_distillation(posterior.law, "plot_shares needs")
    check_scenarios(scenario)
    if scenario == "supervised":
        raise BayesDistillError("supervised training spends the whole budget on the student; pick a "
                                "distillation scenario")
    budgets = np.logspace(19, 25, 13) if budgets is None else np.asarray(budgets, dtype=float)
    res = [allocate(posterior.law, posterior.theta(), c, student_size, scenario) for c in budgets]
    fig, axes = new_axes(figsize=(7.0, 4.2))
    ax = axes[0, 0]
    for key, label, colour in SHARES:
        v = np.stack([r[key] for r in res], axis=1)
        q = np.quantile(v, [0.05, 0.5, 0.95], axis=0)
        if np.all(q[2] == 0):
            continue
        ax.fill_between(budgets, q[0], q[2], color=colour, alpha=BAND)
        ax.plot(budgets, q[1], color=colour, label=label)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("budget (FLOPs)")
    ax.set_ylabel("share of the budget")
    ax.set_title(f"{scenario}: student {student_size:.2g} params (median, 90% band over draws)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_distill_map(posterior, *, scenario="teacher_inference", sizes=None, budgets=None) -> Figure:
    """P(compute-optimal distillation beats compute-optimal supervised training) over student size and budget.

    Each cell compares, per draw, the optimal distilled student (``scenario``)
    with the same student trained supervised on the whole budget.
    """
    require_distillation(posterior.law, "plot_distill_map needs")
    check_scenarios(scenario)
    sizes = np.logspace(8, 10.5, 8) if sizes is None else np.asarray(sizes, dtype=float)
    budgets = np.logspace(19, 25, 9) if budgets is None else np.asarray(budgets, dtype=float)
    theta = posterior.theta()
    P = np.full((len(sizes), len(budgets)), np.nan)
    for i, n in enumerate(sizes):
        for j, c in enumerate(budgets):
            try:
                d = allocate(posterior.law, theta, c, n, scenario)["loss"]
                s = allocate(posterior.law, theta, c, n, "supervised")["loss"]
            except BayesDistillError:  # budget too small for this student within the bounds
                continue
            P[i, j] = np.mean(d < s)
    fig, axes = new_axes(figsize=(7.0, 4.6))
    ax = axes[0, 0]
    mesh = ax.pcolormesh(budgets, sizes, np.ma.masked_invalid(P), cmap="RdBu", vmin=0, vmax=1, shading="nearest")
    cs = ax.contour(budgets, sizes, np.nan_to_num(P, nan=0.0), levels=[0.5], colors="k", linewidths=1)
    ax.clabel(cs, fmt={0.5: "P = 0.5"}, fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(count_formatter())
    ax.set_xlabel("budget (FLOPs)")
    ax.set_ylabel("student size N_S")
    ax.set_title(f"P(distillation beats supervised), {scenario}", fontsize=9)
    fig.colorbar(mesh, ax=ax, label="probability")
    return fig
