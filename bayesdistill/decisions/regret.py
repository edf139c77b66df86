"""What acting on the posterior's compute-optimal model size loses at a held-out IsoFLOP budget.

The check of issue 15's protocol (:mod:`bayesdistill.inference.validation`) for the decision a user
makes from a fit: train the run nearest the posterior median of N*(C), and compare it with the best
run observed at that budget.
"""

from __future__ import annotations

import math

import numpy as np

from ..allocation.supervised import compute_optimal
from ..inference.validation import isoflop_slices, log10_compute


def optimal_regret(post, test) -> list[dict]:
    """Act on the posterior's compute-optimal N* at each IsoFLOP slice of ``test``: what it loses.

    For every slice (:func:`isoflop_slices`) at budget C (the geometric mean of its runs' 6 N D),
    the posterior median and 90% interval of N*(C) (6ND accounting), the run of the slice nearest
    the median in log N ("the run acted on") and the best run observed there; ``regret`` is the
    relative loss of the first against the second.
    """
    out = []
    for idx in isoflop_slices(test):
        s = test.iloc[idx]
        C = float(10 ** log10_compute(s).mean())
        co = compute_optimal(post, [C], accounting="6ND")
        n_star = co.N[:, 0]
        med = float(np.median(n_star))
        chosen = s.iloc[int(np.argmin(np.abs(np.log(s["N"].to_numpy(float)) - math.log(med))))]
        best = s.loc[s["loss"].idxmin()]
        out.append({"budget": C, "runs": len(s), "N_star_median": med,
                    "N_star_q05": float(np.quantile(n_star, 0.05)), "N_star_q95": float(np.quantile(n_star, 0.95)),
                    "N_chosen": float(chosen["N"]), "loss_chosen": float(chosen["loss"]),
                    "N_best": float(best["N"]), "loss_best": float(best["loss"]),
                    "regret": float(chosen["loss"] / best["loss"] - 1)})
    return out
