"""Exceptions and warnings raised by bayesdistill.

Every error a user can cause derives from :class:`BayesDistillError`, so a
caller (or the CLI) can catch one class and show one clear line.
"""

from __future__ import annotations


class BayesDistillError(Exception):
    """Base class of every error bayesdistill raises on purpose."""


class InputError(BayesDistillError, ValueError):
    """An argument is invalid (a negative size, an unknown option or dataset name)."""


class SweepError(BayesDistillError, ValueError):
    """A sweep (table of training runs) is malformed: names column and row."""


class LawError(BayesDistillError, ValueError):
    """A law specification or prior specification is invalid."""


class PosteriorFileError(BayesDistillError, OSError):
    """A saved posterior file is missing, truncated, corrupted or incompatible."""


class FitWarning(UserWarning):
    """A fit failed one of its review checks (R-hat, ESS, divergences, BFMI)."""


class SweepWarning(UserWarning):
    """A sweep looks suspicious (for example N given in millions)."""


class ExtrapolationWarning(UserWarning):
    """A prediction lies more than ``EXTRAPOLATION_WARN_DECADES`` decades of compute beyond the fitted runs."""
