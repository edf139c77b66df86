"""The population prior of the law's misfit beyond the fitted compute: fitting it across sweeps.

:func:`sweep_evidence` turns a sweep into its evidence on ``(kappa, omega)`` (the prequential
likelihood of its IsoFLOP rollout), :func:`fit_population` turns every sweep's evidence into the
population prior that ships in ``models/misfit_prior.json`` (``make misfit-prior``), and
:func:`reprior` reads a fit under another population prior (the benchmark's leave-one-sweep-out).
The model is described in :mod:`.misfit`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import BayesDistillError
from .misfit import (
    KAPPA_GRID,
    OMEGA_GRID,
    level_evidence,
    log_mass,
    log_node_area,
    misfit_draws,
)

#: hyper grids (scales of the half-normal population) and their log-uniform hyperprior
HYPER_KAPPA = np.geomspace(1e-3, 0.3, 36)
HYPER_OMEGA = np.geomspace(1e-3, 0.15, 36)


def _log_halfnormal(x, s):
    return 0.5 * np.log(2 / np.pi) - np.log(s) - 0.5 * (np.asarray(x) / s) ** 2


def fit_population(evidence: dict) -> dict:
    """The population prior from every sweep's ``(kappa, omega)`` log likelihood grid.

    ``evidence`` maps a sweep's name to its log likelihood grid (:func:`sweep_evidence`). Returns a
    JSON-ready dict: the predictive log density of a new sweep's ``(kappa, omega)`` on the grid,
    the hyperposterior's quantiles, and each sweep's maximum-likelihood values.
    """
    from scipy.special import logsumexp

    if not evidence:
        raise BayesDistillError("fit_population needs the evidence of at least one sweep")
    area = log_node_area()
    lk = _log_halfnormal(KAPPA_GRID[None, :], HYPER_KAPPA[:, None])        # (Hk, K)
    lw = _log_halfnormal(OMEGA_GRID[None, :], HYPER_OMEGA[:, None])        # (Hw, W)
    comp = lk[:, None, :, None] + lw[None, :, None, :]                      # (Hk, Hw, K, W) densities
    comp = comp - logsumexp(comp + area, axis=(2, 3), keepdims=True)       # normalised on the grid
    log_marg = sum(logsumexp(comp + area + np.asarray(ll, float), axis=(2, 3)) for ll in evidence.values())
    hyper = log_marg - logsumexp(log_marg)                                 # log-uniform hyperprior: flat
    pred = logsumexp(comp + hyper[..., None, None], axis=(0, 1))
    hk, hw = np.exp(logsumexp(hyper, axis=1)), np.exp(logsumexp(hyper, axis=0))

    def q(grid, p, qs):
        c = np.cumsum(p) / np.sum(p)
        return {f"q{int(round(x * 100)):02d}": float(grid[min(np.searchsorted(c, x), len(grid) - 1)]) for x in qs}

    mass = np.exp(log_mass(pred))
    per = {}
    for name, ll in evidence.items():
        i, j = np.unravel_index(np.argmax(ll), np.shape(ll))
        per[name] = {"kappa_ml": float(KAPPA_GRID[i]), "omega_ml": float(OMEGA_GRID[j])}
    return {
        "kappa_grid": KAPPA_GRID.tolist(), "omega_grid": OMEGA_GRID.tolist(),
        "log_density": np.round(pred, 6).tolist(),
        "hyper": {"h_kappa": q(HYPER_KAPPA, hk, (0.05, 0.5, 0.95)), "h_omega": q(HYPER_OMEGA, hw, (0.05, 0.5, 0.95))},
        "predictive": {"kappa": q(KAPPA_GRID, mass.sum(1), (0.5, 0.9)), "omega": q(OMEGA_GRID, mass.sum(0), (0.5, 0.9))},
        "sweeps": per,
    }


def sweep_evidence(df, law: str = "chinchilla", **settings) -> tuple[np.ndarray, list[dict]]:
    """A sweep's prequential evidence on ``(kappa, omega)``: the summed log likelihood grids of its
    IsoFLOP rollout (fit levels ``0..k`` with ``discrepancy="distance"``, held-out level ``k+1``, for
    every ``k`` of :func:`bayesdistill.inference.validation.rollout_splits`), and per step what was fitted."""
    import warnings

    from .sampling import fit
    from .validation import rollout_splits

    total, steps = np.zeros((len(KAPPA_GRID), len(OMEGA_GRID))), []
    for sp in rollout_splits(df):
        train, test = sp.frames(df)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = fit(train, law, discrepancy="distance", progress_bar=False, **settings)
        ll = level_evidence(post, test)
        total = total + ll
        steps.append({"level": int(sp.level), "fitted": len(train), "held_out": len(test),
                      "review_ok": bool(post.review().ok)})
    return total, steps


def reprior(post, pop: dict):
    """``post`` with its ``kappa`` and ``omega`` redrawn under the population prior ``pop``.

    The fit's own leave-last-level-out likelihood (``config["kappa"]["loglik"]``) is kept; only
    the population it updates changes (how the benchmark scores the prior leave-one-sweep-out).
    Where the fit had no held-out level, the draws come from ``pop`` alone.
    """
    from .posterior import Posterior

    info = post.config.get("kappa")
    if not post.has_kappa or not isinstance(info, dict):
        raise BayesDistillError("reprior needs a posterior with discrepancy='compute' (supervised law)")
    ll = info.get("loglik")
    if ll is None and info.get("source", "").startswith("leave-last-level-out"):
        raise BayesDistillError("this posterior's leave-last-level-out likelihood of (kappa, omega) is not kept in "
                                "saved files; reprior a posterior from bd.fit in the same session")
    n_chains, n_draws = post.idata.posterior.sizes["chain"], post.idata.posterior.sizes["draw"]
    draws, summary = misfit_draws(None if ll is None else np.asarray(ll, float), post.priors,
                                  n_chains * n_draws, int(post.config.get("seed", 0)), pop)
    idata = post.idata.copy(deep=False)  # new nodes: the sites set below leave post's draws as they are
    for site, v in draws.items():
        idata["posterior"][site] = xr.Variable(("chain", "draw"), v.reshape(n_chains, n_draws))
    config = {**post.config, "kappa": {**info, **summary, "population": "given"}}
    return Posterior(idata, post.law, post.priors, post.noise, post.centre, config)
