"""Inference: the numpyro model, NUTS sampling (compiled once, fitted many times), the Posterior (predictions, save/load), the fit review,
identification, distilled-student predictions, evidence and model comparison (names load on first use)."""

from .._lazy import lazy_exports

_EXPORTS = {
    "average": ".averaging", "LawComparison": ".comparison", "compare": ".comparison",
    "fit_many": ".many",
    "Posterior": ".posterior", "load": ".posterior",
    "fit": ".sampling",
    "default_posterior": ".shipped",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
