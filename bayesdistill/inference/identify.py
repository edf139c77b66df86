"""Which quantities the data identify: prior against posterior spread.

A coefficient the runs pin down has a posterior much narrower than its prior;
one they do not (the student's data term on the paper's design, c1 and f1 of
the broken power law on their own) keeps most of its prior width, so its
interval restates the prior, not the data. :func:`identification` measures
this for every coefficient and for the combinations a law is known to
identify better than its parts (``c1 * f1`` and ``1 / f1`` for the broken
power law, exponents times the outer exponent).
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
from numpyro.infer import Predictive

from ..errors import BayesDistillError
from .model import sample_coefficients

#: a quantity counts as identified when its posterior 90% width (log scale) is below this share of the prior's
IDENTIFIED_BELOW = 0.5


def _combinations(law) -> dict:
    """Named functions of the coefficients that a law identifies better than its parts."""
    out = {}
    for coef, partner, *_ in law.products:
        out[f"{coef}*{partner}"] = lambda t, c=coef, p=partner: t[c] * t[p]
        out[f"1/{partner}"] = lambda t, p=partner: 1.0 / t[p]
    for g, exps in law.outer:
        for e in exps:
            out[f"{e}*{g}"] = lambda t, e=e, g=g: t[e] * t[g]
    return out


def _width(x) -> float:
    """90% width of log(x) (robust to heavy tails; draws that overflowed are dropped)."""
    x = np.asarray(x, float)
    lx = np.log(x[np.isfinite(x) & (x > 0)])
    return float(np.quantile(lx, 0.95) - np.quantile(lx, 0.05))


def identification(post, *, num_samples: int = 4000, seed: int = 0,
                   threshold: float = IDENTIFIED_BELOW) -> pd.DataFrame:
    """How much the data narrowed each coefficient (and useful combinations) relative to its prior.

    Parameters
    ----------
    post : Posterior
        A fitted posterior (its priors and centre give the exact prior the sampler used).
    num_samples : int
        Prior draws.
    seed : int
        Seed of the prior draws.
    threshold : float
        ``identified`` when the posterior's 90% width of the log quantity is
        below ``threshold`` times the prior's.

    Returns
    -------
    pandas.DataFrame
        One row per quantity: ``prior_q05, prior_q95, q05, median, q95``
        (natural units), ``width_ratio`` (posterior / prior 90% width of the
        log) and ``identified``.
    """
    if not isinstance(num_samples, (int, np.integer)) or isinstance(num_samples, bool) or num_samples < 100:
        raise BayesDistillError(f"num_samples must be an integer >= 100, got {num_samples!r}")
    if not 0 < threshold <= 1:
        raise BayesDistillError(f"threshold must be in (0, 1], got {threshold!r}")
    law = post.law
    centre = {k: float(v) for k, v in post.centre.items()}
    prior = Predictive(lambda: sample_coefficients(law, post.priors, centre), num_samples=int(num_samples))(
        jax.random.PRNGKey(int(seed)))
    prior = {k: np.asarray(prior[k], float) for k in law.params}
    postd = {k: np.asarray(v, float) for k, v in post.draws(list(law.params)).items()}
    rows = {}
    quantities = {k: (lambda t, k=k: t[k]) for k in law.params} | _combinations(law)
    for name, f in quantities.items():
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pr, po = f(prior), f(postd)
        ratio = _width(po) / _width(pr)
        rows[name] = {"prior_q05": np.nanquantile(pr, 0.05), "prior_q95": np.nanquantile(pr, 0.95),
                      "q05": np.quantile(po, 0.05), "median": np.median(po), "q95": np.quantile(po, 0.95),
                      "width_ratio": ratio, "identified": bool(ratio < threshold)}
    return pd.DataFrame.from_dict(rows, orient="index")
