"""Fit a law to a sweep with NUTS and review the fit."""

from __future__ import annotations

import sys
import time
from typing import NamedTuple

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..data.sweep import read_sweep
from ..errors import BayesDistillError, SweepError
from ..laws.base import get_law
from ..laws.distillation import DistillationLaw
from ..runtime import enable_compilation_cache
from .engine import Draws, Job, Settings, fingerprint, run, sampler_group
from .inputs import ModelInputs
from .model import distance_geometry, log10_6nd, make_joint_model, make_model, resolve_priors
from .posterior import Posterior
from .review import warn_if_failed

CHAIN_METHODS = ("auto", "vectorized", "sequential", "parallel")

#: ``"auto"`` splits chains over CPU devices only when runs x (warmup + draws) reaches this: compiling
#: for several devices costs ~4 s more, which small fits (the test suite's) never win back
PARALLEL_MIN_WORK = 200_000
#: draws of the inner fit that the likelihood of ``kappa`` averages over (at most)
KAPPA_DRAWS = 1000


def resolve_chain_method(chain_method: str, chains: int, work: int = PARALLEL_MIN_WORK) -> tuple[int, bool, str]:
    """``(devices, vectorize, label)``: how the ``chains`` chains of a sampler call run.

    ``chains`` counts every chain of the call (sweeps x chains for :func:`fit_many`). They are
    split over ``devices`` JAX devices and, within each, vectorised (``vectorize``) or run one
    after another. ``"vectorized"``: one device, vectorised; ``"sequential"``: one device, one
    chain after another; ``"parallel"``: the largest number of devices that divides the chains.
    ``"auto"``: on the CPU backend with several host devices (see
    :func:`bayesdistill.runtime.use_cpu_cores`) and ``work`` (runs x iterations) of at least
    ``PARALLEL_MIN_WORK``, as ``"parallel"``, vectorised within each device: on 2 cores the joint
    distillation fit on the replica takes 63 s instead of 106 s. Elsewhere (small fits, one
    device, a GPU) ``"vectorized"``.
    """
    def split():
        return max(d for d in range(1, min(jax.local_device_count(), chains) + 1) if chains % d == 0)

    if chain_method == "sequential":
        return 1, False, "sequential"
    if chain_method == "parallel" or (chain_method == "auto" and jax.default_backend() == "cpu"
                                      and chains > 1 and work >= PARALLEL_MIN_WORK):
        n = split()
        if n > 1:
            return n, True, f"{n} CPU devices x {chains // n} vectorized chains" if jax.default_backend() == "cpu" \
                else f"{n} devices x {chains // n} vectorized chains"
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
        Adapt a dense mass matrix (cheap for these few parameters).
    chain_method : {"auto", "vectorized", "sequential", "parallel"}
        How chains run. ``"auto"`` (default): on separate CPU cores where
        JAX has several host devices, else vectorised (see
        :func:`resolve_chain_method`); ``"parallel"`` needs one device per
        chain. Draws depend on the method (and so, under ``"auto"``, on the
        number of cores): the same seed and method give identical draws.
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
        fitted run get a further ``(kappa e)^2``, ``kappa`` learnt by
        leave-last-level-out inside the fitted runs (a second, inner NUTS
        fit; see :mod:`bayesdistill.model`); for a distillation law it is
        ``"distance"``. ``"none"``: one constant noise scale, which is
        overconfident when extrapolating (see ``benchmarks/bench_isoflop.py``).
    groups : str, optional
        A column of the sweep (e.g. ``"dataset"``): one joint, hierarchical posterior over its groups
        (supervised laws; with ``"compute"`` one ``kappa`` shared by the groups); ``post.group(name)`` is each
        group's ordinary Posterior. ``law`` may then map group -> law (all the same law).
        See :mod:`bayesdistill.inference.pooling`.
    pool : {"exponents", "all", "none"} or list of str
        With ``groups``: the coefficients drawn around a population value (half-normal prior on
        their between-group sd, site ``{name}_sd``); the others are free per group.

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
                        review=review)[0]


class Prepared(NamedTuple):
    """A sweep checked and turned into the sampler's inputs (:func:`prepare`); cheap to pickle."""

    sweep: object
    law: object
    inputs: ModelInputs
    seed: int
    options: dict


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
                 dense_mass=True, chain_method="auto", progress_bar=True, review=True) -> list[Posterior]:
    """Sample every prepared sweep (one law each) into Posteriors; sweeps sharing a sampler in one call.

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
    jobs = [_job(p) for p in preps]

    def settings_for(group):
        runs = max(sum(j.sizes.values()) for j in group)
        devices, vectorize, label = resolve_chain_method(chain_method, chains * len(group),
                                                         len(group) * runs * (warmup + draws))
        return Settings(chains, draws, warmup, target_accept, bool(dense_mass), devices, vectorize), label

    results, labels = _run_all(jobs, settings_for, joint, progress_bar, "sampling")
    kappas = {}
    for i, p in enumerate(preps):  # grouped: one kappa shared by the groups (inference/pooled_kappa.py)
        if _learns_kappa(p) and "groups" in p.options:
            kappas[i] = _group_kappa(p, settings_for, chains * draws)
    inner = {i: _kappa_plan(p.sweep.supervised, p.inputs.priors) for i, p in enumerate(preps)
             if _learns_kappa(p) and "groups" not in p.options}
    todo = {i: _inner_job(preps[i], plan) for i, plan in inner.items() if not isinstance(plan, str)}
    if todo:
        inner_draws, _ = _run_all(list(todo.values()), settings_for, joint, progress_bar, "leave-last-level-out")
        for (i, plan), d in zip(todo.items(), inner_draws):
            kappas[i] = _kappa_from_inner(preps[i], plan, d, chains * draws)
    for i, plan in inner.items():
        if i not in kappas:
            kappas[i] = _kappa_from_prior(preps[i].inputs.priors, preps[i].seed, plan, chains * draws)
    out = []
    for i, (p, d) in enumerate(zip(preps, results)):
        config = {"chains": chains, "draws": draws, "warmup": warmup, "seed": p.seed, "target_accept": target_accept,
                  "dense_mass": bool(dense_mass), "seconds": d.seconds, "compiled": d.compiled,
                  "source": p.sweep.source, **p.options, "chain_method": labels[i]}
        post = _posterior(p, d, config, kappas.get(i))
        if review:
            warn_if_failed(post.review(), stacklevel=4)
        out.append(post)
    return out


def _job(p: Prepared, masks=None, args=None) -> Job:
    mi = p.inputs
    return Job(mi.fingerprint, mi.model, mi.args if args is None else args, mi.kwargs, mi.sizes, p.seed, masks)


def _run_all(jobs, settings_for, joint, progress_bar, what):
    """Run ``jobs``, one program call per sampler they share (order kept); ``(draws, labels)``."""
    groups: dict = {}
    for i, j in enumerate(jobs):
        groups.setdefault(sampler_group(j.fingerprint, j.sizes), []).append(i)
    out, labels = [None] * len(jobs), [None] * len(jobs)
    done = 0
    for part in groups.values():
        settings, label = settings_for([jobs[i] for i in part])
        t0 = time.perf_counter()
        for i, d in zip(part, run([jobs[i] for i in part], settings, joint=joint)):
            out[i], labels[i] = d, label
        done += len(part)
        if progress_bar:
            print(f"bayesdistill: {what} {done}/{len(jobs)} sweep(s), {settings.chains} chains x "
                  f"({settings.warmup} warmup + {settings.draws} draws), {time.perf_counter() - t0:.1f} s"
                  f"{' incl. compilation' if out[part[0]].compiled else ''}", file=sys.stderr, flush=True)
    return out, labels


class _Samples(NamedTuple):
    samples: dict

    def get_samples(self) -> dict:
        return self.samples


def _group_kappa(p: Prepared, settings_for, n_draws: int):
    """``kappa`` of a grouped fit: its inner fits run on the main fit's compiled sampler."""
    from .pooled_kappa import learn_group_kappa

    mi = p.inputs

    def run_nuts(args, kwargs):
        obs = {k: v for k, v in kwargs.items() if k != "mask"}
        job = Job(mi.fingerprint, mi.model, args, obs, mi.sizes, p.seed, {"log_loss": np.asarray(kwargs["mask"])})
        settings, _ = settings_for([job])
        d = run([job], settings, joint=False)[0]
        return _Samples({k: v.reshape(-1, *v.shape[2:]) for k, v in d.samples.items()})

    return learn_group_kappa(p.sweep.supervised, p.law, mi.priors, mi.model_noise, mi.args, mi.kwargs, run_nuts,
                             p.seed, n_draws)


def _learns_kappa(p: Prepared) -> bool:
    return p.options["discrepancy"] == "compute" and not isinstance(p.law, DistillationLaw)


def _posterior(p: Prepared, d: Draws, config: dict, kappa) -> Posterior:
    """The :class:`Posterior` of one sweep from its draws."""
    mi = p.inputs
    dims = {**mi.dims, **{k: [v.dims] for k, v in mi.constant.items()}}
    coords = {v.dims: np.arange(len(v.values)) for v in mi.constant.values()}
    observed = {k: np.asarray(mi.kwargs[k]) for k in mi.sizes}
    idata = az.from_dict(posterior=d.samples, sample_stats=d.stats, log_likelihood=d.log_likelihood,
                         observed_data=observed, constant_data={k: v.values for k, v in mi.constant.items()},
                         coords=coords, dims=dims)
    centre = {**mi.centre, "log10_c_max": _log10_c_max(p.sweep.supervised)}
    if kappa is not None:
        draws, config["kappa"] = kappa
        idata.posterior["kappa"] = (("chain", "draw"), draws.reshape(config["chains"], config["draws"]))
    return Posterior(idata, p.law, mi.priors, mi.model_noise, centre, config)


def model_inputs(sweep, law, priors=None, noise="student_t", teacher="measured",
                 teacher_noise=0.0, discrepancy="compute") -> ModelInputs:
    """The numpyro model of ``law`` and its arguments for ``sweep``, exactly as :func:`fit` builds them.

    ``kwargs`` holds the observed log losses; the evidence estimators
    (:mod:`bayesdistill.inference.evidence`) evaluate the same model.
    """
    sweep, law = read_sweep(sweep), get_law(law)
    pri = resolve_priors(law, noise, priors, discrepancy)
    rows = sweep.supervised
    if isinstance(law, DistillationLaw):
        args, kwargs, constant, dims, centre, model = _joint_inputs(sweep, law, pri, noise, teacher,
                                                                   teacher_noise, discrepancy)
    else:
        if len(rows) == 0:
            raise SweepError(f"law {law.name!r} is a supervised law but the sweep has no supervised runs")
        _check_count(len(rows), pri, law)
        logN, logD, y = (_log32(rows[c]) for c in ("N", "D", "loss"))
        centre = {"N": float(logN.mean()), "D": float(logD.mean()), **distance_geometry(logN, logD)}
        args, kwargs = (logN, logD, _centre_arg(centre)), {"log_loss": y}
        constant, dims = _constants(rows, "run"), {"log_loss": ["run"]}
        model = make_model(law, pri, noise, discrepancy)
    # the joint model is built for the number of distinct teachers (codes 0 .. n-1)
    n_teachers = int(np.max(np.asarray(args[1]["teacher"]))) + 1 if isinstance(law, DistillationLaw) else 0
    # "compute" fits the "distance" model (kappa is learnt outside it): the two share a sampler
    key = fingerprint(type(law).__module__, type(law).__qualname__, law.spec(),
                      {k: v.to_dict() for k, v in pri.items() if k != "kappa"}, noise,
                      "distance" if discrepancy == "compute" else discrepancy, teacher_noise, n_teachers)
    sizes = {k: int(np.shape(kwargs[k])[0]) for k in ("log_loss", "log_loss_student") if k in kwargs}
    return ModelInputs(pri, model, args, kwargs, centre, constant, dims, noise, key, sizes)


class _Const:
    """A constant-data column and its dimension name."""

    def __init__(self, values, dims):
        self.values, self.dims = np.asarray(values), dims


def _log32(col):
    return jnp.log(jnp.asarray(np.asarray(col, dtype=float), dtype=jnp.float32))


def _centre_arg(centre):
    return {k: jnp.float32(v) for k, v in centre.items()}


def _constants(rows, dim, cols=("N", "D")):
    out = {c if dim == "run" else f"{c}_{dim}": _Const(rows[c].to_numpy(float), dim) for c in cols}
    for c in ("run_id", "group"):
        out[c if dim == "run" else f"{c}_{dim}"] = _Const(rows[c].to_numpy(str), dim)
    return out


def _check_count(n, pri, law):
    pri = {k: v for k, v in pri.items() if k != "kappa"}  # kappa is learnt by the inner fit, not from these runs
    if n <= len(pri):
        raise SweepError(
            f"{n} runs cannot pin down law {law.name!r} with {len(pri)} parameters "
            f"({', '.join(pri)}); give more runs than parameters"
        )


def _joint_inputs(sweep, law, pri, noise, teacher, teacher_noise, discrepancy="none"):
    if teacher not in ("measured", "law"):
        raise BayesDistillError(f"teacher must be 'measured' or 'law', got {teacher!r}")
    if not (isinstance(teacher_noise, (int, float)) and 0 <= teacher_noise < 1):
        raise BayesDistillError(f"teacher_noise must be a number in [0, 1), got {teacher_noise!r}")
    sup, dis = sweep.supervised, sweep.distillation
    if len(dis) == 0:
        raise SweepError(f"law {law.name!r} needs distillation runs; the sweep has none "
                         "(give a 'kind' column or teacher columns N_T, D_T, L_T)")
    if len(sup) == 0:
        raise SweepError(f"law {law.name!r} is fitted jointly with the supervised law and needs "
                         "supervised runs too (they identify Ltilde_S and L(N_T, D_T))")
    _check_count(len(sup) + len(dis), pri, law)
    measured = dis["L_T"].notna().to_numpy() & (teacher == "measured")
    need_law = ~measured & dis[["N_T", "D_T"]].isna().any(axis=1).to_numpy()
    if need_law.any():
        i = int(np.flatnonzero(need_law)[0])
        raise SweepError(f"distillation run {dis['run_id'].iloc[i]!r} has no N_T, D_T: with "
                         "teacher='law' every teacher needs its size and tokens")
    teachers = dis[["N_T", "D_T", "L_T"]].astype(str).agg("|".join, axis=1)
    codes, uniq = pd.factorize(teachers)
    fill = lambda c: np.where(dis[c].notna(), dis[c].to_numpy(float), 1.0)  # noqa: E731
    d = {"logN_S": _log32(dis["N"]), "logD_S": _log32(dis["D"]), "logL_T": _log32(fill("L_T")),
         "measured": jnp.asarray(measured), "logN_T": _log32(fill("N_T")), "logD_T": _log32(fill("D_T")),
         "teacher": jnp.asarray(codes)}
    s = {"logN": _log32(sup["N"]), "logD": _log32(sup["D"])}
    # The student's data term B'/D_S^beta' is sheared at the SMALLEST distillation token count, where
    # it is largest: when the runs only bound that term from above (it is ~0.3% of the size term under
    # Table 6), the bound is then on log B'_c alone instead of tying log B' to beta'. On the replica
    # with default priors: 35 divergences per 4,000 draws sheared at the mean; 3 and 15 in two runs
    # sheared at the minimum (the rest sit where beta' is small and the term acts as a constant).
    # The same point is the reference of the default prior on that term (``term_halfnormal``).
    # mean log teacher loss (measured where given, else the supervised runs' mean log loss): c0 log L_T
    # trades with the student's level, so the sampler works on the level less c0 * L_T (law.levels)
    log_lt = np.log(dis.loc[measured, "L_T"].to_numpy(float)) if measured.any() else np.log(sup["loss"].to_numpy(float))
    centre = {"N": float(s["logN"].mean()), "D": float(s["logD"].mean()),
              "N_S": float(d["logN_S"].mean()), "D_S": float(d["logD_S"].min()), "L_T": float(log_lt.mean()),
              **distance_geometry(s["logN"], s["logD"]), **distance_geometry(d["logN_S"], d["logD_S"], "_S")}
    model = make_joint_model(law, pri, noise, teacher_noise, len(uniq), discrepancy)
    kwargs = {"log_loss": _log32(sup["loss"]), "log_loss_student": _log32(dis["loss"])}
    constant = {**_constants(sup, "run"), **_constants(dis, "drun", ("N", "D", "N_T", "D_T", "L_T"))}
    constant["measured_drun"] = _Const(measured.astype(np.int8), "drun")
    dims = {"log_loss": ["run"], "log_loss_student": ["drun"]}
    return (s, d, _centre_arg(centre)), kwargs, constant, dims, centre, model


def _log10_c_max(rows) -> float | None:
    """log10 of the largest compute 6 N D of the supervised runs (None without any)."""
    if len(rows) == 0:
        return None
    return float(np.max(log10_6nd(rows["N"], rows["D"])))


def _kappa_plan(rows, pri):
    """Which runs the inner leave-last-level-out fit that learns ``kappa`` fits, or why there is none.

    ``discrepancy="compute"``: the runs are binned into IsoFLOP levels
    (:func:`bayesdistill.inference.validation.compute_levels`); the ``distance`` model fitted to
    every level below the largest (the main fit's sampler and seed, the largest level masked out,
    the centre and distance geometry of the inner runs: :func:`_inner_job`) predicts the largest
    (:func:`_kappa_from_inner`). Returns the bool mask of the inner runs, or, where the runs form
    one level or too few runs lie below the largest, a text saying why ``kappa`` keeps its prior.
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


def _inner_job(p: Prepared, inner) -> Job:
    logN, logD, _ = p.inputs.args
    geometry = {"N": float(np.asarray(logN)[inner].mean()), "D": float(np.asarray(logD)[inner].mean()),
                **distance_geometry(np.asarray(logN)[inner], np.asarray(logD)[inner])}
    return _job(p, masks={"log_loss": inner}, args=(logN, logD, _centre_arg(geometry)))


def _kappa_from_prior(pri, seed: int, why: str, n_draws: int) -> tuple[np.ndarray, dict]:
    kappa = pri["kappa"].to_numpyro().sample(jax.random.PRNGKey(seed), (n_draws,))
    return np.asarray(kappa, dtype=np.float64), {"source": f"prior: {why}"}


def _kappa_from_inner(p: Prepared, job: Job, d: Draws, n_draws: int) -> tuple[np.ndarray, dict]:
    """Draws of ``kappa`` and how they were learnt (for the config), from the inner fit's draws.

    The held-out largest level, ``e`` decades of compute beyond the inner fit, gives the
    likelihood of ``kappa`` under the inner posterior predictive
    (:func:`bayesdistill.inference.model.kappa_posterior`); its posterior on a grid is drawn
    ``n_draws`` times, independently of the other parameters.
    """
    from .model import KAPPA_GRID, kappa_posterior, sample_grid
    from .validation import log10_compute

    rows, pri, noise = p.sweep.supervised, p.inputs.priors, p.inputs.model_noise
    inner = np.asarray(job.masks["log_loss"], bool)
    geometry = {k: float(v) for k, v in job.args[2].items()}
    draws = {k: np.asarray(v).reshape(-1) for k, v in d.samples.items() if np.ndim(v) == 2}
    inner_post = Posterior(az.from_dict(posterior={k: v[None] for k, v in draws.items()}), p.law, pri, noise,
                           geometry, {"discrepancy": "distance"})
    train, test = rows[inner], rows[~inner]
    N, D = test["N"].to_numpy(float), test["D"].to_numpy(float)
    e = np.maximum(0.0, log10_compute(test) - float(log10_compute(train).max()))
    nu = inner_post.draws(["nu"])["nu"] if noise == "student_t" else None
    # the likelihood of kappa averages the inner predictive density over draws: every k-th of at most
    # KAPPA_DRAWS draws is plenty for a one-dimensional grid and keeps the grid pass to ~1 s
    k = max(1, inner_post.n_draws // KAPPA_DRAWS)
    mu, scale = np.asarray(inner_post.log_loss_draws(N, D)), np.asarray(inner_post.noise_scale(N, D))
    scale = np.broadcast_to(scale, mu.shape)
    w = kappa_posterior(np.log(test["loss"].to_numpy(float)), mu[::k], scale[::k], None if nu is None else nu[::k],
                        e, pri["kappa"])
    kappa = sample_grid(KAPPA_GRID, w, n_draws, np.random.default_rng(np.random.SeedSequence([p.seed, 15])))
    info = {"source": "leave-last-level-out", "inner_runs": int(inner.sum()), "held_out_runs": int((~inner).sum()),
            "held_out_decades": float(np.median(e)), "median": float(np.median(kappa)),
            "q05": float(np.quantile(kappa, 0.05)), "q95": float(np.quantile(kappa, 0.95)),
            "inner_seconds": d.seconds}
    return kappa, info
