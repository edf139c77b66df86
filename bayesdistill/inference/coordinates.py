"""The sampler's coordinates: the irreducible loss ``E`` replaced by the loss at the sweep's centre.

A sweep pins the loss near the centre of its runs (and its slope) far more tightly than it pins
how that loss splits between the irreducible term ``E`` and the law's power-law terms. On the
model's unconstrained scale (``log E``, the sheared log-coefficients, the log exponents) that
leaves a *curved* ridge: with the loss and slope at the centre fixed, ``E = T - s / alpha`` and
``log A_c = log s - log alpha``, so ``log E`` bends against ``log alpha``. Whitening by the Laplace
curvature (:mod:`.laplace`) is linear and cannot straighten it; NUTS then takes 15-130 leapfrog
steps per draw and mixes slowly in the tails (Gemstones diverged; Misfitting took 106-126 steps).

The sampler therefore works in coordinates ``y`` equal to the model's ``x`` except one: ``log E``
is replaced by ``l = log(E + m)``, where ``m = L(centre) - E`` is the law's loss at the centre of
the fitted runs less ``E`` (the power-law terms there, a function of the other coordinates only).
With ``l`` pinned by the data, ``log A_c`` is linear in ``log alpha`` along the ridge and the
posterior in ``y`` is close to a correlated Gaussian, which whitening handles. The map is
triangular, ``x_E = log(exp(l) - m(x_-E))``, so it is a bijection from ``l > log m`` onto the
real line for every value of the other coordinates, and ``log |dx/dy| = l - x_E``: the posterior
is exactly the same, only its shape in the sampler's coordinates changes. ``y`` below ``log m``
is outside the map (the potential is infinite there: ``E`` would be negative).

It applies to supervised laws whose loss is ``E`` plus terms that do not involve it
(:attr:`Law.asymptote`), with ``E``'s prior on ``(0, inf)`` (sampled as ``log E``); everywhere else
(Kaplan's law, grouped fits, a custom prior with other support, and joint distillation fits, where
it measured more divergences: :func:`bayesdistill.inference.inputs.asymptote_gap`) the coordinates
are the model's own.
Measured on the real sweeps (Chinchilla law, 4 x 1,000 draws, seeds 0 and 1): mean leapfrog steps
per draw 6.8-7.0 -> 6.5-6.7 (Chinchilla points), 20.5-23.8 -> 8.3-10.0 (Gadre c4_original),
23.9-27.1 -> 8.3-9.5 and 15/9 divergences -> 0 (Gemstones), 105.8-126.2 -> 6.7 (Misfitting), with
the minimum tail ESS 2-10x higher.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

#: smallest gap ``m`` used (a gap at or below 0 leaves the map the identity in ``log E``)
MIN_GAP = 1e-30


class Coordinates(NamedTuple):
    """The sampler's coordinates ``y`` of a :class:`~.laplace.FlatModel`'s ``x``."""

    potential: object  # y -> potential energy in y (the Jacobian of x(y) included)
    to_x: object  # y -> x
    to_y: object  # x -> y


def site_index(init: dict, site: str) -> int | None:
    """Position of scalar ``site`` in the flat vector ``ravel_pytree(init)`` (``None``: absent or not scalar)."""
    offset = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(init)[0]:
        size = int(jnp.size(leaf))
        if getattr(path[0], "key", None) == site:
            return offset if size == 1 and len(path) == 1 else None
        offset += size
    return None


def identity(potential) -> Coordinates:
    """The model's own coordinates."""
    return Coordinates(potential, lambda y: y, lambda x: x)


def asymptote_coordinates(potential, index: int | None, gap) -> Coordinates:
    """Coordinates with ``x[index]`` (``log E``) replaced by ``log(E + gap(x))``.

    ``gap(x) -> m`` is the law's loss at the centre less ``E``; it is evaluated with ``x[index]``
    set to 0, so that it depends on the other coordinates only (the map stays triangular, whatever
    the law). ``index=None`` or ``gap=None``: :func:`identity`.
    """
    if index is None or gap is None:
        return identity(potential)

    def log_gap(x):
        m = gap(x.at[index].set(0.0))
        return jnp.log(jnp.maximum(jnp.where(jnp.isfinite(m), m, 0.0), MIN_GAP))

    def split(y):
        log_m = log_gap(y)
        inside = -jnp.expm1(log_m - y[index])  # 1 - m / (E + m) = E / (E + m)
        ok = inside > 0
        # outside the map (E would be negative) x_E is a placeholder: the potential there is infinite
        x_e = jnp.where(ok, y[index] + jnp.log(jnp.where(ok, inside, 1.0)), y[index])
        return y.at[index].set(x_e), ok

    def to_x(y):
        return split(y)[0]

    def to_y(x):
        return x.at[index].set(jnp.logaddexp(x[index], log_gap(x)))

    def potential_y(y):
        x, ok = split(y)
        u = potential(x) - (y[index] - x[index])  # log |dx/dy| = l - log E
        return jnp.where(ok, u, jnp.inf)

    return Coordinates(potential_y, to_x, to_y)
