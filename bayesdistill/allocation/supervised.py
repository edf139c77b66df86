"""Supervised compute-optimal allocation, solved for every posterior draw.

For a budget C, the compute-optimal model size N*(C) minimises L(N, D) with
D fixed by the budget: ``D = C / (6 N)`` ("6ND" accounting) or
``D = C / (3 F(N))`` (the paper's accounting, Eq. 69). The 1-D problem in
log N is solved by bisection on the sign of its autodiff derivative, vectorised in JAX over draws and
budgets (bisection on the sign of the derivative), within the paper's bounds [1e6, 1e17] on N and D.

For a data-constrained law (``"muennighoff"``) and a stock of ``U`` unique tokens the same search
runs with ``U`` held fixed: the budget sets ``D``, the run sees ``min(U, D)`` distinct tokens and
repeats them ``D / U - 1`` times where ``D > U``. There is no closed form (the authors solve it on a
grid); the loss along the budget is unimodal in log N for the published coefficients and the
tests check the solver against a brute-force grid per draw. Where the stock is scarce for the
budget (hundreds of epochs at the optimum), both effective counts saturate and the loss is flat to
1e-5 over up to decades of N (the returns to compute have decayed to zero): N* is then one point
of that plateau, and its interval across draws is wide; the loss L* is still exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..errors import BayesDistillError
from ..laws.flops import ACCOUNTINGS, PAPER_ARCH, log_forward_flops
from .search import BOUNDS, bisect_min


def _check_budgets(budgets):
    C = np.atleast_1d(np.asarray(budgets, dtype=float))
    if C.ndim != 1 or not np.all(np.isfinite(C)) or np.any(C <= 0):
        raise BayesDistillError(f"budget must be positive finite FLOPs, got {budgets!r}")
    if np.any(C < 6 * BOUNDS[0] ** 2):
        raise BayesDistillError(
            f"budget {C.min():.3g} FLOPs is below the smallest allocation the bounds allow "
            f"(N and D >= {BOUNDS[0]:.0e}: {6 * BOUNDS[0] ** 2:.1e} FLOPs)"
        )
    return C


def optimal_size(law, theta, budgets, accounting: str = "paper", arch=PAPER_ARCH, U=None):
    """N*, D* and L* per draw and budget: arrays of shape (n_draws, n_budgets).

    ``U`` (unique tokens, held fixed; None: unlimited, every token fresh) for a law with that covariate.
    """
    if accounting not in ACCOUNTINGS:
        raise BayesDistillError(f"unknown accounting {accounting!r}; choose from {list(ACCOUNTINGS)}")
    logC = jnp.log(jnp.asarray(budgets))[None, :]
    C = jnp.exp(logC)
    th = {k: jnp.asarray(v)[:, None] for k, v in theta.items()}

    def log_d(x):
        # log D in log space: C / (6 N) or C / (3 F(N)) with F(N) of Eq. 69
        if accounting == "6ND":
            return logC - jnp.log(6.0) - x
        return logC - jnp.log(3.0) - log_forward_flops(x, arch)

    extra = () if U is None else (jnp.log(jnp.asarray(U, dtype=float)),)

    def objective(x):
        y = log_d(x)  # the run sees min(U, D) distinct tokens
        return law.log_loss(th, x, y, *(jnp.minimum(u, y) for u in extra))

    lo = jnp.full(jnp.broadcast_shapes(C.shape, next(iter(th.values())).shape), np.log(BOUNDS[0]))
    hi = jnp.minimum(np.log(BOUNDS[1]), jnp.log(C / (6.0 * BOUNDS[0]))) + 0 * lo
    x = bisect_min(objective, lo, hi)
    logD = log_d(x)
    return np.exp(np.asarray(x)), np.exp(np.asarray(logD)), np.exp(np.asarray(objective(x)))


@dataclass
class ComputeOptimal:
    """Per-draw compute-optimal allocations for several budgets.

    Attributes
    ----------
    budgets : ndarray (n_budgets,)
        FLOPs.
    N, D, loss : ndarray (n_draws, n_budgets)
        Optimal parameters, tokens and the law's loss there, per draw.
    a, b : ndarray (n_draws,)
        Exponents of N* ~ C^a and D* ~ C^b (local slopes over the budgets
        given, or over 1e18..1e24 when a single budget is given).
    accounting : str
    """

    budgets: np.ndarray
    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    a: np.ndarray
    b: np.ndarray
    accounting: str

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Median and equal-tailed interval of N*, D*, D*/N* and L* per budget."""
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        rows = []
        for j, c in enumerate(self.budgets):
            row = {"budget": c}
            for name, v in (("N", self.N[:, j]), ("D", self.D[:, j]),
                            ("tokens_per_param", self.D[:, j] / self.N[:, j]), ("loss", self.loss[:, j])):
                row[f"{name}_median"] = np.median(v)
                row[f"{name}_q{lo * 100:02.0f}"] = np.quantile(v, lo)
                row[f"{name}_q{hi * 100:02.0f}"] = np.quantile(v, hi)
            row["bound_hit"] = float(np.mean((self.N[:, j] <= BOUNDS[0] * 1.01) | (self.D[:, j] <= BOUNDS[0] * 1.01)
                                             | (self.N[:, j] >= BOUNDS[1] / 1.01)))
            rows.append(row)
        return pd.DataFrame(rows)

    def exponents(self, prob: float = 0.9) -> pd.DataFrame:
        """Posterior mean and interval of the scaling exponents a and b."""
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        return pd.DataFrame({
            name: {"mean": v.mean(), "median": np.median(v), f"q{lo * 100:02.0f}": np.quantile(v, lo),
                   f"q{hi * 100:02.0f}": np.quantile(v, hi)}
            for name, v in (("a", self.a), ("b", self.b))
        }).T

    def to_dict(self) -> dict:
        return {"accounting": self.accounting, "allocations": self.summary().to_dict(orient="records"),
                "exponents": self.exponents().to_dict(orient="index")}


def compute_optimal(posterior, budget, *, accounting: str = "paper", arch=PAPER_ARCH, U=None) -> ComputeOptimal:
    """Compute-optimal model size and tokens for each budget, per posterior draw.

    Parameters
    ----------
    posterior : Posterior
        A supervised fit, or a mixture of fits of several laws (:func:`bayesdistill.average`).
    budget : float or array-like
        Training budgets in FLOPs.
    accounting : {"paper", "6ND"}
        ``3 F(N) D`` (Eq. 69, with ``arch``) or ``6 N D``.
    U : float, optional
        Unique tokens available, for a data-constrained law (``"muennighoff"``): held fixed while
        the budget sets N and D; where ``D > U`` the data are repeated. None: every token is fresh.

    Returns
    -------
    ComputeOptimal
    """
    C = _check_budgets(budget)
    if U is not None:
        if not (np.ndim(U) == 0 and np.isfinite(float(U)) and float(U) > 0):
            raise BayesDistillError(f"U must be one positive finite number of unique tokens, got {U!r}")
        laws = [p.law for p, _ in getattr(posterior, "parts", None) or [(posterior, None)]]
        if any("U" not in law.covariates for law in laws):
            raise BayesDistillError("U (unique tokens) is read by the data-constrained laws only; law "
                                    f"{[law.name for law in laws if 'U' not in law.covariates][0]!r} does not take it")
    parts = getattr(posterior, "parts", None)  # a mixture of laws (bd.average): solve each, keep its draws
    if parts is not None:
        res = [(compute_optimal(p, C, accounting=accounting, arch=arch, U=U), i) for p, i in parts]
        return ComputeOptimal(C, *(np.concatenate([getattr(r, f)[i] for r, i in res]) for f in ("N", "D", "loss", "a", "b")),
                              accounting)
    theta = posterior.theta()
    theta = {k: theta[k] for k in posterior.law.params}
    N, D, L = optimal_size(posterior.law, theta, C, accounting, arch, U)
    span = C if len(C) > 1 and C.max() / C.min() > 10 else np.logspace(18, 24, 7)
    Ns, Ds, _ = optimal_size(posterior.law, theta, span, accounting, arch, U) if span is not C else (N, D, L)
    x = np.log(span) - np.log(span).mean()
    a = (np.log(Ns) * x).sum(1) / (x**2).sum()
    b = (np.log(Ds) * x).sum(1) / (x**2).sum()
    return ComputeOptimal(C, N, D, L, a, b, accounting)
