"""Laws: pure JAX loss laws, their priors and FLOP accounting. Knows nothing of numpyro or data.

The built-in laws (supervised and distillation) are registered by name on first lookup
(:func:`get_law`, :func:`list_laws`). Names load their module on first use.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "Law": ".base", "get_law": ".base", "law_from_spec": ".base", "list_laws": ".base", "register_law": ".base",
    "DistillationLaw": ".distillation", "paper_priors": ".distillation",
    "ArchSettings": ".flops", "distillation_flops": ".flops", "forward_flops": ".flops", "supervised_flops": ".flops",
    "Prior": ".priors",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
