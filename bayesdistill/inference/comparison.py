"""Compare law variants on one sweep: model evidence, PSIS-LOO, stacking weights, extrapolation.

``bd.compare(sweep, laws=[...])`` fits every variant with NUTS and returns one
row per variant (indexed by its label). Which question each column answers:

==================  ==========================================================================
``log_z``           How probable are the observed log losses under this law *and its priors*,
                    parameters integrated out? (log marginal likelihood by bridge sampling;
                    the default estimator)
``log_z_se``        Monte Carlo error of ``log_z`` (relative-MSE estimate of Fruehwirth-Schnatter).
``log_bf``          How many nats of evidence is this variant behind the best? (log Bayes
                    factor against the best; 0 for the best, below -2.3 = 10:1 against)
``p_model``         With equal prior odds, how probable is each variant? (softmax of ``log_z``)
``log_z_smc``,      The same log Z from an independent estimator (adaptive tempered SMC,
``log_z_smc_se``    blackjax, repeated seeds); :class:`EvidenceWarning` when the two differ by more
                    than 4 combined standard errors and 0.2 nats.
``log_z_laplace``   A free sanity value: Gaussian approximation at the mode (no error).
``log_z_wide``,     Does the verdict hinge on the priors? log Z with every prior ``widen`` times
``log_z_wide_se``   wider (importance-reweighted posterior draws). Evidence punishes wide priors
                    (about log 2 per well-identified parameter at ``widen=2``); look at whether
                    the *ranking* changes.
``elpd_loo``,       How well does the law predict a new run like those in the sweep? (PSIS-LOO,
``elpd_loo_se``     ``arviz_stats.loo``; insensitive to prior width, unlike ``log_z``)
``pareto_k_bad``    How many runs make the LOO estimate unreliable (Pareto k above ArviZ's
                    threshold ``min(1 - 1/log10(S), 0.7)`` for S draws)? Non-zero: trust ``elpd_loo`` less.
``weight``          Which mixture of the variants predicts best? (stacking weights, ``arviz_stats.compare``)
``extrap_lpd``,     How well does the law fitted to the cheaper runs predict the most expensive
``extrap_lpd_se``   ones? (log predictive density of the runs above the ``holdout_quantile``
                    of compute, from a refit without them; the question scaling laws exist for)
``seconds``         Wall time spent on the variant.
==================  ==========================================================================

:func:`log_evidence` gives log Z of a posterior already fitted. The models
observe **log loss**, so every density here is a density of log
losses: compare only variants fitted to the same runs (supervised laws to the
supervised runs, distillation laws to all runs; mixing the two is refused).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.special import logsumexp

from ..data.sweep import read_sweep
from ..errors import BayesDistillError, LawError
from ..laws.base import get_law
from ..laws.distillation import DistillationLaw
from ..laws.flops import supervised_flops
from .evidence import (
    EvidenceWarning,
    Target,
    bridge_sampling,
    check_proper_priors,
    laplace_evidence,
    smc_evidence,
    wide_prior_shift,
)
from .inputs import model_inputs
from .many import fit_many
from .model import resolve_priors
from .pooling import pooled_inputs, pooled_priors, resolve_pool
from .sampling import fit

COLUMNS = ["log_z", "log_z_se", "log_bf", "p_model", "log_z_smc", "log_z_smc_se", "log_z_laplace",
           "log_z_wide", "log_z_wide_se", "elpd_loo", "elpd_loo_se", "pareto_k_bad", "weight",
           "extrap_lpd", "extrap_lpd_se", "seconds"]
#: estimators disagree when they differ by more than AGREE_Z combined standard errors (4: the SMC error
#: comes from the spread of only a few runs) and AGREE_NATS (below which no model choice changes)
AGREE_Z, AGREE_NATS = 4.0, 0.2


def _variants(laws, noise, priors, discrepancy, groups=None, pool="exponents"):
    if isinstance(laws, (str, dict)) or not hasattr(laws, "__iter__"):
        laws = [laws]
    out = []
    for item in laws:
        spec = dict(item) if isinstance(item, dict) else {"law": item}
        if isinstance(spec["law"], tuple):
            spec["law"], spec["noise"] = spec["law"]
        if isinstance(spec["law"], str) and ":" in spec["law"]:
            spec["law"], spec["noise"] = spec["law"].split(":", 1)
        unknown = set(spec) - {"law", "noise", "priors", "label", "pool"}
        if unknown:
            raise LawError(f"laws: unknown keys {sorted(unknown)} in {item!r}; use law, noise, priors, label, pool")
        if "pool" in spec and groups is None:
            raise LawError(f"laws: {item!r} names a pool, which needs groups= (a column of the sweep)")
        law = get_law(spec["law"])
        v = {"law": law, "noise": spec.get("noise", noise), "label": spec.get("label"), "groups": groups,
             "pool": spec.get("pool", pool)}
        if groups is None:
            v["priors"] = resolve_priors(law, v["noise"], spec.get("priors", priors), discrepancy)
        else:  # the law's priors and the spreads of the pooled coefficients
            v["priors"] = pooled_priors(law, v["noise"], spec.get("priors", priors), discrepancy,
                                        resolve_pool(law, v["pool"]))
            if v["label"] is None:
                v["label"] = f"{law.name}/pool={v['pool'] if isinstance(v['pool'], str) else '+'.join(v['pool'])}"
        check_proper_priors(v["priors"], f"law {law.name!r}")
        out.append(v)
    if not out:
        raise LawError("compare needs at least one law")
    names = [v["law"].name for v in out]
    for v in out:
        if v["label"] is None:
            v["label"] = v["law"].name if names.count(v["law"].name) == 1 else f"{v['law'].name}:{v['noise']}"
    labels = [v["label"] for v in out]
    if len(set(labels)) < len(labels):
        raise LawError(f"compare: the variants {labels} are not distinct; give each a different law, "
                       "noise or label")
    kinds = {isinstance(v["law"], DistillationLaw) for v in out}
    if len(kinds) > 1:
        raise LawError("compare: cannot compare supervised laws with distillation laws: they model "
                       "different runs (supervised runs only vs all runs), so their evidences and LOO "
                       "scores are not comparable")
    return out


def _inputs(sweep, v, inputs_kw, priors=None):
    """The model inputs of variant ``v`` (grouped or not) on ``sweep``."""
    priors = v["priors"] if priors is None else priors
    if v["groups"] is None:
        return model_inputs(sweep, v["law"], priors, v["noise"], **inputs_kw)
    return pooled_inputs(sweep, v["law"], v["groups"], v["pool"], priors, v["noise"], inputs_kw["discrepancy"])


def _fit(sweep, v, fit_kw):
    grouped = {} if v["groups"] is None else {"groups": v["groups"], "pool": v["pool"]}
    return fit(sweep, v["law"], priors=v["priors"], noise=v["noise"], **grouped, **fit_kw)


def _loglik(post) -> np.ndarray:
    """Pointwise log likelihood (chain, draw, observation) over every observed site."""
    ll = post.idata.log_likelihood
    parts = [ll[k].values.reshape(*ll[k].values.shape[:2], -1) for k in ("log_loss", "log_loss_student")
             if k in ll]
    return np.concatenate(parts, axis=-1)


#: arviz-stats' warning about Pareto k above its threshold: such runs are counted (``pareto_k_bad``) instead
PARETO_K_WARNING = "Estimated shape parameter of Pareto distribution is greater than"


def _loo(post):
    """PSIS-LOO (``arviz_stats.loo``, an ``ELPDData``: ``elpd``, ``se``, ``p``, ``pareto_k``, ``good_k``)
    over every observed site, and the number of runs whose Pareto k exceeds ``good_k``.

    ``se`` is ``sqrt(n var(elpd_i))`` with the sample variance (ddof=1) since ArviZ 1.x (0.23 used
    ddof=0): ``sqrt(n / (n - 1))`` times the figure of earlier releases.
    """
    import arviz_stats as azs
    import xarray as xr

    ll = _loglik(post)
    tree = xr.DataTree.from_dict({"posterior": post.idata["posterior"].to_dataset(),
                                  "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), ll)})})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PARETO_K_WARNING, category=UserWarning)
        res = azs.loo(tree, pointwise=True, var_name="y")
    bad = int((np.asarray(res.pareto_k) > float(res.good_k)).sum())
    return res, bad


def _holdout(sweep, joint: bool, quantile: float, accounting: str):
    """Mask over ``sweep.df`` of the held-out (most expensive) runs and the compute threshold."""
    df = sweep.df
    use = np.ones(len(df), bool) if joint else (df["kind"] == "supervised").to_numpy()
    C = np.asarray(supervised_flops(df["N"].to_numpy(float), df["D"].to_numpy(float), accounting))
    thr = float(np.quantile(C[use], quantile))
    return use & (C > thr), thr


def _extrapolation(sweep, v, test, train, inputs_kw):
    """Log predictive density of the held-out runs from ``train``, the refit on the others (sum, se)."""
    from numpyro.infer.util import log_likelihood

    full = _inputs(sweep, v, inputs_kw)
    args = (*full.args[:-1], {k: jnp.asarray(x, dtype=jnp.float32) for k, x in train.centre.items()})
    sites = Target(full.model, args, full.kwargs).sites
    post = train.idata.posterior
    samples = {k: jnp.asarray(post[k].values.reshape(-1, *post[k].shape[2:])) for k in sites}
    ll = log_likelihood(full.model, samples, *args, parallel=True, **full.kwargs)
    df = sweep.df
    masks = {"log_loss": test[(df["kind"] == "supervised").to_numpy()],
             "log_loss_student": test[(df["kind"] == "distillation").to_numpy()]}
    pts = np.concatenate([np.asarray(ll[k], np.float64)[:, masks[k]] for k in ll if k in masks], axis=1)
    lpd = logsumexp(pts, axis=0) - math.log(pts.shape[0])
    return float(lpd.sum()), float(math.sqrt(len(lpd)) * lpd.std(ddof=1)) if len(lpd) > 1 else math.nan


class _Clock:
    """Seconds spent on each stage, in the order they ran."""

    def __init__(self):
        self.times, self.t = {}, time.perf_counter()

    def __call__(self, stage):
        now = time.perf_counter()
        self.times[stage], self.t = now - self.t, now


def _start(target, draws, bridge):
    """Start of the mode search: the posterior mean, folded over mirror-symmetric coordinates."""
    u = target.unconstrain(draws).reshape(-1, target.dim)
    sym = bridge.info["symmetric"]
    u[:, sym] = np.abs(u[:, sym])
    return u.mean(0)


def _smc(target, lap, label, **kw):
    """SMC from the Laplace reference; from the prior (slow, warned) when the Hessian is not positive definite."""
    if "cov" in lap.info:
        return smc_evidence(target, laplace=lap, **kw)
    warnings.warn(f"{label}: no positive-definite Hessian at the posterior mode, so tempered SMC starts from "
                  "the prior (less accurate at these settings)", EvidenceWarning, stacklevel=3)
    return smc_evidence(target, reference="prior", mcmc_steps=10, target_ess=0.7, **kw)


def _warn_disagreement(label, a, b):
    diff = abs(a.log_z - b.log_z)
    tol = AGREE_Z * math.hypot(a.se, b.se)
    if diff > max(tol, AGREE_NATS):
        warnings.warn(f"{label}: the evidence estimators disagree: {a.method} log Z = {a.log_z:.3f} +- "
                      f"{a.se:.3f}, {b.method} log Z = {b.log_z:.3f} +- {b.se:.3f} (difference {diff:.3f} "
                      "nats); the posterior may be poorly explored: raise draws and SMC particles, check "
                      "the fit's review", EvidenceWarning, stacklevel=3)


def compare(sweep, laws=("chinchilla", "busbridge"), *, noise: str = "student_t", priors: dict | None = None,
            chains: int = 4, draws: int = 1000, warmup: int = 1000, seed: int = 0,
            target_accept: float | None = None, smc: bool = True, smc_particles: int = 500,
            smc_seeds: int = 4, prior_sensitivity: bool = True, widen: float = 2.0,
            extrapolation: bool = True, holdout_quantile: float = 0.75, accounting: str = "6ND",
            teacher: str = "measured", teacher_noise: float = 0.0, discrepancy: str = "distance",
            progress_bar: bool = False, chain_method: str = "auto", groups: str | None = None,
            pool="exponents", retry: bool = True, keep_fits: bool = False) -> pd.DataFrame | LawComparison:
    """Compare law variants on one sweep by evidence, PSIS-LOO, stacking and extrapolation.

    Parameters
    ----------
    sweep : path, DataFrame or Sweep
    laws : sequence
        Each item a law name or :class:`Law`, ``"name:noise"`` (``"chinchilla:normal"``), a
        ``(law, noise)`` tuple, or a dict with keys ``law`` and optionally ``noise``, ``priors``,
        ``label``. All supervised, or all distillation laws.
    noise, priors : default noise model and custom priors of every variant (see :func:`bayesdistill.fit`).
    chains, draws, warmup, seed, target_accept, progress_bar, teacher, teacher_noise, discrepancy, chain_method, retry
        Passed to :func:`bayesdistill.fit` (the bridge estimate uses the draws: at least 20 per chain).
    smc : bool
        Also estimate log Z by tempered SMC (``smc_particles`` particles, ``smc_seeds`` runs) and
        warn (:class:`EvidenceWarning`) where it disagrees with bridge sampling.
    prior_sensitivity, widen : bool, float
        Report log Z with every prior ``widen`` times wider (``log_z_wide``).
    extrapolation, holdout_quantile, accounting
        Refit on the runs whose compute (``"6ND"`` or ``"paper"``: 3 F(N) D) is at most the
        ``holdout_quantile`` quantile and score the rest (``extrap_lpd``). Not available for
        distillation laws with ``teacher_noise > 0`` (NaN).
    groups, pool
        Compare grouped fits (:mod:`bayesdistill.inference.pooling`) of the sweep's groups in column
        ``groups``: every variant is a grouped fit with ``pool`` (or its own ``"pool"`` key), so
        ``laws=[{"law": "chinchilla", "pool": "exponents"}, {"law": "chinchilla", "pool": "none"}]``
        asks whether pooling the exponents is supported by the data against separate coefficients
        per group (``pool="none"``: same runs, same shared noise; the densities are comparable).
        Default labels ``law/pool=...``.
    keep_fits : bool
        Also return what the table was computed from (the fitted posteriors, the refits without the
        held-out runs, the pointwise LOO): a :class:`LawComparison` instead of the bare table, e.g.
        for ``bd.average(result.fits)`` or the plots of :mod:`bayesdistill.plots.comparison`.

    Returns
    -------
    pandas.DataFrame or LawComparison
        Indexed by variant label (the law name, or ``name:noise`` when a law appears twice) with the
        columns of :data:`COLUMNS` (see the module docstring); ``attrs`` records the settings. With
        ``keep_fits=True``, a :class:`LawComparison` holding that table as ``.table``.
    """
    sweep = read_sweep(sweep)
    variants = _variants(laws, noise, priors, discrepancy, groups, pool)
    joint = isinstance(variants[0]["law"], DistillationLaw)
    if not 0 < holdout_quantile < 1:
        raise LawError(f"holdout_quantile must be in (0, 1), got {holdout_quantile!r}")
    if not widen > 1:
        raise LawError(f"widen must be above 1, got {widen!r}")
    inputs_kw = {"teacher": teacher, "teacher_noise": teacher_noise, "discrepancy": discrepancy}
    for v in variants:  # every data and prior check before the first (slow) fit
        v["inputs"] = _inputs(sweep, v, inputs_kw)
        if prior_sensitivity:
            v["wide"] = {k: p.widened(widen) for k, p in v["priors"].items()}
            check_proper_priors(v["wide"], f"law {v['law'].name!r} (widened)")
    test, thr = _holdout(sweep, joint, holdout_quantile, accounting) if extrapolation else (None, math.nan)
    do_extrap = extrapolation and bool(test.any()) and not (joint and teacher_noise > 0)
    for v in variants if do_extrap else ():
        try:
            _inputs(sweep.subset(~test), v, inputs_kw)
        except BayesDistillError as exc:
            raise type(exc)(f"extrapolation refit without the {int(test.sum())} most expensive runs: {exc} "
                            "(pass extrapolation=False or a higher holdout_quantile)") from None
    fit_kw = {"chains": chains, "draws": draws, "warmup": warmup, "seed": seed, "target_accept": target_accept,
              "progress_bar": progress_bar, "chain_method": chain_method, "retry": retry, **inputs_kw}
    rows, loos, timings, fits, refits = {}, {}, {}, {}, {}
    for i, v in enumerate(variants):
        clock = _Clock()
        if do_extrap:  # the fit and the refit without the held-out runs in one call (one sampler per bucket)
            grouped = {} if v["groups"] is None else {"groups": v["groups"], "pool": v["pool"]}
            post, train = fit_many([sweep, sweep.subset(~test)], v["law"], priors=v["priors"], noise=v["noise"],
                                   **grouped, **fit_kw)
        else:
            post = _fit(sweep, v, fit_kw)
        clock("fit")
        if keep_fits:
            fits[v["label"]] = post
            if do_extrap:
                refits[v["label"]] = train
        mi = v["inputs"]
        target = Target(mi.model, mi.args, mi.kwargs)
        draws_ = post.idata.posterior
        br = bridge_sampling(target, draws_, seed=seed + i)
        clock("bridge")
        lap = laplace_evidence(target, init=_start(target, draws_, br))
        clock("laplace")
        r = {"log_z": br.log_z, "log_z_se": br.se, "log_z_laplace": lap.log_z}
        r["log_z_smc"] = r["log_z_smc_se"] = math.nan
        if smc:
            sm = _smc(target, lap, v["label"], particles=smc_particles, seeds=smc_seeds, seed=seed + i)
            r["log_z_smc"], r["log_z_smc_se"] = sm.log_z, sm.se
            _warn_disagreement(v["label"], br, sm)
            clock("smc")
        r["log_z_wide"] = r["log_z_wide_se"] = math.nan
        if prior_sensitivity:
            wm = _inputs(sweep, v, inputs_kw, v["wide"])
            shift, se = wide_prior_shift(target, Target(wm.model, wm.args, wm.kwargs), draws_)
            r["log_z_wide"], r["log_z_wide_se"] = br.log_z + shift, math.hypot(br.se, se)
            clock("prior_sensitivity")
        loos[v["label"]], r["pareto_k_bad"] = _loo(post)
        r["elpd_loo"], r["elpd_loo_se"] = float(loos[v["label"]].elpd), float(loos[v["label"]].se)
        clock("loo")
        r["extrap_lpd"] = r["extrap_lpd_se"] = math.nan
        if do_extrap:
            r["extrap_lpd"], r["extrap_lpd_se"] = _extrapolation(sweep, v, test, train, inputs_kw)
            clock("extrapolation")
        r["seconds"] = sum(clock.times.values())
        rows[v["label"]], timings[v["label"]] = r, clock.times
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "law"
    lz = out["log_z"].to_numpy(float)
    out["log_bf"] = lz - lz.max()
    out["p_model"] = np.exp(lz - logsumexp(lz))
    out["weight"] = _stacking(loos).reindex(out.index).to_numpy(float)
    out["pareto_k_bad"] = out["pareto_k_bad"].astype(int)
    out = out[COLUMNS]
    out.attrs = {"observed": "log loss (densities are of log losses)", "source": sweep.source,
                 "runs": int(len(sweep.df) if joint else len(sweep.supervised)),
                 "noise": {v["label"]: v["noise"] for v in variants},
                 "holdout": {"quantile": holdout_quantile, "accounting": accounting, "compute_threshold": thr,
                             "held_out_runs": int(test.sum()) if do_extrap else 0},
                 "seconds": timings,
                 "settings": {"chains": chains, "draws": draws, "warmup": warmup, "seed": seed, "smc": smc,
                              "discrepancy": discrepancy,
                              "smc_particles": smc_particles, "smc_seeds": smc_seeds, "widen": widen}}
    if keep_fits:
        return LawComparison(out, fits, refits, loos, test if do_extrap else np.zeros(len(sweep.df), bool), sweep)
    return out


@dataclass(frozen=True)
class LawComparison:
    """What ``bd.compare(..., keep_fits=True)`` returns: the table and what it was computed from.

    Attributes
    ----------
    table : pandas.DataFrame
        The comparison table (what ``bd.compare`` returns without ``keep_fits``).
    fits : dict of str to Posterior
        Each variant's fit to the whole sweep, by label (in the table's order).
    refits : dict of str to Posterior
        Each variant's refit without the held-out runs (empty without the extrapolation check).
    loo : dict of str to arviz_stats ELPDData
        Each variant's PSIS-LOO with pointwise values (``loo[label].elpd_i``, ``.pareto_k``), over
        the runs of the fit in the order of ``fits[label].data``.

    ``bd.average(result.fits)`` averages the variants' posteriors (supervised, ungrouped variants).
    held_out : numpy.ndarray of bool
        Which rows of ``sweep.df`` the extrapolation check held out (all False without it).
    sweep : Sweep
        The sweep compared on.
    """

    table: pd.DataFrame
    fits: dict
    refits: dict
    loo: dict
    held_out: np.ndarray
    sweep: object

    def __repr__(self) -> str:
        return (f"LawComparison({list(self.fits)}; {len(self.refits)} refits without the "
                f"{int(self.held_out.sum())} held-out runs)")


def _stacking(loos) -> pd.Series:
    import arviz_stats as azs

    if len(loos) == 1:
        return pd.Series({k: 1.0 for k in loos})
    return azs.compare(loos, method="stacking", round_to="none")["weight"]


def log_evidence(post, sweep, *, smc: bool = False, seed: int = 0) -> dict:
    """log Z of a fitted posterior on the sweep it was fitted to (bridge sampling, optionally SMC).

    Returns a dict with ``log_z``, ``log_z_se``, ``log_z_laplace`` and, with
    ``smc=True``, ``log_z_smc``, ``log_z_smc_se`` (warns when they disagree).
    """
    check_proper_priors(post.priors, f"law {post.law.name!r}")
    cfg = post.config
    mi = model_inputs(sweep, post.law, post.priors, post.noise, teacher=cfg.get("teacher", "measured"),
                      teacher_noise=cfg.get("teacher_noise", 0.0), discrepancy=cfg.get("discrepancy", "none"))
    if not set(mi.centre) <= set(post.centre) or any(abs(mi.centre[k] - post.centre[k]) > 1e-4 for k in mi.centre):
        raise LawError("this posterior was not fitted to this sweep (its centring differs); pass the same sweep")
    target = Target(mi.model, mi.args, mi.kwargs)
    br = bridge_sampling(target, post.idata.posterior, seed=seed)
    lap = laplace_evidence(target, init=_start(target, post.idata.posterior, br))
    out = {"log_z": br.log_z, "log_z_se": br.se, "log_z_laplace": lap.log_z}
    if smc:
        sm = _smc(target, lap, post.law.name, seed=seed)
        out.update(log_z_smc=sm.log_z, log_z_smc_se=sm.se)
        _warn_disagreement(post.law.name, br, sm)
    return out
