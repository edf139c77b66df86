"""Planning questions built on the per-draw optima: budgets for a target, and efficiency.

- :func:`least_budget` (the dual of :func:`bayesdistill.recommend`): per
  scenario, the least budget whose best single allocation reaches a target
  loss with probability ``p``.
- :func:`efficiency` answers "distillation is k times more compute-efficient":
  per draw, the compute (and tokens) supervised training needs to reach a
  target loss, divided by what compute-optimal distillation needs.

Both take a distillation fit or a mixture of distillation fits of one sweep (``bd.average``):
each draw answers with its own law.

Both work on a grid of budgets (log-spaced) and interpolate in log budget; :func:`efficiency`'s
ratio is the one :func:`bayesdistill.compare_recipes` computes between two recipes
(:func:`bayesdistill.decisions.recipes.compute_ratio`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..allocation.distillation import allocate, check_student_size
from ..errors import BayesDistillError
from ..laws.flops import PAPER_ARCH, forward_flops
from .recipes import compute_ratio, crossing, ratio_interval
from .recommendation import (
    check_scenarios,
    mixture_candidates,
    mixture_losses,
    require_distillation_fit,
    review_gate,
)

BUDGETS = np.logspace(18, 26, 33)


def _check_target(target_loss):
    try:
        t = float(target_loss)
    except (TypeError, ValueError):
        raise BayesDistillError(f"target_loss must be a number of nats, got {target_loss!r}") from None
    if not 0 < t < 100:
        raise BayesDistillError(f"target_loss must be a positive loss in nats, got {target_loss!r}")
    return t


def _check_budget_grid(budgets, student_size):
    C = np.sort(np.atleast_1d(np.asarray(budgets, dtype=float)))
    if C.ndim != 1 or len(C) < 2 or not np.all(np.isfinite(C)) or np.any(C <= 0):
        raise BayesDistillError("budgets must be at least two positive finite FLOP values")
    floor = 3 * forward_flops(float(student_size)) * 1e6
    C = C[C > floor * 1.01]
    if len(C) < 2:
        raise BayesDistillError(f"budgets are too small to train a {student_size:.3g}-parameter student on "
                                f"1e6 tokens ({floor:.3g} FLOPs)")
    return C


def least_budget(posterior, *, target_loss, student_size, p=0.9, scenarios=("teacher_inference",
                 "pretraining_inference", "supervised"), budgets=BUDGETS, n_candidates=64, seed=0,
                 strict=False, arch=PAPER_ARCH) -> pd.DataFrame:
    """Least budget whose best allocation reaches ``target_loss`` with probability >= ``p``.

    For each budget on the grid and each scenario the candidate allocations of
    :func:`bayesdistill.decisions.recommendation.candidates` are scored by P(loss <= target) over
    the posterior; the budget where the best one first reaches ``p`` is
    interpolated in log budget.

    Returns
    -------
    pandas.DataFrame
        One row per scenario: ``budget`` (NaN when not reached on the grid),
        ``reached`` and ``p_at_max_budget``.
    """
    parts = require_distillation_fit(posterior, "least_budget needs")
    student_size = check_student_size(student_size)
    t = _check_target(target_loss)
    if not 0 < p < 1:
        raise BayesDistillError(f"p must lie in (0, 1), got {p!r}")
    scenarios = check_scenarios(scenarios)
    C = _check_budget_grid(budgets, student_size)
    review_gate(posterior, strict, "this budget estimate")
    rows = []
    for sc in scenarios:
        prob = []
        for c in C:
            cand = mixture_candidates(parts, c, student_size, sc, n_candidates=n_candidates, seed=seed, arch=arch)
            L = mixture_losses(parts, student_size, cand)
            prob.append(float((L <= t).mean(1).max()))
        prob = np.maximum.accumulate(prob)  # more budget never hurts: the smaller budget's plan stays possible
        logc = crossing(np.log(C), prob, p)
        rows.append({"scenario": sc, "budget": float(np.exp(logc)) if np.isfinite(logc) else np.nan,
                     "reached": bool(np.isfinite(logc)), "p_at_max_budget": float(prob[-1])})
    return pd.DataFrame(rows).set_index("scenario")


def _allocate_parts(parts, budget, student_size, scenario, arch) -> dict:
    """Per-draw optimal ``loss`` and ``D_S`` of every law of ``parts`` (:func:`law_draws`), draws concatenated."""
    res = [allocate(law, theta, budget, student_size, scenario, arch) for law, theta in parts]
    return {k: np.concatenate([np.asarray(r[k]) for r in res]) for k in ("loss", "D_S")}


def efficiency(posterior, *, target_loss, student_size, scenario="teacher_inference", budgets=BUDGETS,
               prob=0.9, strict=False, arch=PAPER_ARCH):
    """Compute and token efficiency of distillation against supervised training, per draw.

    For each draw, the compute-optimal distillation loss (``scenario``) and the
    supervised loss of the same student are computed on the budget grid; the
    least budget reaching ``target_loss`` is interpolated in log budget for each.

    Returns
    -------
    summary : pandas.DataFrame
        Rows ``compute_ratio`` (supervised FLOPs / distillation FLOPs) and
        ``token_ratio`` (supervised tokens / student distillation tokens), columns
        ``median``, the ``prob`` interval, ``p_gt_1`` (P(distillation needs less))
        and ``unreachable_supervised`` / ``unreachable_distill`` (fraction of draws
        where the target is not reached on the grid).
    draws : pandas.DataFrame
        Per draw: ``C_supervised``, ``C_distill``, ``D_supervised``, ``D_distill`` and the ratios.
    """
    parts = require_distillation_fit(posterior, "efficiency needs")
    student_size = check_student_size(student_size)
    t = _check_target(target_loss)
    check_scenarios(scenario)
    if scenario == "supervised":
        raise BayesDistillError("efficiency compares a distillation scenario with supervised training; "
                                "pick a distillation scenario")
    C = _check_budget_grid(budgets, student_size)
    review_gate(posterior, strict, "this efficiency estimate")
    res = {sc: [_allocate_parts(parts, c, student_size, sc, arch) for c in C] for sc in (scenario, "supervised")}
    logC = np.log(C)
    loss = {sc: np.stack([r["loss"] for r in res[sc]], axis=-1) for sc in res}  # (draws, budgets)
    c_sup, c_dis, ratio = compute_ratio(logC, loss["supervised"], loss[scenario], t)  # one path with compare_recipes
    out = {"C_distill": c_dis, "C_supervised": c_sup}
    for tag, sc in (("distill", scenario), ("supervised", "supervised")):
        logD = np.stack([np.log(r["D_S"]) for r in res[sc]], axis=-1)
        out[f"D_{tag}"] = np.exp([np.interp(x, logC, d) if np.isfinite(x) else np.nan
                                  for x, d in zip(np.log(out[f"C_{tag}"]), logD)])
    draws = pd.DataFrame({k: out[k] for k in ("C_distill", "D_distill", "C_supervised", "D_supervised")})
    draws["compute_ratio"] = ratio
    draws["token_ratio"] = draws["D_supervised"] / draws["D_distill"]
    rows = {}
    for name, ref, alt in (("compute_ratio", "C_supervised", "C_distill"), ("token_ratio", "D_supervised", "D_distill")):
        r = ratio_interval(draws[name].to_numpy(), draws[ref].to_numpy(), draws[alt].to_numpy(), prob)
        del r["unreachable_ref"], r["unreachable_alt"]
        rows[name] = {**r, "unreachable_supervised": float(np.isnan(draws["C_supervised"]).mean()),
                      "unreachable_distill": float(np.isnan(draws["C_distill"]).mean())}
    return pd.DataFrame(rows).T, draws
