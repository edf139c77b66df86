"""Allocation: compute-optimal allocations per posterior draw (supervised and distillation), teachers (names load on first use)."""

from .._lazy import lazy_exports

_EXPORTS = {
    "allocate": ".distillation", "optimal": ".distillation",
    "ComputeOptimal": ".supervised", "compute_optimal": ".supervised",
    "best_teacher": ".teachers", "choose_teacher": ".teachers",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
