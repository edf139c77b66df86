"""Objectives for decisions under uncertainty: functions of per-draw losses.

An objective maps the posterior draws of an option's loss (a 1-d array, one
value per draw) to one number; lower is better. :func:`bayesdistill.recommend`
picks the option whose objective is lowest. Built-ins, by name:

``"mean"``            expected loss (risk-neutral)
``"quantile:0.9"``    the 90% quantile of the loss (risk-averse: a bad case)
``"cvar:0.9"``        mean of the worst 10% of draws (conditional value at risk)
``"p_target:2.3"``    minus P(loss <= 2.3): maximise the chance of reaching a target

Any callable ``f(losses) -> float`` works as well (pluggable, as in
pymc-marketing's budget optimiser), e.g. ``lambda L: L.mean() + L.std()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import BayesDistillError


@dataclass(frozen=True)
class Objective:
    """A named objective; ``fn(losses) -> float``, lower is better."""

    name: str
    fn: Callable
    description: str

    def __call__(self, losses) -> float:
        return float(self.fn(np.asarray(losses, dtype=float)))

    def matrix(self, losses) -> np.ndarray:
        """The objective of every row of ``losses`` (n_options, n_draws)."""
        losses = np.asarray(losses, dtype=float)
        return np.array([self(row) for row in losses])


def _fraction(text, name, low=0.0, high=1.0):
    try:
        v = float(text)
    except ValueError:
        raise BayesDistillError(f"objective {name!r}: {text!r} is not a number") from None
    if not low < v < high:
        raise BayesDistillError(f"objective {name!r}: the level must lie in ({low}, {high}), got {v}")
    return v


def cvar(losses, level: float) -> float:
    """Mean of the losses at or above their ``level`` quantile (the worst ``1 - level``)."""
    losses = np.sort(np.asarray(losses, dtype=float))
    k = max(1, int(np.ceil(len(losses) * (1.0 - level))))
    return float(losses[-k:].mean())


def get_objective(objective) -> Objective:
    """An :class:`Objective` from a name (``"mean"``, ``"quantile:q"``, ``"cvar:q"``, ``"p_target:L"``) or a callable."""
    if isinstance(objective, Objective):
        return objective
    if callable(objective):
        name = getattr(objective, "__name__", "custom")
        return Objective(name, objective, "user-supplied objective")
    if not isinstance(objective, str):
        raise BayesDistillError(f"objective must be a name or a callable, got {objective!r}")
    kind, _, arg = objective.partition(":")
    if kind == "mean" and not arg:
        return Objective("mean", np.mean, "expected loss (risk-neutral)")
    if kind == "quantile" and arg:
        q = _fraction(arg, objective)
        return Objective(objective, lambda L: np.quantile(L, q), f"{q:.0%} quantile of the loss (risk-averse)")
    if kind == "cvar" and arg:
        q = _fraction(arg, objective)
        return Objective(objective, lambda L: cvar(L, q), f"mean of the worst {1 - q:.0%} of losses (CVaR)")
    if kind == "p_target" and arg:
        target = _fraction(arg, objective, 0.0, 100.0)
        return Objective(objective, lambda L: -np.mean(L <= target),
                         f"minus the probability that the loss reaches {target:g} nats")
    raise BayesDistillError(
        f"unknown objective {objective!r}; use 'mean', 'quantile:0.9', 'cvar:0.9', 'p_target:<loss>' or a callable"
    )
