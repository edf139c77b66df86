"""Fit a law to a sweep with NUTS and review the fit."""

from __future__ import annotations

import sys
import time

import arviz_base as azb
import jax
import numpy as np
import xarray as xr

from ..data.sweep import read_sweep
from ..errors import BayesDistillError
from ..laws.base import get_law
from ..laws.distillation import DistillationLaw
from ..runtime import enable_compilation_cache
from .engine import Draws, Job, Settings, compile_ahead, fingerprint, laplace, run, sampler_group
from .inputs import ModelInputs, Prepared, job_of, model_inputs
from .kappa import (
    inner_draws,
    inner_job,
    kappa_from_inner,
    kappa_from_prior,
    kappa_plan,
    log10_c_max,
    reliable,
)
from .posterior import Posterior
from .review import warn_if_failed

CHAIN_METHODS = ("auto", "vectorized", "sequential", "parallel")
#: a fit that fails its review is sampled once more with this target acceptance (at least) and
#: ``RETRY_WARMUP_FACTOR`` times its warmup: the remedies the review names (``retry=True``)
RETRY_TARGET_ACCEPT = 0.99
RETRY_WARMUP_FACTOR = 2


def resolve_chain_method(chain_method: str, chains: int) -> tuple[int, bool, str]:
    """``(devices, vectorize, label)``: how the ``chains`` chains of a sampler call run.

    ``chains`` counts every chain of the call (sweeps x chains for :func:`fit_many`). They are
    split over ``devices`` JAX devices and, within each, vectorised (``vectorize``) or run one
    after another. ``"vectorized"``: one device, vectorised; ``"sequential"``: one device, one
    chain after another; ``"parallel"``: the largest number of devices that divides the chains,
    one chain after another within each. ``"auto"``: ``"parallel"`` on the CPU backend with several
    host devices (see :func:`bayesdistill.runtime.use_cpu_cores`), else ``"vectorized"`` (a GPU).

    Measured on 2 CPU cores, the Chinchilla points, 4 x (1,000 + 1,000) (compile / run seconds):
    vectorized 8.6 / 0.45, sequential 4.8 / 0.53, 2 devices x sequential 5.8 / 0.31, 2 devices x
    vectorized 8.4 / 0.31. Vectorised chains compile ~2x slower on a CPU (every while loop of NUTS
    becomes a masked loop over all chains) and wait for the longest trajectory of the step.
    """
    def split():
        return max(d for d in range(1, min(jax.local_device_count(), chains) + 1) if chains % d == 0)

    if chain_method == "sequential":
        return 1, False, "sequential"
    if chain_method == "parallel" or (chain_method == "auto" and jax.default_backend() == "cpu" and chains > 1):
        n = split()
        if n > 1:
            where = "CPU devices" if jax.default_backend() == "cpu" else "devices"
            return n, False, f"{n} {where} x {chains // n} sequential chains"
        if chain_method == "auto":
            return 1, False, "sequential"
    return 1, True, "vectorized"


def _check_settings(chains, draws, warmup, seed, target_accept, chain_method="auto", priors=None):
    """Sampler settings as plain Python values; a clear error for anything else."""
    out = {}
    for name, v, lo in (("chains", chains, 1), ("draws", draws, 1), ("warmup", warmup, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise BayesDistillError(f"{name} must be an integer >= {lo}, got {v!r}")
        out[name] = int(v)
    _check_seed_priors(seed, None)
    out["seed"] = int(seed)
    if isinstance(target_accept, bool) or not isinstance(target_accept, (int, float, np.floating)) \
            or not 0 < target_accept < 1:
        raise BayesDistillError(f"target_accept must be in (0, 1), got {target_accept!r}")
    out["target_accept"] = float(target_accept)
    if chain_method not in CHAIN_METHODS:
        raise BayesDistillError(f"chain_method must be one of {list(CHAIN_METHODS)}, got {chain_method!r}")
    _check_seed_priors(seed, priors)
    return out


def _check_seed_priors(seed, priors) -> None:
    """A clear error unless ``seed`` is an integer in [0, 2**32) and ``priors`` None or a dict."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise BayesDistillError(f"seed must be a non-negative integer below 2**32, got {seed!r}")
    if priors is not None and not isinstance(priors, dict):
        raise BayesDistillError("priors must be a dict of parameter name -> prior, e.g. "
                                f"{{'E': ('lognormal', 0.4, 0.6)}}; got a {type(priors).__name__}")


def fit(
    sweep,
    law="chinchilla",
    *,
    priors: dict | None = None,
    noise: str = "student_t",
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed: int = 0,
    target_accept: float | None = None,
    dense_mass: bool = True,
    chain_method: str = "auto",
    progress_bar: bool = True,
    review: bool = True,
    teacher: str = "measured",
    teacher_noise: float = 0.0,
    discrepancy: str = "compute",
    groups: str | None = None,
    pool="exponents",
    retry: bool = True,
) -> Posterior:
    """Fit a scaling law to a sweep with NUTS.

    Parameters
    ----------
    sweep : path, DataFrame or Sweep
        Training runs (see :func:`bayesdistill.read_sweep`).
    law : str or Law
        ``"chinchilla"``, ``"busbridge"`` or any registered :class:`Law`.
    priors : dict, optional
        Custom priors by parameter name, e.g. ``{"E": ("lognormal", 0.5, 0.3)}``.
    noise : {"student_t", "normal"}
        Distribution of log-loss scatter around the law.
    chains, draws, warmup, seed : int
        NUTS settings; the same inputs and seed give identical draws.
    target_accept : float, optional
        NUTS target acceptance probability (raise it if divergences appear).
        Default 0.9 for supervised laws and 0.99 for distillation laws, whose
        broken power law and weakly identified data term need small steps, and
        for grouped fits (their between-group spreads; 0.9 and 0.95 left 9 and 3
        divergences per 4,000 draws on a synthetic three-group sweep, 0.99 none).
    dense_mass : bool
        Adapt a dense mass matrix (cheap for these few parameters), on top of the whitening by the
        curvature at the posterior mode (:mod:`bayesdistill.inference.laplace`).
    chain_method : {"auto", "vectorized", "sequential", "parallel"}
        How chains run. ``"auto"`` (default): split over CPU cores where JAX
        has several host devices, one chain after another on each; vectorised
        on a GPU (see :func:`resolve_chain_method`). Draws depend on the
        method (and so, under ``"auto"``, on the number of cores): the same
        seed and method give identical draws.
    progress_bar : bool
        Print a line on standard error when sampling ends (its time, and whether the sampler was
        compiled for this fit).
    review : bool
        Warn (:class:`FitWarning`) when a convergence check fails.
    teacher : {"measured", "law"}
        Distillation laws only: use the measured teacher loss ``L_T`` where
        given (the law's L(N_T, D_T) elsewhere), or always the law's
        L(N_T, D_T), so that its uncertainty propagates.
    teacher_noise : float
        Distillation laws only: standard deviation of a measured ``log L_T``
        around the teacher's true log loss (0 plugs the measurement in).
    discrepancy : {"compute", "distance", "none"}
        ``"distance"``: the noise scale of a run grows with its distance ``d``
        from the centre of the fitted runs (standardised log N, log D),
        ``sqrt(sigma^2 + (tau d)^2)``, so predictions widen away from the
        data; ``tau`` is learnt (prior ``tau``, and ``tau_distill`` for the
        student runs of a distillation law). ``"compute"`` (default): the
        same fit, and predictions ``e`` decades of compute beyond the largest
        fitted run get a further misfit of variance ``(kappa e)^2 + omega^2 e``
        (a drift and a random walk in log C, :mod:`bayesdistill.inference.misfit`):
        ``kappa`` and ``omega`` have a prior learnt across public sweeps,
        updated by leave-last-level-out inside the fitted runs (an inner
        posterior by Laplace + importance sampling, NUTS where that is
        unreliable; see :mod:`bayesdistill.inference.kappa`); for a distillation law it is
        ``"distance"``. ``"none"``: one constant noise scale, which is
        overconfident when extrapolating (see ``benchmarks/bench_isoflop.py``).
    groups : str, optional
        A column of the sweep (e.g. ``"dataset"``): one joint, hierarchical posterior over its groups
        (supervised laws; with ``"compute"`` one ``kappa`` and ``omega`` shared by the groups); ``post.group(name)`` is each
        group's ordinary Posterior. ``law`` may then map group -> law (all the same law).
        See :mod:`bayesdistill.inference.pooling`.
    pool : {"exponents", "all", "none"} or list of str
        With ``groups``: the coefficients drawn around a population value (half-normal prior on
        their between-group sd, site ``{name}_sd``); the others are free per group.
    retry : bool
        When the fit fails its review (divergences, R-hat, ESS, BFMI), sample it once more with
        ``target_accept`` raised to ``RETRY_TARGET_ACCEPT`` (0.99) and ``RETRY_WARMUP_FACTOR`` (2)
        times the warmup, from the same mode and curvature, and keep that second fit (reviewed and
        warned about like the first). ``config["retry"]`` records the first attempt's settings and
        failed checks; ``config["target_accept"]`` and ``config["warmup"]`` are those of the draws
        kept. The second attempt costs a sampler of its own (compiled once per process). Measured on
        the real sweeps by ``benchmarks/bench_reviews.py``: see the status page of the docs.

    Returns
    -------
    Posterior
    """
    _check_settings(chains, draws, warmup, seed, 0.9 if target_accept is None else target_accept, chain_method,
                    priors)
    return fit_prepared([prepare(sweep, law, priors=priors, noise=noise, seed=seed, teacher=teacher,
                                 teacher_noise=teacher_noise, discrepancy=discrepancy, groups=groups, pool=pool)],
                        chains=chains, draws=draws, warmup=warmup, target_accept=target_accept,
                        dense_mass=dense_mass, chain_method=chain_method, progress_bar=progress_bar,
                        review=review, retry=retry)[0]


def prepare(sweep, law="chinchilla", *, priors=None, noise="student_t", seed=0, teacher="measured",
            teacher_noise=0.0, discrepancy="compute", groups=None, pool="exponents") -> Prepared:
    """Read and check ``sweep`` and build the model :func:`fit` samples (every input check, no sampling)."""
    sweep = read_sweep(sweep)
    if groups is not None:
        from .pooling import group_law

        law = group_law(law, sweep, groups)
    law = get_law(law)
    _check_seed_priors(seed, priors)
    if groups is None:
        mi = model_inputs(sweep, law, priors, noise, teacher, teacher_noise, discrepancy)
    else:
        mi = _pooled_inputs(sweep, law, groups, pool, priors, noise, discrepancy)
    options = {"teacher": teacher, "teacher_noise": teacher_noise, "discrepancy": discrepancy}
    if groups is not None:
        from .pooling import pool_config

        options["groups"] = pool_config(mi, law, groups, pool)
    return Prepared(sweep, law, mi, int(seed), options)


def _pooled_inputs(sweep, law, groups, pool, priors, noise, discrepancy) -> ModelInputs:
    """The grouped model's inputs (:mod:`bayesdistill.inference.pooling`) with its sampler key."""
    from .pooling import pooled_inputs, resolve_pool

    mi = pooled_inputs(sweep, law, groups, pool, priors, noise, discrepancy)
    n_groups = int(np.max(np.asarray(mi.args[2]))) + 1
    key = fingerprint("pooled", type(law).__module__, type(law).__qualname__, law.spec(),
                      {k: v.to_dict() for k, v in mi.priors.items()}, noise, discrepancy, n_groups,
                      list(resolve_pool(law, pool)))
    return mi._replace(model_noise=noise, fingerprint=key, sizes={"log_loss": int(np.shape(mi.kwargs["log_loss"])[0])})


def fit_prepared(preps: list[Prepared], *, chains=4, draws=1000, warmup=1000, target_accept=None,
                 dense_mass=True, chain_method="auto", progress_bar=True, review=True,
                 retry=True) -> list[Posterior]:
    """Sample every prepared sweep (one law each) into Posteriors; sweeps sharing a sampler in one call.

    With ``retry``, the sweeps whose fit fails its review are sampled once more with stronger
    settings (:func:`fit`'s ``retry``), in one call per sampler they share.

    :func:`bayesdistill.fit_many` cuts its sweeps into batches and calls this once per batch.
    """
    if not preps:
        return []
    joint = isinstance(preps[0].law, DistillationLaw)
    if target_accept is None:  # grouped fits: their between-group spreads need small steps too
        target_accept = 0.99 if joint or any("groups" in p.options for p in preps) else 0.9
    cfg = _check_settings(chains, draws, warmup, 0, target_accept, chain_method)
    chains, draws, warmup, target_accept = (cfg[k] for k in ("chains", "draws", "warmup", "target_accept"))
    enable_compilation_cache()
    jobs = [job_of(p) for p in preps]

    def settings_for(group, warmup=warmup, target_accept=target_accept):
        devices, vectorize, label = resolve_chain_method(chain_method, chains * len(group))
        return Settings(chains, draws, warmup, target_accept, bool(dense_mass), devices, vectorize), label

    # the inner leave-last-level-out fits that learn kappa (one sweep each; grouped fits: pooled_kappa.py)
    plans = {i: kappa_plan(p.sweep.supervised, p.inputs.priors) for i, p in enumerate(preps)
             if _learns_kappa(p) and "groups" not in p.options}
    inner = {i: inner_job(preps[i], plan) for i, plan in plans.items() if not isinstance(plan, str)}
    # the samplers compile on a background thread while the modes are found
    for part in _by_sampler(jobs):
        group = [jobs[i] for i in part]
        compile_ahead(group, settings_for(group)[0], joint=joint)
    # the mode and curvature of every fit and inner fit, one program call per sampler they share
    modes = _laplace_all(jobs + list(inner.values()), joint)
    results, labels = _run_all(jobs, settings_for, joint, progress_bar, "sampling", modes[:len(jobs)])
    kappas = {}
    for i, p in enumerate(preps):
        if _learns_kappa(p) and "groups" in p.options:
            kappas[i] = _group_kappa(p, settings_for, chains * draws)
    posts = _inner_posteriors(list(inner.values()), modes[len(jobs):], settings_for, joint, progress_bar)
    for (i, job), (draws_i, w, how) in zip(inner.items(), posts):
        kappas[i] = kappa_from_inner(preps[i], job, draws_i, w, chains * draws, how)
    for i, plan in plans.items():
        if i not in kappas:
            kappas[i] = kappa_from_prior(preps[i].inputs.priors, preps[i].seed, plan, chains * draws)

    def posterior(i, d, label, warmup, target_accept, extra=0.0):
        p = preps[i]
        config = {"chains": chains, "draws": draws, "warmup": warmup, "seed": p.seed, "target_accept": target_accept,
                  "dense_mass": bool(dense_mass), "seconds": d.seconds + modes[i].seconds + extra,
                  "compiled": d.compiled or modes[i].compiled, "source": p.sweep.source, **p.options,
                  "chain_method": label, "laplace": modes[i].info()}
        return _posterior(p, d, config, kappas.get(i))

    out = [posterior(i, d, labels[i], warmup, target_accept) for i, d in enumerate(results)]
    failed = [i for i, post in enumerate(out) if not post.review().ok] if retry else []
    if failed:  # the review's remedies: smaller steps, longer adaptation; same mode, curvature and seed
        strong = {"warmup": RETRY_WARMUP_FACTOR * max(warmup, 1), "target_accept": max(target_accept, RETRY_TARGET_ACCEPT)}
        again, labels2 = _run_all([jobs[i] for i in failed], lambda g: settings_for(g, **strong), joint, progress_bar,
                                  "refit after a failed review", [modes[i] for i in failed])
        for i, d, label in zip(failed, again, labels2):
            first = out[i]
            out[i] = posterior(i, d, label, extra=results[i].seconds, **strong)  # both attempts' sampling
            out[i].config["retry"] = {
                "warmup": warmup, "target_accept": target_accept, "seconds": first.config["seconds"],
                "failed": [c.name for c in first.review().failed], "mean_leapfrog_steps": first.review().steps}
    if review:
        for post in out:
            warn_if_failed(post.review(), stacklevel=4, retried=post.config.get("retry"))
    return out


def _by_sampler(jobs) -> list[list[int]]:
    """The indices of ``jobs`` grouped by the sampler they share (:func:`~.engine.sampler_group`), in order."""
    groups: dict = {}
    for i, j in enumerate(jobs):
        groups.setdefault(sampler_group(j.fingerprint, j.sizes), []).append(i)
    return list(groups.values())


def _laplace_all(jobs, joint) -> list:
    """The :class:`~bayesdistill.inference.laplace.Laplace` step of every job, one call per sampler they share."""
    out = [None] * len(jobs)
    for part in _by_sampler(jobs):
        for i, lap in zip(part, laplace([jobs[i] for i in part], joint=joint)):
            out[i] = lap
    return out


def _inner_posteriors(jobs, laps, settings_for, joint, progress_bar) -> list:
    """``(draws, weights, how)`` of each inner leave-last-level-out posterior, from its Laplace step.

    Laplace + importance sampling where the Pareto k allows (:func:`.kappa.reliable`); the others
    are sampled with NUTS, started and whitened by their Laplace step, in one call per sampler.
    """
    out, redo = [None] * len(jobs), []
    for n, lap in enumerate(laps):
        t0 = time.perf_counter()
        draws, w, k = inner_draws(lap)
        if reliable(k):
            out[n] = draws, w, {"inner": "laplace", "pareto_k": k,
                                "inner_seconds": time.perf_counter() - t0 + lap.seconds}
        else:
            redo.append((n, k))
    if redo:  # the Laplace approximation of an inner posterior is poor: sample it with NUTS
        done, _ = _run_all([jobs[n] for n, _ in redo], settings_for, joint, progress_bar, "leave-last-level-out",
                           [laps[n] for n, _ in redo])
        for (n, k), d in zip(redo, done):
            out[n] = d.flat_samples(), None, {"inner": "nuts", "pareto_k": k, "inner_seconds": d.seconds}
    return out


def _run_all(jobs, settings_for, joint, progress_bar, what, modes=None):
    """Run ``jobs``, one program call per sampler they share (order kept); ``(draws, labels)``.

    ``modes``: the jobs' Laplace steps (computed per call where not given)."""
    out, labels = [None] * len(jobs), [None] * len(jobs)
    done = 0
    for part in _by_sampler(jobs):
        settings, label = settings_for([jobs[i] for i in part])
        t0 = time.perf_counter()
        for i, d in zip(part, run([jobs[i] for i in part], settings, joint=joint,
                                  modes=None if modes is None else [modes[i] for i in part])):
            out[i], labels[i] = d, label
        done += len(part)
        if progress_bar:
            print(f"bayesdistill: {what} {done}/{len(jobs)} sweep(s), {settings.chains} chains x "
                  f"({settings.warmup} warmup + {settings.draws} draws), {time.perf_counter() - t0:.1f} s"
                  f"{' incl. compilation' if out[part[0]].compiled else ''}", file=sys.stderr, flush=True)
    return out, labels


def _group_kappa(p: Prepared, settings_for, n_draws: int):
    """``kappa`` of a grouped fit: its inner posterior by Laplace + importance sampling (NUTS where unreliable)."""
    from .pooled_kappa import learn_group_kappa

    mi = p.inputs

    def run_inner(args, kwargs):
        obs = {k: v for k, v in kwargs.items() if k != "mask"}
        job = Job(mi.fingerprint, mi.model, args, obs, mi.sizes, p.seed, {"log_loss": np.asarray(kwargs["mask"])},
                  mi.gap)
        return _inner_posteriors([job], laplace([job], joint=False), settings_for, False, False)[0]

    return learn_group_kappa(p.sweep.supervised, p.law, mi.priors, mi.model_noise, mi.args, mi.kwargs, run_inner,
                             p.seed, n_draws)


def _learns_kappa(p: Prepared) -> bool:
    return p.options["discrepancy"] == "compute" and not isinstance(p.law, DistillationLaw)


def _posterior(p: Prepared, d: Draws, config: dict, kappa) -> Posterior:
    """The :class:`Posterior` of one sweep from its draws."""
    mi = p.inputs
    dims = {**mi.dims, **{k: [v.dims] for k, v in mi.constant.items()}}
    coords = {v.dims: np.arange(len(v.values)) for v in mi.constant.values()}
    observed = {k: np.asarray(mi.kwargs[k]) for k in mi.sizes}
    groups = {"posterior": d.samples, "sample_stats": d.stats, "log_likelihood": d.log_likelihood,
              "observed_data": observed, "constant_data": {k: v.values for k, v in mi.constant.items()}}
    idata = azb.from_dict({k: v for k, v in groups.items() if v}, coords=coords, dims=dims)
    centre = {**mi.centre, "log10_c_max": log10_c_max(p.sweep.supervised)}
    if kappa is not None:  # the misfit beyond the fitted compute (kappa, omega), learnt outside the sampler
        draws, config["kappa"] = kappa
        for site, v in draws.items():
            idata["posterior"][site] = xr.Variable(("chain", "draw"), v.reshape(config["chains"], config["draws"]))
    return Posterior(idata, p.law, mi.priors, mi.model_noise, centre, config)


