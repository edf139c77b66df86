"""bayesdistill: Bayesian scaling laws of knowledge distillation.

The flow: :mod:`data` (sweeps) -> :mod:`laws` (pure JAX laws, priors) ->
:mod:`model` (numpyro models) -> :mod:`fit` (NUTS, review) ->
:mod:`posterior` (draws, predictions, save/load) -> :mod:`optimal`
(supervised compute-optimal) and :mod:`allocate` (compute-optimal
distillation per draw) -> :mod:`decide`, :mod:`planning`, :mod:`voi`
(decisions under uncertainty) -> :mod:`plots` and :mod:`report`.
"""

__version__ = "0.1.0"

from .devices import use_cpu_cores  # noqa: E402

use_cpu_cores()  # before JAX starts its CPU backend: chains on separate cores (see bayesdistill.devices)

from .allocate import allocate, optimal  # noqa: E402
from .compare import compare  # noqa: E402
from .data import Sweep, read_sweep  # noqa: E402
from .decide import Recommendation, recommend  # noqa: E402
from .distill import DistillationLaw, paper_priors  # noqa: E402
from .errors import (  # noqa: E402
    BayesDistillError,
    ExtrapolationWarning,
    FitWarning,
    LawError,
    PosteriorFileError,
    SweepError,
    SweepWarning,
)
from .fit import fit  # noqa: E402
from .flops import distillation_flops, forward_flops, supervised_flops  # noqa: E402
from .laws import Law, get_law, list_laws, register_law  # noqa: E402
from .optimal import compute_optimal  # noqa: E402
from .planning import efficiency, least_budget  # noqa: E402
from .posterior import Posterior, load  # noqa: E402
from .priors import Prior  # noqa: E402
from .replica import paper_sweep, simulate_sweep  # noqa: E402
from .shipped import default_posterior  # noqa: E402
from .teachers import best_teacher, choose_teacher  # noqa: E402
from .voi import value_of_information  # noqa: E402

__all__ = [
    "BayesDistillError", "ExtrapolationWarning", "DistillationLaw", "FitWarning", "paper_priors", "Law", "LawError", "Posterior", "PosteriorFileError",
    "Prior", "Sweep", "SweepError", "SweepWarning", "fit", "get_law", "list_laws", "load",
    "read_sweep", "register_law", "__version__", "compute_optimal", "distillation_flops",
    "forward_flops", "supervised_flops", "paper_sweep", "simulate_sweep", "allocate", "optimal",
    "Recommendation", "recommend", "compare", "best_teacher", "choose_teacher", "efficiency", "least_budget", "default_posterior", "value_of_information",
]
