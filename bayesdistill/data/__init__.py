"""Data: reading and validating sweeps, the shipped datasets and the synthetic paper replica (names load on first use)."""

from .._lazy import lazy_exports

_EXPORTS = {
    "list_datasets": ".datasets", "load_dataset": ".datasets",
    "paper_sweep": ".replica", "simulate_sweep": ".replica",
    "Sweep": ".sweep", "read_sweep": ".sweep",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
