"""Argument checks shared across subpackages (ground layer: imports nothing of the package but errors)."""

from __future__ import annotations

import math

import numpy as np

from .errors import BayesDistillError


def positive_number(x, name) -> float:
    """``x`` as a float; error naming ``name`` unless it is one positive, finite number."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise BayesDistillError(f"{name} must be one positive number, got {x!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise BayesDistillError(f"{name} must be positive and finite, got {x!r}")
    return v


def positive_array(x, name):
    """``x`` as a 1-d float array; error naming ``name`` unless every value is a positive, finite number."""
    raw = np.asarray(x, dtype=object) if x is not None else np.asarray([None], dtype=object)
    if any(isinstance(v, (bool, np.bool_)) for v in np.ravel(raw)):
        raise BayesDistillError(f"{name} must be positive and finite numbers, got a boolean: {x!r}")
    try:
        a = np.atleast_1d(np.asarray(x, dtype=float))
    except (TypeError, ValueError):
        raise BayesDistillError(f"{name} must be positive and finite, got {x!r}") from None
    if a.ndim != 1:
        raise BayesDistillError(f"{name} must be a number or a 1-d list of numbers, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise BayesDistillError(f"{name} must be positive and finite, got {x!r}")
    return a


def unique_tokens_array(U, D, law):
    """``U`` (unique tokens at points with ``D`` tokens) as a float array like ``D``; error unless ``law`` reads
    ``U`` (``law.covariates``) and every value is positive, finite and at most its ``D``."""
    if "U" not in getattr(law, "covariates", ()):
        what = "a mixture of laws" if law is None else f"law {getattr(law, 'name', law)!r}"
        raise BayesDistillError(f"U (unique tokens) is read by the data-constrained laws only; {what} does not take it")
    U = positive_array(U, "U")
    try:
        U = np.broadcast_to(U, np.shape(D)).astype(float)
    except ValueError:
        raise BayesDistillError(f"U ({len(U)} values) does not broadcast with N and D ({np.size(D)} points)") from None
    over = np.flatnonzero(U > np.asarray(D, float) * (1 + 1e-9))
    if len(over):
        i = int(over[0])
        raise BayesDistillError(f"U: {U[i]:g} unique tokens exceed D = {np.asarray(D)[i]:g} training tokens at point "
                                f"{i}; U is at most D (repetitions D/U - 1 >= 0)")
    return U
