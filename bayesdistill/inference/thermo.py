"""Thermodynamic integration: a third, independent estimate of the evidence (log Z).

The package's two evidence estimators (:mod:`bayesdistill.inference.evidence`) are bridge sampling
from the NUTS draws (the default) and tempered SMC. Both can go wrong quietly: bridge sampling
through a poor proposal or too few draws, SMC through too few particles or moves. Thermodynamic
integration (TI; Gelman & Meng 1998, Friel & Pettitt 2008) shares neither failure, and serves the
benchmark as the reference they are checked against:

    log Z = integral over beta in [0, 1] of E_beta[log L(theta)],

where ``E_beta`` is the expectation under the *power posterior* ``p_beta ~ prior x L^beta``
(``beta = 0`` the prior, ``1`` the posterior). :func:`thermodynamic_evidence` samples every rung of
a ladder ``beta_k = (k / K)^5`` (the spacing of Friel & Pettitt, dense near the prior where
``E_beta`` changes fastest) with NUTS, all rungs vectorised in one compiled program (the data are
arguments: one compilation per model and data shape), and integrates by the trapezoid rule with the
variance correction of Friel, Hurn & Wyse (2014): ``- sum (dbeta^2 / 12) (V_{k+1} - V_k)``, ``V``
the variance of ``log L`` under ``p_beta``.

Its error combines the Monte Carlo error of every rung's mean (from its effective sample size) and
the quadrature's discretisation error, estimated as the difference between the corrected rule on
the full ladder and on every other rung (the error of the coarser rule bounds the finer one's).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpyro.infer.hmc import hmc

from .evidence import Evidence, Target

#: rungs of the ladder above beta = 0, the ladder's exponent, NUTS warmup and draws per rung
RUNGS = 32
POWER = 5.0
WARMUP = 500
DRAWS = 1000


def ladder(rungs: int = RUNGS, power: float = POWER) -> np.ndarray:
    """``beta_k = (k / rungs)^power`` for ``k = 0..rungs``."""
    return (np.arange(rungs + 1) / rungs) ** power


def _sampler(target: Target, warmup: int, draws: int):
    """Jitted ``run(betas (K,), keys (K, 2), u0 (K, d), data) -> log L draws (K, draws)``."""

    def one(beta, key, u0, data):
        def potential(u):
            lp, ll = target.parts(u, data)
            return -(lp + beta * ll)

        init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")
        state = init_kernel(u0, warmup, target_accept_prob=0.9, rng_key=key)

        def step(st, _):
            st = sample_kernel(st)
            return st, (target.parts(st.z, data)[1], st.diverging)

        _, (ll, div) = lax.scan(step, state, None, length=warmup + draws)
        return ll[warmup:], div[warmup:]

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None)))


def _ess(x: np.ndarray) -> float:
    """Effective sample size of one chain (initial positive sequence of autocorrelations; Geyer 1992)."""
    x = np.asarray(x, float) - np.mean(x)
    n = len(x)
    if n < 4 or np.var(x) == 0:
        return float(n)
    f = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (np.var(x) * n)
    tau, k = 1.0, 1
    while k + 1 < n:
        pair = acf[k] + acf[k + 1]
        if pair <= 0:
            break
        tau += 2 * pair
        k += 2
    return float(n / tau)


def _integrate(betas, mean, var) -> float:
    """Trapezoid rule over the ladder with the variance correction of Friel, Hurn & Wyse (2014)."""
    db = np.diff(betas)
    return float(np.sum(db * (mean[1:] + mean[:-1]) / 2) - np.sum(db ** 2 / 12 * (var[1:] - var[:-1])))


def thermodynamic_evidence(target: Target, start=None, *, rungs: int = RUNGS, power: float = POWER,
                           warmup: int = WARMUP, draws: int = DRAWS, seed: int = 0) -> Evidence:
    """log Z of ``target`` by thermodynamic integration over ``rungs + 1`` power posteriors.

    Parameters
    ----------
    target : Target
    start : array (dim,), optional
        Where every rung's chain starts, unconstrained (e.g. a posterior draw); default the median
        of 64 prior draws (the chains of the rungs near the posterior then find it in warmup).
    rungs, power, warmup, draws, seed
        The ladder ``(k / rungs)^power``; NUTS warmup and draws per rung; the seed of the chains.

    Returns
    -------
    Evidence
        ``info``: the ladder, every rung's mean and variance of ``log L``, its ESS and
        divergences, and the two parts of the error (``mc_se``, ``discretisation``).
    """
    betas = ladder(rungs, power)
    key = jax.random.PRNGKey(seed)
    if start is None:
        start = np.median(target.sample_prior(jax.random.fold_in(key, 1), 64), axis=0)
    u0 = jnp.asarray(np.broadcast_to(np.asarray(start, np.float32), (len(betas), target.dim)))
    keys = jax.random.split(key, len(betas))
    ll, div = _sampler(target, warmup, draws)(jnp.asarray(betas, jnp.float32), keys, u0, target.data)
    ll = np.asarray(ll, np.float64)
    finite = np.isfinite(ll).all(axis=1)
    mean, var = ll.mean(axis=1), ll.var(axis=1)
    ess = np.array([_ess(x) if ok else 0.0 for x, ok in zip(ll, finite)])
    log_z = _integrate(betas, mean, var)
    coarse = _integrate(betas[::2], mean[::2], var[::2]) if rungs % 2 == 0 else math.nan
    # the rule is linear in the rung means: its Monte Carlo variance from each mean's (var / ESS)
    db = np.diff(betas)
    w = np.zeros(len(betas))
    w[1:] += db / 2
    w[:-1] += db / 2
    mc_se = float(np.sqrt(np.sum(w ** 2 * var / np.maximum(ess, 1.0))))
    disc = abs(log_z - coarse) if math.isfinite(coarse) else math.nan
    se = float(np.hypot(mc_se, disc)) if math.isfinite(disc) else mc_se
    if not finite.all():
        log_z, se = math.nan, math.nan
    info = {"betas": betas.tolist(), "mean_loglik": mean.tolist(), "var_loglik": var.tolist(),
            "ess": ess.tolist(), "divergences": np.asarray(div).sum(axis=1).astype(int).tolist(),
            "mc_se": mc_se, "discretisation": disc, "rungs": rungs, "warmup": warmup, "draws": draws}
    return Evidence(float(log_z), se, "thermodynamic", info)
