"""Allocation: compute-optimal allocations per posterior draw (supervised and distillation), teachers."""

from .distillation import allocate, optimal
from .supervised import ComputeOptimal, compute_optimal
from .teachers import best_teacher, choose_teacher

__all__ = ["ComputeOptimal", "allocate", "best_teacher", "choose_teacher", "compute_optimal", "optimal"]
