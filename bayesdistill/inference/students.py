"""Predictions for distilled students from a joint fit.

Functions take a :class:`~bayesdistill.inference.posterior.Posterior` of a
:class:`~bayesdistill.laws.DistillationLaw`; the posterior exposes them as
methods (``predict_student``, ``student_vs_supervised``, ``capacity_gap``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._checks import positive_array
from ..errors import BayesDistillError
from ..laws.distillation import require_distillation


def student_log_loss_draws(post, N_S, D_S, N_T=None, D_T=None, L_T=None):
    """Log student loss per draw and point (n_draws, n_points), plus the teacher arrays used."""
    require_distillation(post.law, "student predictions need")
    if L_T is None and (N_T is None or D_T is None):
        raise BayesDistillError("give the teacher as L_T= (its loss) or as N_T= and D_T= (size and tokens)")
    arrays = {"N_S": positive_array(N_S, "N_S"), "D_S": positive_array(D_S, "D_S")}
    if L_T is not None:
        arrays["L_T"] = positive_array(L_T, "L_T")
    else:
        arrays["N_T"], arrays["D_T"] = positive_array(N_T, "N_T"), positive_array(D_T, "D_T")
    try:
        b = dict(zip(arrays, np.broadcast_arrays(*arrays.values())))
    except ValueError:
        raise BayesDistillError(f"student and teacher arguments do not broadcast: shapes "
                                f"{ {k: v.shape for k, v in arrays.items()} }") from None
    th = {k: v[:, None] for k, v in post.theta().items()}
    logN, logD = jnp.log(b["N_S"])[None, :], jnp.log(b["D_S"])[None, :]
    if "L_T" in b:
        log_lt = jnp.broadcast_to(jnp.log(b["L_T"])[None, :], (post.n_draws, len(b["N_S"])))
    else:
        log_lt = post.law.log_loss(th, jnp.log(b["N_T"])[None, :], jnp.log(b["D_T"])[None, :])
    return post.law.student_log_loss(th, logN, logD, log_lt), log_lt, b


def _stats(L, P=None, prob=0.9):
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    out = {"mean": L.mean(0), "median": np.median(L, 0), "q05": np.quantile(L, lo, 0),
           "q95": np.quantile(L, hi, 0)}
    if P is not None:
        out["pred_q05"], out["pred_q95"] = np.quantile(P, lo, 0), np.quantile(P, hi, 0)
    return out


def predict_student(post, N_S, D_S, N_T=None, D_T=None, L_T=None, *, seed=0) -> pd.DataFrame:
    """Student loss after distillation, with uncertainty.

    The teacher is given by its loss ``L_T`` or by its size and tokens
    ``N_T, D_T`` (then its loss comes from the supervised law, per draw).
    Returns the columns of :meth:`Posterior.predict` (``mean, median, q05, q95,
    pred_q05, pred_q95``) after the student and teacher columns.
    """
    mu, log_lt, b = student_log_loss_draws(post, N_S, D_S, N_T, D_T, L_T)
    pred = mu + post.noise_draws(jax.random.PRNGKey(seed), mu.shape, scale="sigma_distill",
                                 N=b["N_S"], D=b["D_S"])
    df = pd.DataFrame({k: v for k, v in b.items()})
    for k, v in _stats(np.asarray(jnp.exp(mu)), np.asarray(jnp.exp(pred))).items():
        df[k] = v
    return df


def student_vs_supervised(post, N_S, D_S, N_T=None, D_T=None, L_T=None) -> pd.DataFrame:
    """Distilled student beside the same student trained supervised on the same tokens.

    Columns: the distilled loss (``distill_*``), the supervised loss
    (``supervised_*``), the teacher's loss (``teacher_median``) and
    ``p_distill_beats_supervised``, the posterior probability that the
    distilled student's (law) loss is lower.
    """
    mu, log_lt, b = student_log_loss_draws(post, N_S, D_S, N_T, D_T, L_T)
    th = {k: v[:, None] for k, v in post.theta().items()}
    sup = post.law.log_loss(th, jnp.log(b["N_S"])[None, :], jnp.log(b["D_S"])[None, :])
    df = pd.DataFrame(b)
    for tag, arr in (("distill", mu), ("supervised", sup)):
        for k, v in _stats(np.asarray(jnp.exp(arr))).items():
            df[f"{tag}_{k}"] = v
    df["teacher_median"] = np.median(np.exp(np.asarray(log_lt)), 0)
    df["p_distill_beats_supervised"] = np.asarray((mu < sup).mean(0))
    return df


def capacity_gap(post, N_S, D_S, N_T_grid=None, tokens_per_param_T=20.0):
    """Student loss against teacher size, with bands, and the best teacher size.

    Teachers are trained at ``tokens_per_param_T`` tokens per parameter.

    Returns
    -------
    curve : DataFrame
        One row per teacher size: ``N_T, D_T, L_T_median`` and the student's
        ``mean, median, q05, q95``.
    best : ndarray (n_draws,)
        Per draw, the teacher size on the grid that minimises the student loss.
    """
    N_T = np.logspace(8, 11.5, 57) if N_T_grid is None else positive_array(N_T_grid, "N_T_grid")
    D_T = N_T * float(tokens_per_param_T)
    mu, log_lt, _ = student_log_loss_draws(post, np.full_like(N_T, float(N_S)), np.full_like(N_T, float(D_S)),
                                           N_T=N_T, D_T=D_T)
    L = np.exp(np.asarray(mu))
    curve = pd.DataFrame({"N_T": N_T, "D_T": D_T, "L_T_median": np.median(np.exp(np.asarray(log_lt)), 0),
                          **_stats(L)})
    return curve, N_T[np.argmin(L, axis=1)]
