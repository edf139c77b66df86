"""The posterior's mode and curvature: where NUTS starts, the metric it starts with, and a cheap
approximate posterior.

Most fits of the package are a handful of coefficients whose posterior, on the sampler's
unconstrained scale, is close to a correlated Gaussian (not all: see the README's known gaps). NUTS with a metric learnt from scratch
spends its warmup discovering that shape and ~28 leapfrog steps per draw fighting it. Here the
shape is computed instead:

Every step works in the sampler's coordinates ``y`` (:mod:`.coordinates`): the model's unconstrained
scale, with ``log E`` replaced by the log loss at the sweep's centre where the law has an asymptote.

1. **The mode.** The potential (negative log density in ``y``, Jacobians included) is minimised by saddle-free Newton steps (:func:`minimise`) from ``LAPLACE_STARTS``
   points: the prior's centre (:func:`init_to_centre`) and that point jittered by up to +-1 in
   every coordinate. The best finite optimum wins; how many starts reached it (within
   ``AGREE_NATS``) is reported.
2. **The curvature.** ``H``, the Hessian of the potential at the mode (from the last Newton step),
   symmetrised, with every eigenvalue replaced by ``max(|lambda|, EIG_FLOOR)`` (a saddle or a flat
   direction gets a finite, broad scale). ``root = V diag(lambda^-1/2)`` satisfies
   ``root root^T = H^-1``, the Laplace approximation's covariance.
3. **Whitening.** NUTS samples ``u`` with ``y = mode + root u`` (:mod:`.engine`): an affine change
   of variables with a constant Jacobian, so the posterior is exactly the same, but its shape in
   ``u`` is close to a standard normal; the metric and step size still adapt (the safeguard where
   the posterior is not Gaussian). The sampler's state is one flat vector.
4. **Laplace + importance sampling.** ``IS_DRAWS`` draws of a multivariate Student-t
   (``IS_DF`` degrees of freedom) with that mode and curvature, with importance log weights ``-U(y) - log q(y)``: after Pareto smoothing (:func:`psis_weights`) they are draws
   of the exact posterior, as long as the Pareto ``k`` stays below ``PARETO_K_MAX`` (Vehtari et al.
   2024). The inner leave-last-level-out fit that learns ``kappa`` (:mod:`.kappa`) uses them in
   place of a second NUTS fit.

If no start reaches a finite optimum, the mode is the prior's centre and ``root`` the
identity (plain NUTS with adaptation), and ``ok`` is false.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import lax
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.infer import init_to_mean, init_to_median
from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

from .coordinates import Coordinates, asymptote_coordinates, identity, site_index


def init_to_centre(site=None):
    """numpyro init strategy: the prior median of a log-normal, the mean of other priors with a finite
    one, numpyro's ``init_to_median`` (15 prior draws) for the rest (Cauchy-like priors, transformed
    distributions).

    Closed-form centres keep the Laplace program small: ``init_to_median`` on every site (its Gamma
    rejection sampler for ``nu`` among them) cost ~1.3 s of its ~6 s of compilation on 2 cores.
    """
    if site is None:
        return init_to_centre
    if site["type"] != "sample" or site["is_observed"] or site["value"] is not None:
        return None
    fn = site["fn"]
    base = fn.base_dist if isinstance(fn, dist.Independent) else fn
    if isinstance(base, (dist.Cauchy, dist.HalfCauchy, dist.StudentT)):
        return init_to_median(site)
    if isinstance(base, dist.LogNormal):
        shape = tuple(site["kwargs"].get("sample_shape") or ()) + tuple(fn.batch_shape) + tuple(fn.event_shape)
        return jnp.broadcast_to(jnp.exp(base.loc) * 1.0, shape)
    return init_to_mean(site)

#: Newton starts per sweep (the first at the prior's centre)
LAPLACE_STARTS = 4
#: Newton steps per start, the longest step (unconstrained units) and the step lengths tried per step
NEWTON_STEPS = 30
MAX_STEP = 3.0
LINE_POINTS = 8
#: smallest curvature kept (an eigenvalue of H): at most a standard deviation of 10 on the unconstrained scale
EIG_FLOOR = 1e-2
#: optima within this many nats of the best count as the same mode
AGREE_NATS = 0.5
#: draws of the Laplace approximation that importance sampling reweights
IS_DRAWS = 1000
#: degrees of freedom of the multivariate Student-t proposal of importance sampling: heavier tails
#: than the Gaussian keep the weights' Pareto k lower (real sweeps, inner leave-last-level-out fits:
#: k <= 0.7 on 5 of 7 with df 4, 3 of 7 with the Gaussian in the same coordinates)
IS_DF = 4
#: Pareto k above which importance sampling is not trusted (Vehtari et al. 2024)
PARETO_K_MAX = 0.7


class FlatModel(NamedTuple):
    """A numpyro model with its data, as functions of one flat unconstrained vector."""

    x0: jnp.ndarray  # the prior's centre (init_to_centre)
    potential: object  # x -> negative log density (Jacobians included)
    constrain: object  # x -> dict of every sample and deterministic site, constrained
    init: dict  # the unconstrained values at x0 by site (the layout of x: ``ravel_pytree(init)``)
    unravel: object  # x -> dict of the unconstrained values by site


def flat_model(model, args, kwargs, key) -> FlatModel:
    """``model(*args, **kwargs)`` as a :class:`FlatModel` (traceable: runs inside a jitted program).

    One trace of the model at :func:`init_to_centre` (numpyro's public ``unconstrain_fn``,
    ``potential_energy`` and ``constrain_fn``); numpyro's ``initialize_model`` would add a
    validation loop that costs ~3 s of compilation per program and nothing here.
    """
    seeded = handlers.substitute(handlers.seed(model, key), substitute_fn=init_to_centre)
    trace = handlers.trace(seeded).get_trace(*args, **kwargs)
    init = {k: v["value"] for k, v in trace.items() if v["type"] == "sample" and not v["is_observed"]}
    free = unconstrain_fn(model, args, kwargs, init)
    x0, unravel = ravel_pytree(free)
    return FlatModel(x0, lambda x: potential_energy(model, args, kwargs, unravel(x)),
                     lambda x: constrain_fn(model, args, kwargs, unravel(x), return_deterministic=True), free, unravel)


def sampler_coordinates(fm: FlatModel, gap, args) -> Coordinates:
    """The coordinates NUTS samples for ``fm`` (:mod:`.coordinates`): the log of the asymptote ``gap.site``
    replaced by the log loss at the centre where ``gap(free, args)`` is given
    (:func:`.inputs.asymptote_gap`), else the model's own."""
    if gap is None:
        return identity(fm.potential)
    return asymptote_coordinates(fm.potential, site_index(fm.init, gap.site), lambda x: gap(fm.unravel(x), args))


class Laplace(NamedTuple):
    """The mode and curvature of one posterior, and importance draws of it (numpy arrays)."""

    mode: np.ndarray  # (d,) in the sampler's coordinates (the model's unconstrained scale, but log E: .coordinates)
    root: np.ndarray  # (d, d), root @ root.T = H^-1
    potential: float  # at the mode (in the sampler's coordinates: the Jacobian of the map included)
    ok: bool  # a finite optimum was found
    starts_agreeing: int  # starts that reached the best optimum (of LAPLACE_STARTS)
    iterations: int  # Newton steps of the best start that lowered the potential
    samples: dict  # (IS_DRAWS, ...) importance draws (Student-t at the mode), constrained, every site
    log_weights: np.ndarray  # (IS_DRAWS,) importance log weights, unnormalised
    seconds: float = 0.0  # this sweep's share of the program call
    compiled: bool = False  # the call compiled its program

    def info(self) -> dict:
        """What the config of a fit records about this step."""
        return {"ok": bool(self.ok), "starts_agreeing": f"{self.starts_agreeing}/{LAPLACE_STARTS}",
                "newton_steps": int(self.iterations), "seconds": float(self.seconds), "compiled": bool(self.compiled)}


def grad_and_hessian(fn, x):
    """The gradient and Hessian of ``fn`` at ``x`` from one linearisation of its gradient."""
    g, hvp = jax.linearize(jax.grad(fn), x)
    return g, jax.vmap(hvp)(jnp.eye(x.shape[0], dtype=x.dtype))


def minimise(fn, x0):
    """``(x, H, steps)``: saddle-free Newton on ``fn`` from ``x0`` (``NEWTON_STEPS`` steps).

    ``H`` is the Hessian at the last point a step started from: ``x`` itself once the steps stop
    improving it. Each step solves ``|H| p = -g``, the Hessian's eigenvalues replaced by their
    absolute values and floored at ``EIG_FLOOR`` as in :func:`curvature_root` (a saddle is left
    downhill; written out here rather than as ``-root root^T g``, whose different rounding changes
    every seeded draw), caps ``|p|`` at ``MAX_STEP``, and
    takes the best of the step lengths ``2^-j`` (``j < LINE_POINTS``), keeping ``x`` where none
    lowers ``fn``. A small program: it compiles in a few seconds, where a general-purpose L-BFGS
    with a zoom line search took ~15 s.
    """
    lengths = 0.5 ** jnp.arange(LINE_POINTS)

    def step(_, carry):
        x, fx, n, _h = carry
        g, h = grad_and_hessian(fn, x)
        h = 0.5 * (h + h.T)
        lam, vec = jnp.linalg.eigh(h)
        p = -vec @ ((vec.T @ g) / jnp.maximum(jnp.abs(lam), EIG_FLOOR))
        p = p * jnp.minimum(1.0, MAX_STEP / (jnp.linalg.norm(p) + 1e-30))
        cand = x[None] + lengths[:, None] * p[None]
        fc = jax.vmap(fn)(cand)
        fc = jnp.where(jnp.isfinite(fc) & jnp.all(jnp.isfinite(cand), axis=1), fc, jnp.inf)
        j = jnp.argmin(fc)
        better = (fc[j] < fx) & jnp.all(jnp.isfinite(p))
        return jnp.where(better, cand[j], x), jnp.where(better, fc[j], fx), n + better, h

    f0 = fn(x0)
    d = x0.shape[0]
    init = (x0, jnp.where(jnp.isfinite(f0), f0, jnp.inf), 0, jnp.eye(d, dtype=x0.dtype))
    x, _, n, h = lax.fori_loop(0, NEWTON_STEPS, step, init)
    return x, h, n


def curvature_root(hess):
    """``root`` with ``root @ root.T = H^-1`` for the symmetrised ``hess``, eigenvalues floored."""
    h = 0.5 * (hess + hess.T)
    lam, vec = jnp.linalg.eigh(h)
    lam = jnp.maximum(jnp.abs(lam), EIG_FLOOR)
    return vec * lam ** -0.5


def laplace_one(model, key, args, kwargs, gap=None):
    """The traced Laplace step of one sweep: a tuple in :class:`Laplace`'s order (up to ``log_weights``).

    Everything happens in the sampler's coordinates (:func:`sampler_coordinates`; ``gap``), where
    the posterior is closest to a Gaussian: the starts (the prior's centre and its jittered copies,
    mapped there), the mode, the curvature and the importance draws.
    """
    k_init, k_start, k_draw = jax.random.split(key, 3)
    fm = flat_model(model, args, kwargs, k_init)
    coords = sampler_coordinates(fm, gap, args)
    d = fm.x0.shape[0]
    jitter = jax.random.uniform(k_start, (LAPLACE_STARTS - 1, d), minval=-1.0, maxval=1.0)
    starts = jax.vmap(coords.to_y)(jnp.concatenate([fm.x0[None], fm.x0[None] + jitter]))
    # the Hessian of the last step (at the mode once the steps stop improving it) is the curvature
    ys, hs, iters = lax.map(lambda y: minimise(coords.potential, y), starts)  # lax.map: vmap compiles ~2x slower
    pots = jax.vmap(coords.potential)(ys)
    pots = jnp.where(jnp.isfinite(pots) & jnp.all(jnp.isfinite(ys), axis=1), pots, jnp.inf)
    best = jnp.argmin(pots)
    mode, pot = ys[best], pots[best]
    root = curvature_root(hs[best])
    ok = jnp.isfinite(pot) & jnp.all(jnp.isfinite(root))
    mode = jnp.where(ok, mode, starts[0])
    root = jnp.where(ok, root, jnp.eye(d, dtype=root.dtype))
    agree = jnp.sum(pots <= pot + AGREE_NATS)
    eps = jax.random.normal(k_draw, (IS_DRAWS, d))
    # chi-square(IS_DF) / IS_DF as a sum of squared normals (jax.random.gamma's rejection loop costs ~1 s
    # of compilation)
    chi2 = jnp.mean(jax.random.normal(jax.random.fold_in(k_draw, 1), (IS_DRAWS, IS_DF)) ** 2, axis=1, keepdims=True)
    eps = eps / jnp.sqrt(chi2)  # multivariate Student-t(IS_DF) draws
    log_q = -0.5 * (IS_DF + d) * jnp.log1p(jnp.sum(eps ** 2, axis=1) / IS_DF)
    y = mode + eps @ root.T
    log_w = -jax.vmap(coords.potential)(y) - log_q
    log_w = jnp.where(jnp.isfinite(log_w), log_w, -jnp.inf)
    samples = jax.vmap(lambda v: fm.constrain(coords.to_x(v)))(y)
    return mode, root, pot, ok, agree, iters[best], samples, log_w


def psis_weights(log_weights) -> tuple[np.ndarray, float]:
    """Pareto-smoothed, normalised importance weights and the Pareto ``k`` (ArviZ's PSIS, ``psislw``).

    arviz-stats' ``psislw`` takes a log *likelihood* and smooths the weights ``exp(-ary)`` (the
    weights of leave-one-out), so the log weights go in negated. Its generalised-Pareto fit differs
    slightly from ArviZ 0.23's: on 4,000 log weights, ``k`` 0.208 vs 0.211 and 0.297 vs 0.301 (normal),
    2.201 vs 2.209 (Student-t(3)); every weight within 0.35% of the largest.
    """
    from arviz_stats.base import array_stats

    lw = np.asarray(log_weights, dtype=float)
    lw = np.where(np.isfinite(lw), lw, -np.inf)
    if not np.isfinite(lw).any():
        return np.full(lw.shape, 1.0 / lw.size), float("inf")
    lw = np.where(np.isfinite(lw), lw, lw[np.isfinite(lw)].min() - 50.0)
    smoothed, k = array_stats.psislw(-(lw - lw.max()))
    w = np.exp(np.asarray(smoothed, dtype=float))
    k = float(k)
    # arviz-stats gives NaN where the tail's Pareto fit fails (a few draws carry everything); 0.23 gave inf
    return w / w.sum(), float("inf") if np.isnan(k) else k
