"""Value of information: which run to add to the sweep next.

Preposterior analysis for candidate runs (supervised or distillation
configurations, each with its FLOP cost). For a candidate run:

1. simulate its outcome ``y`` from the posterior predictive (a draw of the
   coefficients and the noise);
2. update the posterior by importance weighting every draw with the
   likelihood of ``y`` (exact for one added observation, no refit);
3. re-decide: the allocation (among the recommendation's candidates) with the
   lowest expected loss under the updated posterior, and record how much it
   improves on the current decision under that posterior (>= 0).

The expected improvement (nats of student loss) over simulated outcomes is the
expected value of sample information; divided by the run's cost it ranks the
candidates. The weights' effective sample size is reported: when it is tiny
the run would move the posterior far and the estimate is noisy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from ..allocation.distillation import check_budget
from ..errors import BayesDistillError
from ..inference.students import student_log_loss_draws
from ..laws.distillation import require_distillation
from ..laws.flops import PAPER_ARCH, forward_flops
from ..laws.scenarios import DEFAULT_SCENARIOS
from .objectives import get_objective
from .recommendation import (
    check_scenarios,
    evaluate_options,
    review_gate,
)


def _run_cost(row, arch):
    if pd.notna(row.get("flops")):
        return float(row["flops"])
    if row["kind"] == "supervised":
        return 3.0 * forward_flops(row["N"], arch) * row["D"]
    if pd.isna(row.get("N_T")):
        raise BayesDistillError(f"candidate run {row.name}: give 'flops' or the teacher size N_T to cost its logits")
    return 3.0 * forward_flops(row["N_S"], arch) * row["D_S"] + forward_flops(row["N_T"], arch) * row["D_S"]


def _check_runs(runs) -> pd.DataFrame:
    runs = pd.DataFrame(runs).reset_index(drop=True)
    if runs.empty:
        raise BayesDistillError("give at least one candidate run")
    if "kind" not in runs:
        runs["kind"] = np.where(runs.columns.isin(["N_S"]).any(), "distillation", "supervised")
    for i, r in runs.iterrows():
        if r["kind"] == "supervised":
            need = ("N", "D")
        elif r["kind"] == "distillation":
            need = ("N_S", "D_S")
            if pd.isna(r.get("L_T")) and (pd.isna(r.get("N_T")) or pd.isna(r.get("D_T"))):
                raise BayesDistillError(f"candidate run {i}: give the teacher as L_T or as N_T and D_T")
        else:
            raise BayesDistillError(f"candidate run {i}: kind must be 'supervised' or 'distillation', "
                                    f"got {r['kind']!r}")
        for c in need:
            v = r.get(c)
            if v is None or pd.isna(v) or not float(v) > 0:
                raise BayesDistillError(f"candidate run {i} ({r['kind']}): column {c!r} must be positive, got {v!r}")
    return runs


def _predictive_log_loss(post, row):
    """Per-draw law log loss of the run and its noise scale (with the discrepancy at its distance)."""
    if row["kind"] == "supervised":
        N, D = [row["N"]], [row["D"]]
        return (np.asarray(post.log_loss_draws(N, D))[:, 0],
                np.asarray(post.noise_scale(N, D, "sigma"), dtype=float)[:, 0])
    teacher = ({"L_T": row["L_T"]} if pd.notna(row.get("L_T")) else {"N_T": row["N_T"], "D_T": row["D_T"]})
    mu, _, _ = student_log_loss_draws(post, row["N_S"], row["D_S"], **teacher)
    scale = np.asarray(post.noise_scale([row["N_S"]], [row["D_S"]], "sigma_distill"), dtype=float)[:, 0]
    return np.asarray(mu)[:, 0], scale


def value_of_information(posterior, runs, *, budget, student_size, scenarios=DEFAULT_SCENARIOS,
                         n_outcomes: int = 256, n_candidates: int = 64, seed: int = 0, strict: bool = False,
                         arch=PAPER_ARCH) -> pd.DataFrame:
    """Rank candidate next runs by the expected improvement of the decision per FLOP.

    Parameters
    ----------
    posterior : Posterior
        A distillation fit.
    runs : DataFrame or list of dict
        Candidate runs: ``kind`` (``supervised`` with ``N, D``; ``distillation`` with
        ``N_S, D_S`` and ``L_T`` or ``N_T, D_T``) and optionally ``flops`` (cost; by
        default ``3 F(N) D`` for training plus ``F(N_T) D_S`` for the teacher's logits).
    budget, student_size, scenarios
        The decision the runs should inform (as in :func:`bayesdistill.recommend`);
        the decision objective is the expected loss.
    n_outcomes : int
        Simulated outcomes per run.

    Returns
    -------
    pandas.DataFrame
        The runs with ``flops``, ``evsi`` (expected improvement of the decision's
        expected loss, nats), ``evsi_se``, ``evsi_per_eflop`` (per 1e18 FLOPs),
        ``p_decision_changes`` and ``weights_ess`` (mean effective sample size of the
        updated posterior), sorted best first.
    """
    if hasattr(posterior, "components"):
        raise BayesDistillError("value_of_information takes one distillation fit, not a mixture of fits "
                                "(bd.average); ask it of each law")
    require_distillation(posterior.law, "value_of_information needs")
    budget, student_size = check_budget(budget, student_size)
    scenarios = check_scenarios(scenarios)
    runs = _check_runs(runs)
    review_gate(posterior, strict, "this value-of-information ranking")
    ev = evaluate_options(posterior, budget, student_size, scenarios, get_objective("mean"), n_candidates, seed, arch)
    Lmat = np.concatenate([ev[sc]["L"] for sc in scenarios], 0)     # (actions, draws)
    current = int(np.argmin(Lmat.mean(1)))
    n = Lmat.shape[1]
    rng = np.random.default_rng(seed)
    k = rng.choice(n, size=min(n_outcomes, n), replace=False)
    nu = posterior.draws(["nu"])["nu"] if posterior.noise == "student_t" else None
    # common random numbers: every run sees the same simulated draws and noise, so differences
    # between runs are not Monte Carlo noise (and identical runs score identically)
    eps = rng.standard_t(nu[k]) if nu is not None else rng.standard_normal(len(k))
    out = []
    for _, row in runs.iterrows():
        mu, sigma = _predictive_log_loss(posterior, row)
        y = mu[k] + sigma[k] * eps                                   # simulated outcomes
        z = (y[:, None] - mu[None, :]) / sigma[None, :]
        ll = (stats.t.logpdf(z, nu[None, :]) if nu is not None else stats.norm.logpdf(z)) - np.log(sigma)[None, :]
        W = np.exp(ll - special.logsumexp(ll, axis=1, keepdims=True))  # (outcomes, draws)
        post_loss = W @ Lmat.T                                        # (outcomes, actions)
        gain = post_loss[:, current] - post_loss.min(1)
        cost = _run_cost(row, arch)
        out.append({"flops": cost, "evsi": gain.mean(), "evsi_se": gain.std(ddof=1) / np.sqrt(len(gain)),
                    "evsi_per_eflop": gain.mean() / cost * 1e18,
                    # a change only counts when it gains something: tied (duplicate) candidates do not
                    "p_decision_changes": float(np.mean(gain > 1e-7 * post_loss[:, current])),
                    "weights_ess": float(np.mean(1.0 / (W**2).sum(1)))})
    res = pd.concat([runs.drop(columns="flops", errors="ignore"), pd.DataFrame(out)], axis=1)
    return res.sort_values("evsi_per_eflop", ascending=False)
