"""bayesdistill: Bayesian scaling laws of knowledge distillation.

Subpackages, each importing only those below it (enforced by import-linter, see ``.importlinter``):
:mod:`.cli` > :mod:`.report` > :mod:`.plots` > :mod:`.decisions` > :mod:`.allocation` | :mod:`.inference`
> :mod:`.data` > :mod:`.laws` > ground (``errors``, ``runtime``, ``_checks``, ``_files``, ``_version``).
:mod:`.plots` (matplotlib) is imported on first use of ``bd.plots``.
"""

from ._version import __version__
from .runtime import import_arviz_quietly, use_cpu_cores

use_cpu_cores()  # before JAX starts its CPU backend: chains on separate cores (see bayesdistill.runtime)
import_arviz_quietly()  # before any module imports arviz: no date-dependent banner

from .allocation import allocate, best_teacher, choose_teacher, compute_optimal, optimal  # noqa: E402
from .data import Sweep, paper_sweep, read_sweep, simulate_sweep  # noqa: E402
from .decisions import (  # noqa: E402
    RecipeComparison,
    Recommendation,
    compare_recipes,
    efficiency,
    least_budget,
    recommend,
    value_of_information,
)
from .errors import (  # noqa: E402
    BayesDistillError,
    ExtrapolationWarning,
    FitWarning,
    LawError,
    PosteriorFileError,
    SweepError,
    SweepWarning,
)
from .inference import Posterior, compare, default_posterior, fit, fit_many, load  # noqa: E402
from .laws import (  # noqa: E402
    DistillationLaw,
    Law,
    Prior,
    distillation_flops,
    forward_flops,
    get_law,
    list_laws,
    paper_priors,
    register_law,
    supervised_flops,
)

__all__ = [
    "BayesDistillError", "ExtrapolationWarning", "DistillationLaw", "FitWarning", "paper_priors", "Law", "LawError", "Posterior", "PosteriorFileError",
    "Prior", "Sweep", "SweepError", "SweepWarning", "fit", "fit_many", "get_law", "list_laws", "load",
    "read_sweep", "register_law", "__version__", "compute_optimal", "distillation_flops",
    "forward_flops", "supervised_flops", "paper_sweep", "simulate_sweep", "allocate", "optimal",
    "Recommendation", "recommend", "compare", "best_teacher", "choose_teacher", "efficiency", "least_budget", "RecipeComparison", "compare_recipes", "default_posterior", "value_of_information",
]


def __getattr__(name):
    """``bd.plots`` imports the plots subpackage (and matplotlib) on first use."""
    if name == "plots":
        import importlib

        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
