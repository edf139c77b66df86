"""Which of these existing teachers is best, per posterior draw.

Each candidate teacher is given by its measured loss ``L_T`` and/or its size and
tokens ``N_T, D_T`` (then its loss comes from the supervised law, per draw). With
the teacher-inference accounting every student token costs ``3 F(N_S) + F(N_T)``,
so the budget buys ``D_S = C / (3 F(N_S) + F(N_T))`` distillation tokens.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..errors import BayesDistillError
from ..laws.distillation import require_distillation
from ..laws.flops import PAPER_ARCH, forward_flops
from .distillation import check_budget, theta_arrays
from .search import BOUNDS


@functools.lru_cache(maxsize=32)
def _candidate_losses(log_loss, student_log_loss):
    """Jitted ``(theta, logN_S, log D_S, log N_T, log D_T, log L_T, given) -> (log L_T, log L_S)``, (draws, teachers)."""
    def losses(theta, s, lds, log_n, log_d, log_l, given):
        th = {k: v[:, None] for k, v in theta.items()}
        llt = jnp.where(given, log_l, log_loss(th, log_n, log_d))
        return llt, student_log_loss(th, s, lds, llt)

    return jax.jit(losses)


def choose_teacher(law, theta: Mapping, teachers, budget, student_size, *, pay_logits: bool = True,
                   arch=PAPER_ARCH) -> dict:
    """Which of these existing teachers is best, per draw.

    Parameters
    ----------
    law, theta, budget, student_size, arch
        As in :func:`allocate` (a distillation law).
    teachers : DataFrame, mapping of columns or list of dicts
        One row per candidate: ``L_T`` (a measured loss) and/or ``N_T`` and ``D_T`` (then its loss
        is the supervised law's, per draw); a given ``L_T`` takes precedence.
    pay_logits : bool, optional
        True (teacher inference): each student token costs ``3 F(N_S) + F(N_T)``, so every teacher
        needs ``N_T``. False (best case, e.g. stored logits): ``D_S = C / (3 F(N_S))``.

    Returns
    -------
    dict of numpy.ndarray
        Per draw: ``teacher`` (row label of the best), its ``D_S`` (capped at 1e17), ``L_T`` and
        ``loss``; ``losses`` (draws x teachers; inf for a teacher whose logits the budget cannot
        pay on 1e6 tokens) and ``D_S_all`` (per teacher).
    """
    require_distillation(law, "choosing a teacher needs", kind="law")
    C, N_S = check_budget(budget, student_size)
    tab = pd.DataFrame(dict(teachers) if isinstance(teachers, Mapping) else teachers)
    tab = tab.reindex(columns=["N_T", "D_T", "L_T"]).astype(float)
    missing = tab["L_T"].isna() & (tab["N_T"].isna() | tab["D_T"].isna())
    if len(tab) == 0 or missing.any():
        raise BayesDistillError(f"teachers {list(tab.index[missing])} need L_T (their loss) or N_T and D_T")
    if pay_logits and tab["N_T"].isna().any():
        raise BayesDistillError(f"teachers {list(tab.index[tab['N_T'].isna()])} need N_T for the cost of their "
                                "logits (or pass pay_logits=False: teachers free, as in the best case)")
    values = tab.to_numpy()
    if np.any(~np.isnan(values) & ~(values > 0) | np.isinf(values)):
        raise BayesDistillError("teacher N_T, D_T and L_T must be positive and finite")
    d_s = C / (3.0 * forward_flops(N_S, arch) + (forward_flops(tab["N_T"].to_numpy(), arch) if pay_logits else 0.0))
    d_s = np.broadcast_to(d_s, (len(tab),))
    if not np.any(d_s >= BOUNDS[0]):
        raise BayesDistillError(f"budget {C:.3g} FLOPs cannot pay any teacher's logits on {BOUNDS[0]:.0e} tokens")
    logs = [jnp.asarray(np.log(tab[k].fillna(1.0).to_numpy())) for k in ("N_T", "D_T", "L_T")]
    llt, lls = _candidate_losses(law.log_loss, law.student_log_loss)(
        theta_arrays(law, theta), math.log(N_S), jnp.log(jnp.asarray(np.minimum(d_s, BOUNDS[1]))),
        *logs, jnp.asarray(tab["L_T"].notna().to_numpy()))
    losses = np.where(d_s >= BOUNDS[0], np.exp(np.asarray(lls)), np.inf)
    best, rows = np.argmin(losses, axis=1), np.arange(len(losses))
    return {"teacher": tab.index.to_numpy()[best], "D_S": np.minimum(d_s, BOUNDS[1])[best],
            "L_T": np.exp(np.asarray(llt))[rows, best], "loss": losses[rows, best], "losses": losses, "D_S_all": d_s}


def best_teacher(posterior, teachers, *, budget, student_size, pay_logits: bool = True,
                 arch=PAPER_ARCH) -> pd.DataFrame:
    """:func:`choose_teacher` over a posterior: a frame with one row per draw.

    Columns ``teacher`` (row label of the best candidate), ``D_S``, ``L_T``, ``loss``;
    ``attrs["p_best"]``: the posterior probability that each candidate is the best.
    """
    require_distillation(posterior.law, "choosing a teacher needs")
    res = choose_teacher(posterior.law, posterior.theta(), teachers, budget, student_size,
                         pay_logits=pay_logits, arch=arch)
    df = pd.DataFrame({k: res[k] for k in ("teacher", "D_S", "L_T", "loss")}).rename_axis("draw")
    labels = pd.DataFrame(dict(teachers) if isinstance(teachers, Mapping) else teachers).index
    df.attrs["p_best"] = {lab: float(np.mean(res["teacher"] == lab)) for lab in labels}
    return df
