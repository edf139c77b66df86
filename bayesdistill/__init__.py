"""bayesdistill: Bayesian scaling laws of knowledge distillation.

Subpackages, each importing only those below it (enforced by import-linter, see ``.importlinter``):
:mod:`.cli` > :mod:`.report` > :mod:`.plots` > :mod:`.decisions` > :mod:`.allocation` | :mod:`.inference`
> :mod:`.data` > :mod:`.laws` > ground (``errors``, ``runtime``, ``_checks``, ``_files``, ``_version``).
Every name below loads its module on first use (``bayesdistill._lazy``): ``import bayesdistill`` is
instant, and JAX, numpyro, ArviZ, pandas and matplotlib arrive with the first call that needs them.
"""

from ._lazy import lazy_exports
from ._version import __version__
from .errors import (
    BayesDistillError,
    ExtrapolationWarning,
    FitWarning,
    LawError,
    PosteriorFileError,
    SweepError,
    SweepWarning,
)
from .runtime import use_cpu_cores

use_cpu_cores()  # before JAX starts its CPU backend: chains on separate cores (see bayesdistill.runtime)

_EXPORTS = {
    "allocate": ".allocation", "best_teacher": ".allocation", "choose_teacher": ".allocation",
    "compute_optimal": ".allocation", "optimal": ".allocation",
    "Sweep": ".data", "paper_sweep": ".data", "read_sweep": ".data", "simulate_sweep": ".data",
    "RecipeComparison": ".decisions", "Recommendation": ".decisions", "compare_recipes": ".decisions",
    "efficiency": ".decisions", "least_budget": ".decisions", "recommend": ".decisions",
    "value_of_information": ".decisions",
    "Posterior": ".inference", "average": ".inference", "compare": ".inference", "default_posterior": ".inference", "fit": ".inference",
    "fit_many": ".inference", "load": ".inference",
    "DistillationLaw": ".laws", "Law": ".laws", "Prior": ".laws", "distillation_flops": ".laws",
    "forward_flops": ".laws", "get_law": ".laws", "list_laws": ".laws", "paper_priors": ".laws",
    "register_law": ".laws", "supervised_flops": ".laws",
    "plots": ".plots",
}

__all__ = ["BayesDistillError", "ExtrapolationWarning", "FitWarning", "LawError", "PosteriorFileError",
           "SweepError", "SweepWarning", "__version__", *sorted(k for k in _EXPORTS if k != "plots")]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
