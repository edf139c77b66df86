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
