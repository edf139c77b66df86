"""Inference: the numpyro model, NUTS sampling, the Posterior (predictions, save/load), the fit review,
identification, distilled-student predictions, evidence and model comparison."""

from .comparison import compare
from .posterior import Posterior, load
from .sampling import fit
from .shipped import default_posterior

__all__ = ["Posterior", "compare", "default_posterior", "fit", "load"]
