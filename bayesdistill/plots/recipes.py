"""Figure of a recipe comparison: the compute multiplier of B over A against budget, with P(B beats A).

Like :mod:`bayesdistill.plots`, the function returns a :class:`matplotlib.figure.Figure` built
without pyplot and never shows it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..decisions.recipes import RecipeComparison
from ..errors import BayesDistillError
from .fits import BAND, count_formatter, new_axes


def plot_recipes(res: RecipeComparison, prob: float = 0.9) -> Figure:
    """Median multiplier and its ``prob`` interval over the budgets (log scales), P(B beats A) below.

    ``res`` is the result of :func:`bayesdistill.compare_recipes`; a multiplier above 1 means recipe
    B reaches recipe A's compute-optimal loss with less compute. Crossover budgets are marked.
    """
    if not isinstance(res, RecipeComparison):
        raise BayesDistillError(f"plot_recipes needs the result of bd.compare_recipes, got {type(res).__name__}")
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    m = np.where(res.multiplier > 0, res.multiplier, np.nan)
    q = np.nanquantile(m, [lo, 0.5, hi], axis=0)
    fig, axes = new_axes(2, 1, figsize=(7.0, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    ax, axp = axes[0, 0], axes[1, 0]
    C = res.budgets
    ax.fill_between(C, q[0], q[2], alpha=BAND, color="C0", label=f"{prob:.0%} interval")
    ax.plot(C, q[1], "o-", color="C0", label="median")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(f"compute multiplier of {res.b!r}\n(x less compute than {res.a!r})")
    ax.set_title(f"{res.b!r} against {res.a!r}: compute to reach {res.a!r}'s compute-optimal loss")
    axp.plot(C, res.table["p_b_beats_a"], "o-", color="C1")
    axp.axhline(0.5, color="k", lw=0.8)
    axp.set_ylim(-0.03, 1.03)
    axp.set_ylabel(f"P({res.b} beats {res.a})")
    axp.set_xlabel(f"training budget C (FLOPs, {res.accounting})")
    axp.xaxis.set_major_formatter(count_formatter())
    for c in res.crossovers:
        for a in (ax, axp):
            a.axvline(c, color="C3", ls="--", lw=1)
    ax.legend(loc="best")
    return fig
