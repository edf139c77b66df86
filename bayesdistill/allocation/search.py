"""The search space and the 1-D search every allocation uses: bounds of N and D, bisection (JAX, per draw)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: every model size and token count is searched in [1e6, 1e17]
BOUNDS = (1e6, 1e17)


def bisect(go_right, lo, hi, iters: int = 60):
    """Elementwise bisection on [lo, hi]: keep the right half where ``go_right(midpoint)`` is true."""
    def body(_, state):
        a, b = state
        m = 0.5 * (a + b)
        right = go_right(m)
        return jnp.where(right, m, a), jnp.where(right, b, m)

    a, b = jax.lax.fori_loop(0, iters, body, (lo, hi))
    return 0.5 * (a + b)


def bisect_min(f, lo, hi, iters: int = 60):
    """Minimise a unimodal, elementwise ``f`` on [lo, hi] by bisection on the sign of f'.

    The derivative (by autodiff) keeps its sign resolved in float32 much closer
    to the optimum than a comparison of function values does.
    """
    grad = jax.grad(lambda x: jnp.sum(f(x)))
    return bisect(lambda m: ~(grad(m) > 0), lo, hi, iters)
