"""Inference: the numpyro model, NUTS sampling (compiled once, fitted many times), the Posterior (predictions, save/load), the fit review,
identification, distilled-student predictions, evidence and model comparison."""

from .comparison import compare
from .many import fit_many
from .posterior import Posterior, load
from .sampling import fit
from .shipped import default_posterior

__all__ = ["Posterior", "compare", "default_posterior", "fit", "fit_many", "load"]
