"""The data-constrained scaling law of Muennighoff et al. (2023): repeated tokens are worth less.

N. Muennighoff, A. M. Rush, B. Barak, T. Le Scao, A. Piktus, N. Tazi, S. Pyysalo, T. Wolf,
C. Raffel, *Scaling Data-Constrained Language Models*, NeurIPS 2023 (arXiv:2305.16264), Eq. 5::

    L(N, D, U_D) = E + A / N'^alpha + B / D'^beta
    D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),   R_D = D / U_D - 1
    N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),   R_N = N / U_N - 1,   U_N = min(N, N_opt(U_D))

``U_D`` (the sweep's column ``U``) is the number of unique tokens, ``R_D`` how often they are
repeated beyond the first epoch, ``R_D*`` the repetitions after which repeated tokens have lost
all but 1/e of their value. ``U_N`` is the compute-optimal size for ``U_D`` unique tokens under the
law's own Chinchilla part, ``N_opt(U) = G (G U)^(beta / alpha)`` with
``G = (alpha A / (beta B))^(1 / (alpha + beta))`` (the authors' ``D_to_N``), and ``R_N`` the
parameters in excess of it, which decay with ``R_N*``.

Two laws are registered:

- ``"muennighoff"`` (the default): the **data-only** form, ``N' = N`` (``R_N*`` dropped);
- ``"muennighoff_full"``: Eq. 5 as printed, with ``R_N*``.

Why the data-only form is the default
-------------------------------------
- It is Chinchilla's form exactly where no token is repeated (``U = D``: ``D' = D``), so a sweep
  without a ``U`` column, and every single-epoch sweep the package ships (e.g.
  ``datablations_single_epoch``), fits the same law as ``"chinchilla"`` plus one coefficient,
  ``R_D*``, that keeps its prior. The full form does not reduce to Chinchilla: with ``U = D`` it
  still discounts every model larger than compute-optimal for its tokens (``N > N_opt(D)``), a
  claim about over-sized single-epoch runs that Chinchilla-style sweeps contradict.
- ``R_N*`` is identified only by runs that both repeat data and are larger than ``N_opt(U)``; and
  ``U_N = min(N, N_opt(U))`` couples ``R_N*`` to ``A, B, alpha, beta`` through a kink, so the
  posterior of the full form is ridged wherever those runs are few. In the authors' own fit
  (182 C4 runs of ``../shared/data/datablations``) the full form explains R^2 = 0.772 of the loss
  variance and the data-only form 0.735 (``utils/parametric_fit.ipynb``, cells 34 and 36): ``R_N*``
  matters for their deliberately over-sized runs (14M-1.1B models on 100M unique tokens), which
  are rare in practice. Fit ``"muennighoff_full"`` for a sweep like theirs, and compare the two
  with :func:`bayesdistill.compare`.
- Fitted jointly here (all coefficients, Student-t noise, 2 chains x 400 draws,
  ``bd.compare(..., discrepancy="distance")``) on those same 182 runs, the data-only form wins:
  log Bayes factor 4.7 over the full form and 53 over Chinchilla without U; PSIS-LOO elpd 291.0
  (se 17.9) against 289.7 (22.9) and 236.5; held-out lpd of the most expensive quarter of the runs
  47.0 against 40.7 and 42.5. Its posterior (2 x 300 draws) has R_D* = 30 (90%: 25-37) and explains
  R^2 = 0.93 of the loss variance at the posterior medians. In the full fit R_N* is barely
  identified (median 3.3, 90%: 1.4-7.8) and the chains mix slowly (R-hat 1.017 at 2 x 300 draws).
- The joint fits do not reproduce the published E, A, B, alpha, beta (e.g. data-only:
  alpha 0.24, beta 0.46; full: E 1.41): the authors took those from Chinchilla's C4 IsoFLOP
  points, not from these runs (see below), so only ``R_D*`` and ``R_N*`` are comparable, and the
  joint fit puts R_D* at about twice their 15.4 (the data term's exponent moves with it).

Published coefficients
----------------------
:data:`PUBLISHED` holds the authors' values, from ``huggingface/datablations`` (commit
``13701315``): README "Parametric Fit" (``a, b, e, alpha, beta, rd_star, rn_star = [6.255414,
7.3049974, 0.6254804, 0.3526596, 0.3526596, 15.387756, 5.309743]`` with ``A = exp(a)``,
``B = exp(b)``, ``E = exp(e)``), identical to the output of cell 29 of
``utils/parametric_fit.ipynb``; the paper rounds them (R_D* ~ 15.4, R_N* ~ 5.3). They were fitted
in two steps: ``E, A, B, alpha = beta`` (tied) to 54 points read off Chinchilla's C4 IsoFLOP
figure (notebook cell 7), then ``R_D*, R_N*`` alone, with those held fixed, to the 182 runs
(cell 29; Huber loss on log loss, delta 1e-3). The package fits all coefficients jointly.

Priors: the supervised coefficients take the package's Chinchilla priors; ``R_D*`` and ``R_N*``
lognormal (their log normal), centred near the published values and wide (a factor ~5 at one
sd), so a sweep that repeats data decides them.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import jax.numpy as jnp

from .base import SUPERVISED_PRIORS, Law, lse, register_law
from .priors import Prior

#: the authors' fit (huggingface/datablations README "Parametric Fit" = parametric_fit.ipynb cell 29)
PUBLISHED = MappingProxyType({
    "E": math.exp(0.6254804), "A": math.exp(6.255414), "B": math.exp(7.3049974),
    "alpha": 0.3526596, "beta": 0.3526596, "R_D_star": 15.387756, "R_N_star": 5.309743,
})

MUENNIGHOFF_PRIORS = {
    "R_D_star": Prior("lognormal", {"loc": 2.7, "scale": 1.6},
                 "R_D*: repetitions of the unique tokens after which they keep 1/e of their value; "
                 "median 15 (published 15.4), 90% in (1.1, 200)"),
    "R_N_star": Prior("lognormal", {"loc": 1.6, "scale": 1.6},
                 "R_N*: the same for parameters beyond compute-optimal for the unique tokens; "
                 "median 5 (published 5.3), 90% in (0.4, 70)"),
}


def _effective(log_unique, repeats, star):
    """log of U + U R* (1 - exp(-R / R*)) (Eq. 5), for R >= 0, stable: log U + log1p(-R* expm1(-R/R*))."""
    return log_unique + jnp.log1p(-star * jnp.expm1(-repeats / star))


def _log_d_eff(theta, logD, logU):
    """log D' of Eq. 5; U = D (``logU=None``) gives D' = D exactly. U above D counts as U = D."""
    if logU is None:
        return logD
    logU = jnp.minimum(logU, logD)
    return _effective(logU, jnp.expm1(logD - logU), theta["R_D_star"])


def log_n_opt(theta, logU):
    """log N_opt(U): the compute-optimal size for U tokens under the law's Chinchilla part (``D_to_N``)."""
    a, b = theta["alpha"], theta["beta"]
    log_g = (jnp.log(a * theta["A"]) - jnp.log(b * theta["B"])) / (a + b)
    return log_g + (b / a) * (log_g + logU)


def _data_only(theta, logN, logD, logU=None):
    return lse(
        jnp.log(theta["E"]),
        jnp.log(theta["A"]) - theta["alpha"] * logN,
        jnp.log(theta["B"]) - theta["beta"] * _log_d_eff(theta, logD, logU),
    )


def _full(theta, logN, logD, logU=None):
    logU = logD if logU is None else jnp.minimum(logU, logD)
    log_un = jnp.minimum(logN, log_n_opt(theta, logU))
    log_n_eff = _effective(log_un, jnp.expm1(logN - log_un), theta["R_N_star"])
    return lse(
        jnp.log(theta["E"]),
        jnp.log(theta["A"]) - theta["alpha"] * log_n_eff,
        jnp.log(theta["B"]) - theta["beta"] * _log_d_eff(theta, logD, logU),
    )


_SUP = ("E", "A", "B", "alpha", "beta")

MUENNIGHOFF = Law(
    name="muennighoff",
    params=_SUP + ("R_D_star",),
    log_loss=_data_only,
    priors={**{k: SUPERVISED_PRIORS[k] for k in _SUP}, "R_D_star": MUENNIGHOFF_PRIORS["R_D_star"]},
    shears=(("A", "alpha", "N"), ("B", "beta", "U")),
    covariates=("U",),
    asymptote="E",
    description="L = E + A/N^alpha + B/D'^beta, D' = U + U R_D* (1 - exp(-(D/U - 1)/R_D*)) "
                "(Muennighoff et al. 2023, Eq. 5 without R_N*; column U: unique tokens)",
)

MUENNIGHOFF_FULL = Law(
    name="muennighoff_full",
    params=_SUP + ("R_D_star", "R_N_star"),
    log_loss=_full,
    priors={**{k: SUPERVISED_PRIORS[k] for k in _SUP}, **MUENNIGHOFF_PRIORS},
    shears=(("A", "alpha", "N"), ("B", "beta", "U")),
    covariates=("U",),
    asymptote="E",
    description="L = E + A/N'^alpha + B/D'^beta (Muennighoff et al. 2023, Eq. 5 with R_D* and R_N*; "
                "column U: unique tokens)",
)

for _law in (MUENNIGHOFF, MUENNIGHOFF_FULL):
    register_law(_law)
