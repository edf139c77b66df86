"""Which recipe to scale: the effective compute multiplier between two fits, per posterior draw.

One quantity serves two questions:

- :func:`compare_recipes`: for recipes A and B (two groups of a grouped fit, or two posteriors)
  and a budget ``C``, how much less compute B needs to reach the loss A reaches compute-optimally
  at ``C``: the multiplier ``m(C) = C / C_B(L*_A(C))`` (``m > 1``: B is better; ``m = 2``: B
  reaches A's loss with half the compute), with ``P(B beats A at C) = P(m > 1)`` and the budget
  where the preferred recipe changes, if any;
- :func:`bayesdistill.efficiency`: the same ratio between supervised training and distillation
  for a target loss.

Both go through :func:`compute_ratio`: per draw, the least budget on a log grid at which each
loss frontier (made non-increasing: more budget never hurts) reaches a target, interpolated in
log budget (:func:`least_compute`), and the ratio of the two; :func:`ratio_interval` summarises
it with draws that never reach the target counted as 0 or infinity rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..allocation.supervised import optimal_size
from ..errors import BayesDistillError, InputError
from .recommendation import review_gate

#: decades of budget below and above the budgets asked for, over which recipe B's frontier is solved
GRID_MARGIN, GRID_STEP = 3.0, 0.1


def crossing(logC, y, level):
    """First log budget where ``y`` (non-decreasing along its last axis) reaches ``level``; NaN if never.

    ``level`` broadcasts against ``y``'s leading axes; linear interpolation in log budget.
    """
    logC = np.asarray(logC, dtype=float)
    y, level = np.asarray(y, dtype=float), np.asarray(level, dtype=float)
    shape = np.broadcast_shapes(y.shape[:-1], level.shape)
    y, level = np.broadcast_to(y, shape + y.shape[-1:]), np.broadcast_to(level, shape)
    ok = y >= level[..., None]
    j = ok.argmax(-1)
    jm = np.maximum(j - 1, 0)
    y0 = np.take_along_axis(y, jm[..., None], -1)[..., 0]
    y1 = np.take_along_axis(y, j[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(y1 == y0, 0.0, (level - y0) / (y1 - y0))
    out = np.where(j == 0, logC[0], logC[jm] + w * (logC[j] - logC[jm]))
    return np.where(ok.any(-1), out, np.nan)


def least_compute(logC, loss, target):
    """Per draw, the log of the least budget whose (best-so-far) loss on the grid reaches ``target``.

    ``loss`` (draws, budgets) is each draw's optimal loss at ``exp(logC)``; ``target`` broadcasts
    against the draws (and may add axes after them: one target per draw and budget asked for).
    NaN where the grid never reaches it.
    """
    best = np.maximum.accumulate(-np.asarray(loss, dtype=float), axis=-1)
    t = np.asarray(target, dtype=float)
    if t.ndim == 2:  # (draws, k): one frontier per draw, k targets
        best = best[:, None, :]
    return crossing(logC, best, -t)


def compute_ratio(logC, loss_ref, loss_alt, target):
    """Least budgets of the reference and the alternative to reach ``target``, and their ratio.

    Returns ``(C_ref, C_alt, ratio)``: ``ratio = C_ref / C_alt`` (> 1: the alternative needs less),
    per draw; NaN budgets where the grid never reaches the target (see :func:`ratio_interval`).
    """
    c_ref = np.exp(least_compute(logC, loss_ref, target))
    c_alt = np.exp(least_compute(logC, loss_alt, target))
    with np.errstate(invalid="ignore"):
        return c_ref, c_alt, c_ref / c_alt


def ratio_interval(ratio, c_ref, c_alt, prob: float = 0.9) -> dict:
    """Median, ``prob`` interval and P(ratio > 1) of per-draw ratios ``c_ref / c_alt`` (1-D).

    A draw where only the alternative reaches the target counts as an infinite ratio, one where only
    the reference does as 0; draws where neither does are left out. "nearest" quantiles, so that
    infinite draws never interpolate to NaN.
    """
    v = np.where(np.isnan(c_ref) & np.isfinite(c_alt), np.inf, ratio)
    v = np.where(np.isnan(c_alt) & np.isfinite(c_ref), 0.0, v)
    fin = v[~np.isnan(v)]
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    qs = np.quantile(fin, [0.5, lo, hi], method="nearest") if len(fin) else np.full(3, np.nan)
    return {"median": qs[0], f"q{lo * 100:02.0f}": qs[1], f"q{hi * 100:02.0f}": qs[2],
            "p_gt_1": float(np.mean(fin > 1)) if len(fin) else np.nan,
            "unreachable_ref": float(np.isnan(c_ref).mean()), "unreachable_alt": float(np.isnan(c_alt).mean())}


@dataclass
class RecipeComparison:
    """Recipe B against recipe A over budgets (see :func:`compare_recipes`).

    Attributes
    ----------
    a, b : str
        The recipes' names.
    table : pandas.DataFrame
        One row per budget: ``multiplier`` median and interval (``q05``, ``q95`` for ``prob=0.9``),
        ``p_b_beats_a``, the compute-optimal losses ``loss_a``, ``loss_b`` (medians) and
        ``unreachable`` (fraction of draws where B's frontier never reaches A's loss on the grid).
    multiplier : ndarray (draws, budgets)
        Per draw; 0 where B never reaches A's loss within ``GRID_MARGIN`` decades of the budget.
    crossovers : list of float
        Budgets (interpolated in log budget) where P(B beats A) crosses 1/2: the preferred recipe
        changes there. Empty when one recipe is preferred over the whole range.
    """

    a: str
    b: str
    budgets: np.ndarray
    table: pd.DataFrame
    multiplier: np.ndarray
    crossovers: list
    accounting: str

    def preferred(self) -> list[str]:
        """The recipe preferred (P > 1/2) at each budget."""
        return [self.b if p > 0.5 else self.a for p in self.table["p_b_beats_a"]]

    def __repr__(self) -> str:
        t = self.table
        lo, hi = [c for c in t.columns if c.startswith("q")][:2]
        lines = [f"Recipe {self.b!r} against {self.a!r} ({self.accounting} accounting): compute multiplier "
                 f"= how many times less compute {self.b!r} needs to reach {self.a!r}'s compute-optimal loss"]
        for c, r in t.iterrows():
            lines.append(f"  C = {c:.3g} FLOPs: x{r['multiplier']:.3g} [{r[lo]:.3g}, {r[hi]:.3g}], "
                         f"P({self.b} beats {self.a}) = {r['p_b_beats_a']:.2f}")
        lines.append("  preferred recipe changes at " + (", ".join(f"{c:.3g}" for c in self.crossovers) + " FLOPs"
                                                         if self.crossovers else "no budget in this range"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "accounting": self.accounting, "crossovers": self.crossovers,
                "table": self.table.reset_index().to_dict(orient="records")}


def _recipes(a, b, posterior):
    if posterior is not None:
        names = getattr(posterior, "group_names", [])
        if not names:
            raise InputError("posterior= must be a grouped fit (bd.fit(..., groups=column)); give two posteriors "
                             "as a and b instead")
        return posterior.group(a), posterior.group(b), str(a), str(b)
    for x, what in ((a, "a"), (b, "b")):
        if not hasattr(x, "law") or getattr(x, "group_names", []):
            raise InputError(f"{what} must be a supervised Posterior (or a group name, with posterior=), got "
                             f"{type(x).__name__}")
    name = lambda p, d: p.config.get("group", {}).get("name", d)  # noqa: E731
    return a, b, name(a, "A"), name(b, "B")


def compare_recipes(a, b, *, posterior=None, budgets=(1e21, 1e22, 1e23), accounting: str = "6ND",
                    prob: float = 0.9, strict: bool = False) -> RecipeComparison:
    """The effective compute multiplier of recipe B over recipe A, per draw, over ``budgets``.

    Parameters
    ----------
    a, b : str or Posterior
        Group names of ``posterior`` (a grouped fit: draws are joint, so the comparison keeps the
        correlation of the recipes' coefficients) or two supervised posteriors (draws paired by
        index, as independent fits).
    budgets : sequence of float
        FLOPs (at least one).
    accounting : {"6ND", "paper"}
        Compute of a run, as in :func:`bayesdistill.compute_optimal`.
    prob : float
        Interval mass.

    Returns
    -------
    RecipeComparison
    """
    pa, pb, na, nb = _recipes(a, b, posterior)
    for p, n in ((pa, na), (pb, nb)):
        if p.is_distillation:
            raise BayesDistillError(f"recipe {n!r} is a distillation fit; compare_recipes compares supervised "
                                    "laws (use bd.efficiency for distillation against supervised training)")
    C = np.sort(np.atleast_1d(np.asarray(budgets, dtype=float)))
    if C.ndim != 1 or not len(C) or not np.all(np.isfinite(C)) or np.any(C <= 1e13):
        raise BayesDistillError(f"budgets must be FLOP values above 1e13, got {budgets!r}")
    if not 0 < prob < 1:
        raise BayesDistillError(f"prob must be in (0, 1), got {prob!r}")
    review_gate(pa, strict, "this recipe comparison")
    if pb is not pa and posterior is None:
        review_gate(pb, strict, "this recipe comparison")
    n = min(pa.n_draws, pb.n_draws)
    ta = {k: v[:n] for k, v in pa.theta().items()}
    tb = {k: v[:n] for k, v in pb.theta().items()}
    lo_dec, hi_dec = np.log10(C[0]) - GRID_MARGIN, np.log10(C[-1]) + GRID_MARGIN
    grid = 10 ** np.arange(max(lo_dec, 13.0), hi_dec + GRID_STEP / 2, GRID_STEP)
    loss_a = optimal_size(pa.law, ta, C, accounting)[2]            # (draws, budgets): A's optimum at C
    frontier_b = optimal_size(pb.law, tb, grid, accounting)[2]     # (draws, grid)
    loss_b = optimal_size(pb.law, tb, C, accounting)[2]
    c_b = np.exp(least_compute(np.log(grid), frontier_b, loss_a))  # (draws, budgets)
    c_a = np.broadcast_to(C, c_b.shape)
    mult = np.where(np.isnan(c_b), 0.0, c_a / c_b)
    rows = []
    for j, c in enumerate(C):
        r = ratio_interval(c_a[:, j] / c_b[:, j], c_a[:, j], c_b[:, j], prob)
        rows.append({"budget": c, "multiplier": r["median"], **{k: r[k] for k in r if k.startswith("q")},
                     "p_b_beats_a": float(np.mean(loss_b[:, j] < loss_a[:, j])),
                     "loss_a": float(np.median(loss_a[:, j])), "loss_b": float(np.median(loss_b[:, j])),
                     "unreachable": r["unreachable_alt"]})
    table = pd.DataFrame(rows).set_index("budget")
    # where P(B beats A) crosses 1/2, the median multiplier crosses 1: interpolate its log (smooth in log C)
    p = table["p_b_beats_a"].to_numpy() - 0.5
    with np.errstate(divide="ignore"):
        m = np.log(table["multiplier"].to_numpy())
    y = np.where(np.isfinite(m), m, p)
    logc = np.log(C)
    cross = [float(np.exp(logc[j] - y[j] * (logc[j + 1] - logc[j]) / (y[j + 1] - y[j])))
             for j in range(len(C) - 1) if p[j] * p[j + 1] < 0 and y[j] * y[j + 1] < 0]
    return RecipeComparison(na, nb, C, table, mult, cross, accounting)
