"""``discrepancy="compute"``: learning the law's misfit beyond the fitted compute (``kappa`` and
``omega``, :mod:`.misfit`) by leave-last-level-out inside the fitted runs.

The runs are binned into IsoFLOP levels (:func:`bayesdistill.inference.validation.compute_levels`);
the ``distance`` model fitted to every level below the largest (the *inner* fit: the main fit's
compiled program, the largest level masked out, the centre and distance geometry of the inner
runs) predicts the largest level, and that predictive density is the likelihood of ``(kappa,
omega)`` (:func:`.misfit.loglik_grid`), which updates their prior (by default the population prior
learnt across public sweeps).

The inner posterior is the Laplace approximation at its mode, reweighted by Pareto-smoothed
importance sampling (:mod:`.laplace`): on these few-parameter posteriors that is the exact
posterior for ~1,000 potential evaluations, computed in the same program call as the main fit's
mode. Where the importance weights are unreliable (Pareto ``k`` above
:data:`~bayesdistill.inference.laplace.PARETO_K_MAX`) the inner posterior is sampled with NUTS
instead, as the main fit is; the config says which (``kappa["inner"]``).
"""

from __future__ import annotations

import arviz_base as azb
import numpy as np

from ..errors import SweepError
from .engine import Job
from .inputs import Prepared, centre_arg, job_of
from .laplace import PARETO_K_MAX, Laplace, psis_weights
from .misfit import level_evidence, misfit_draws
from .model import distance_geometry, log10_6nd
from .posterior import Posterior


def log10_c_max(rows) -> float | None:
    """log10 of the largest compute 6 N D of the supervised runs (None without any)."""
    if len(rows) == 0:
        return None
    return float(np.max(log10_6nd(rows["N"], rows["D"])))


def kappa_plan(rows, pri):
    """Which runs the inner leave-last-level-out fit fits: a bool mask, or a text saying why there is none.

    There is none where the runs form one compute level or too few runs lie below the largest;
    ``kappa`` then keeps its prior.
    """
    from .validation import MIN_FIT_RUNS, compute_levels

    need = max(MIN_FIT_RUNS, len(pri))
    try:
        levels = compute_levels(rows)
    except SweepError as exc:
        return str(exc)
    inner = levels < levels.max()
    if levels.max() == 0:
        return "the runs form one compute level"
    if inner.sum() < need:
        return f"{int(inner.sum())} runs below the largest compute level, fewer than {need}"
    return inner


def inner_job(p: Prepared, inner) -> Job:
    """The inner fit of ``p``: the same model and data, the runs outside ``inner`` masked out."""
    logN, logD, *covariates, _ = p.inputs.args  # a law's covariates (log U) sit before the centre
    geometry = {"N": float(np.asarray(logN)[inner].mean()), "D": float(np.asarray(logD)[inner].mean()),
                **distance_geometry(np.asarray(logN)[inner], np.asarray(logD)[inner]),
                **{c: float(np.asarray(x)[inner].mean()) for c, x in zip(p.law.covariates, covariates)}}
    return job_of(p, masks={"log_loss": inner}, args=(logN, logD, *covariates, centre_arg(geometry)))


def kappa_from_prior(pri, seed: int, why: str, n_draws: int) -> tuple[dict, dict]:
    """``n_draws`` of ``kappa`` and ``omega`` from their prior, and why (for the config)."""
    draws, summary = misfit_draws(None, pri, n_draws, seed)
    return draws, {"source": f"prior: {why}", **summary}


def inner_draws(lap: Laplace) -> tuple[dict, np.ndarray, float]:
    """``(draws, weights, k)``: the importance draws of an inner Laplace step, their smoothed weights and Pareto k."""
    w, k = psis_weights(lap.log_weights)
    return {name: np.asarray(v) for name, v in lap.samples.items()}, w, k


def reliable(k: float) -> bool:
    """Whether importance weights with Pareto ``k`` can stand in for the inner NUTS fit."""
    return bool(np.isfinite(k) and k <= PARETO_K_MAX)


def kappa_from_inner(p: Prepared, job: Job, draws: dict, weights, n_draws: int, how: dict) -> tuple[dict, dict]:
    """Draws of ``kappa`` and ``omega`` and how they were learnt (for the config), from the inner posterior.

    ``draws`` maps each site to ``(S, ...)`` draws of the inner posterior with ``weights`` (S,)
    (None: equal). The held-out largest level, ``e`` decades of compute beyond the inner fit,
    gives the likelihood of ``(kappa, omega)`` under the inner posterior predictive
    (:func:`bayesdistill.inference.misfit.loglik_grid`); their posterior on the grid is drawn
    ``n_draws`` times, independently of the other parameters. ``how`` (e.g. the inner method and
    its seconds) is added to the returned info, with the likelihood grid itself (``loglik``), so
    the fit can be read under another misfit prior (:func:`bayesdistill.inference.population.reprior`).
    """
    rows, pri, noise = p.sweep.supervised, p.inputs.priors, p.inputs.model_noise
    inner = np.asarray(job.masks["log_loss"], bool)
    train, test = rows[inner], rows[~inner]
    geometry = {**{k: float(v) for k, v in job.args[-1].items()}, "log10_c_max": log10_c_max(train)}
    flat = {k: np.asarray(v).reshape(-1) for k, v in draws.items() if np.ndim(v) == 1}
    inner_post = Posterior(azb.from_dict({"posterior": {k: v[None] for k, v in flat.items()}}), p.law, pri, noise,
                           geometry, {"discrepancy": "distance"})
    ll = level_evidence(inner_post, test, weights=weights, seed=p.seed)
    e = inner_post.decades_beyond(test["N"].to_numpy(float), test["D"].to_numpy(float))
    out, summary = misfit_draws(ll, pri, n_draws, p.seed)
    info = {"source": "leave-last-level-out", "inner_runs": int(inner.sum()), "held_out_runs": int((~inner).sum()),
            "held_out_decades": float(np.median(e)), **summary, **how, "loglik": np.round(ll, 4).tolist()}
    return out, info
