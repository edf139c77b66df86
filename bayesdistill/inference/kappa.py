"""``discrepancy="compute"``: learning ``kappa``, the law's misfit per decade of compute, by
leave-last-level-out inside the fitted runs (the model is described in :mod:`.model`).

The runs are binned into IsoFLOP levels (:func:`bayesdistill.inference.validation.compute_levels`);
the ``distance`` model fitted to every level below the largest (the *inner* fit: the main fit's
compiled program, the largest level masked out, the centre and distance geometry of the inner
runs) predicts the largest level, and that predictive density is the likelihood of ``kappa``.

The inner posterior is the Laplace approximation at its mode, reweighted by Pareto-smoothed
importance sampling (:mod:`.laplace`): on these few-parameter posteriors that is the exact
posterior for ~1,000 potential evaluations, computed in the same program call as the main fit's
mode. Where the importance weights are unreliable (Pareto ``k`` above
:data:`~bayesdistill.inference.laplace.PARETO_K_MAX`) the inner posterior is sampled with NUTS
instead, as the main fit is; the config says which (``kappa["inner"]``).
"""

from __future__ import annotations

import arviz as az
import jax
import numpy as np

from ..errors import SweepError
from .engine import Job
from .inputs import Prepared, centre_arg, job_of
from .laplace import PARETO_K_MAX, Laplace, psis_weights
from .model import KAPPA_GRID, distance_geometry, kappa_posterior, log10_6nd, sample_grid
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
    logN, logD, _ = p.inputs.args
    geometry = {"N": float(np.asarray(logN)[inner].mean()), "D": float(np.asarray(logD)[inner].mean()),
                **distance_geometry(np.asarray(logN)[inner], np.asarray(logD)[inner])}
    return job_of(p, masks={"log_loss": inner}, args=(logN, logD, centre_arg(geometry)))


def kappa_from_prior(pri, seed: int, why: str, n_draws: int) -> tuple[np.ndarray, dict]:
    """``n_draws`` of ``kappa`` from its prior, and why (for the config)."""
    kappa = pri["kappa"].to_numpyro().sample(jax.random.PRNGKey(seed), (n_draws,))
    return np.asarray(kappa, dtype=np.float64), {"source": f"prior: {why}"}


def inner_draws(lap: Laplace) -> tuple[dict, np.ndarray, float]:
    """``(draws, weights, k)``: the importance draws of an inner Laplace step, their smoothed weights and Pareto k."""
    w, k = psis_weights(lap.log_weights)
    return {name: np.asarray(v) for name, v in lap.samples.items()}, w, k


def reliable(k: float) -> bool:
    """Whether importance weights with Pareto ``k`` can stand in for the inner NUTS fit."""
    return bool(np.isfinite(k) and k <= PARETO_K_MAX)


def kappa_from_inner(p: Prepared, job: Job, draws: dict, weights, n_draws: int, how: dict) -> tuple[np.ndarray, dict]:
    """Draws of ``kappa`` and how they were learnt (for the config), from the inner posterior's draws.

    ``draws`` maps each site to ``(S, ...)`` draws of the inner posterior with ``weights`` (S,)
    (None: equal). The held-out largest level, ``e`` decades of compute beyond the inner fit,
    gives the likelihood of ``kappa`` under the inner posterior predictive
    (:func:`bayesdistill.inference.model.kappa_posterior`); its posterior on a grid is drawn
    ``n_draws`` times, independently of the other parameters. ``how`` (e.g. the inner method and
    its seconds) is added to the returned info.
    """
    from .validation import log10_compute

    rows, pri, noise = p.sweep.supervised, p.inputs.priors, p.inputs.model_noise
    inner = np.asarray(job.masks["log_loss"], bool)
    geometry = {k: float(v) for k, v in job.args[2].items()}
    flat = {k: np.asarray(v).reshape(-1) for k, v in draws.items() if np.ndim(v) == 1}
    inner_post = Posterior(az.from_dict(posterior={k: v[None] for k, v in flat.items()}), p.law, pri, noise,
                           geometry, {"discrepancy": "distance"})
    train, test = rows[inner], rows[~inner]
    N, D = test["N"].to_numpy(float), test["D"].to_numpy(float)
    e = np.maximum(0.0, log10_compute(test) - float(log10_compute(train).max()))
    nu = flat["nu"] if noise == "student_t" else None
    mu, scale = np.asarray(inner_post.log_loss_draws(N, D)), np.asarray(inner_post.noise_scale(N, D))
    scale = np.broadcast_to(scale, mu.shape)
    w = kappa_posterior(np.log(test["loss"].to_numpy(float)), mu, scale, nu, e, pri["kappa"], weights=weights)
    kappa = sample_grid(KAPPA_GRID, w, n_draws, np.random.default_rng(np.random.SeedSequence([p.seed, 15])))
    info = {"source": "leave-last-level-out", "inner_runs": int(inner.sum()), "held_out_runs": int((~inner).sum()),
            "held_out_decades": float(np.median(e)), "median": float(np.median(kappa)),
            "q05": float(np.quantile(kappa, 0.05)), "q95": float(np.quantile(kappa, 0.95)), **how}
    return kappa, info
