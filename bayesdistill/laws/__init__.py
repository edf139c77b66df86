"""Laws: pure JAX loss laws, their priors and FLOP accounting. Knows nothing of numpyro or data.

Importing this package registers the built-in laws (supervised and distillation) by name.
"""

from .base import Law, get_law, law_from_spec, list_laws, register_law
from .distillation import DistillationLaw, paper_priors
from .flops import ArchSettings, distillation_flops, forward_flops, supervised_flops
from .priors import Prior

__all__ = ["ArchSettings", "DistillationLaw", "Law", "Prior", "distillation_flops", "forward_flops", "get_law",
           "law_from_spec", "list_laws", "paper_priors", "register_law", "supervised_flops"]
