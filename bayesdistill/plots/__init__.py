"""Plots (matplotlib): every function returns a Figure. Imported on first use of ``bd.plots``.

:mod:`.fits` (fit, residuals, frontier, IsoFLOP curves, trace, rank), :mod:`.distillation` (capacity gap, student
against tokens, pairs), :mod:`.decisions` (option losses, compute shares, where distillation wins),
:mod:`.recipes` (the compute multiplier of one recipe over another), :mod:`.comparison` (law variants compared:
evidence, prior sensitivity, pointwise LOO, extrapolation, frontiers of each law and of their average).
"""

from .comparison import (
    plot_evidence,
    plot_extrapolation,
    plot_frontiers,
    plot_loo_differences,
    plot_prior_sensitivity,
)
from .decisions import plot_distill_map, plot_option_losses, plot_shares
from .distillation import plot_capacity_gap, plot_distill_pairs, plot_student_vs_tokens
from .fits import (
    format_count,
    plot_fit,
    plot_frontier,
    plot_isoflop,
    plot_rank,
    plot_residuals,
    plot_trace,
)
from .recipes import plot_recipes

__all__ = ["format_count", "plot_capacity_gap", "plot_distill_map", "plot_distill_pairs", "plot_evidence",
           "plot_extrapolation", "plot_fit", "plot_frontier", "plot_frontiers", "plot_loo_differences",
           "plot_prior_sensitivity", "plot_isoflop", "plot_option_losses", "plot_rank", "plot_recipes", "plot_residuals", "plot_shares",
           "plot_student_vs_tokens", "plot_trace"]
