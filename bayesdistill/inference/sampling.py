"""Fit a law to a sweep with NUTS and review the fit."""

from __future__ import annotations

import time

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer import MCMC, NUTS, init_to_median

from ..data.sweep import read_sweep
from ..errors import BayesDistillError, SweepError
from ..laws.base import get_law
from ..laws.distillation import DistillationLaw
from ..runtime import enable_compilation_cache
from .inputs import ModelInputs
from .model import distance_geometry, log10_6nd, make_joint_model, make_model, resolve_priors
from .posterior import Posterior
from .review import warn_if_failed

CHAIN_METHODS = ("auto", "vectorized", "sequential", "parallel")


def _pmap_of_vmap(n_devices: int):
    """A numpyro chain method: chains split over ``n_devices`` CPU devices, vectorised within each."""

    def method(single_chain):
        def run(args):
            n = jax.tree.leaves(args)[0].shape[0]
            split = jax.tree.map(lambda x: x.reshape((n_devices, n // n_devices) + x.shape[1:]), args)
            out = jax.pmap(jax.vmap(single_chain))(split)
            return jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:]), out)

        return run

    return method


#: ``"auto"`` splits chains over CPU devices only when runs x (warmup + draws) reaches this: compiling
#: for several devices costs ~4 s more, which small fits (the test suite's) never win back
PARALLEL_MIN_WORK = 200_000


def resolve_chain_method(chain_method: str, chains: int, work: int = PARALLEL_MIN_WORK):
    """``(numpyro chain method, label)``; ``"auto"`` runs chains on separate CPU cores where it pays.

    On the CPU backend with several host devices (see
    :func:`bayesdistill.runtime.use_cpu_cores`) and ``work`` (runs x
    iterations) of at least ``PARALLEL_MIN_WORK``, the chains are split over
    the largest number of devices that divides them and vectorised within
    each: on 2 cores the joint distillation fit on the replica takes 63 s
    instead of 106 s and the Chinchilla fit 19 s instead of 24 s (cold).
    Elsewhere (small fits, one device, a GPU) ``"vectorized"``.
    """
    if chain_method != "auto":
        return chain_method, chain_method
    if jax.default_backend() == "cpu" and chains > 1 and work >= PARALLEL_MIN_WORK:
        n = max(d for d in range(1, min(jax.local_device_count(), chains) + 1) if chains % d == 0)
        if n > 1:
            return _pmap_of_vmap(n), f"{n} CPU devices x {chains // n} vectorized chains"
    return "vectorized", "vectorized"


def _check_settings(chains, draws, warmup, seed, target_accept, chain_method="auto", priors=None):
    """Sampler settings as plain Python values; a clear error for anything else."""
    out = {}
    for name, v, lo in (("chains", chains, 1), ("draws", draws, 1), ("warmup", warmup, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise BayesDistillError(f"{name} must be an integer >= {lo}, got {v!r}")
        out[name] = int(v)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise BayesDistillError(f"seed must be a non-negative integer below 2**32, got {seed!r}")
    out["seed"] = int(seed)
    if isinstance(target_accept, bool) or not isinstance(target_accept, (int, float, np.floating)) \
            or not 0 < target_accept < 1:
        raise BayesDistillError(f"target_accept must be in (0, 1), got {target_accept!r}")
    out["target_accept"] = float(target_accept)
    if chain_method not in CHAIN_METHODS:
        raise BayesDistillError(f"chain_method must be one of {list(CHAIN_METHODS)}, got {chain_method!r}")
    if priors is not None and not isinstance(priors, dict):
        raise BayesDistillError("priors must be a dict of parameter name -> prior, e.g. "
                                f"{{'E': ('lognormal', 0.4, 0.6)}}; got a {type(priors).__name__}")
    return out


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
        Show numpyro's progress bar.
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
    sweep = read_sweep(sweep)
    if groups is not None:
        from .pooled_kappa import learn_group_kappa
        from .pooling import group_law, pool_config, pooled_inputs

        law = group_law(law, sweep, groups)
    law = get_law(law)
    joint = isinstance(law, DistillationLaw)
    if target_accept is None:
        target_accept = 0.99 if joint or groups is not None else 0.9
    settings = _check_settings(chains, draws, warmup, seed, target_accept, chain_method, priors)
    chains, draws, warmup, seed, target_accept = (settings[k] for k in ("chains", "draws", "warmup", "seed",
                                                                         "target_accept"))
    inputs = (model_inputs(sweep, law, priors, noise, teacher, teacher_noise, discrepancy) if groups is None
              else pooled_inputs(sweep, law, groups, pool, priors, noise, discrepancy))
    pri, model, args, kwargs, centre, constant, dims = inputs
    n_runs = len(sweep.supervised) + (len(sweep.distillation) if joint else 0)
    method, method_label = resolve_chain_method(chain_method, chains, n_runs * (warmup + draws))
    learn_kappa = discrepancy == "compute" and not joint
    if learn_kappa:  # every run fitted; the inner fit masks the largest level out (same compiled sampler)
        kwargs = {**kwargs, "mask": jnp.ones(n_runs, dtype=bool)}

    kernel = NUTS(model, target_accept_prob=target_accept, dense_mass=dense_mass,
                  init_strategy=init_to_median(num_samples=15))
    # with learn_kappa the data are arguments of the compiled sampler, which the inner fit reuses
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method=method, progress_bar=progress_bar, jit_model_args=learn_kappa)

    def run_nuts(args, kwargs):
        mcmc.run(jax.random.PRNGKey(seed), *args, **kwargs, extra_fields=("diverging", "energy"))
        jax.block_until_ready(mcmc.get_samples())
        return mcmc

    enable_compilation_cache()
    t0 = time.perf_counter()
    run_nuts(args, kwargs)
    seconds = time.perf_counter() - t0
    dims.update({k: [v.dims] for k, v in constant.items()})
    coords = {v.dims: np.arange(len(v.values)) for v in constant.values()}
    idata = az.from_numpyro(mcmc, constant_data={k: v.values for k, v in constant.items()},
                            coords=coords, dims=dims)
    config = {"chains": chains, "draws": draws, "warmup": warmup, "seed": seed,
              "target_accept": target_accept, "dense_mass": dense_mass, "seconds": seconds,
              "source": sweep.source, "teacher": teacher, "teacher_noise": teacher_noise,
              "discrepancy": discrepancy, "chain_method": method_label}
    if groups is not None:
        config["groups"] = pool_config(inputs, law, groups, pool)
    centre = {**centre, "log10_c_max": _log10_c_max(sweep.supervised)}
    if learn_kappa:
        learn = _learn_kappa if groups is None else learn_group_kappa
        kappa, config["kappa"] = learn(sweep.supervised, law, pri, noise, args, kwargs, run_nuts, seed,
                                              chains * draws)
        idata.posterior["kappa"] = (("chain", "draw"), kappa.reshape(chains, draws))
    post = Posterior(idata, law, pri, noise, centre, config)
    if review:
        warn_if_failed(post.review())
    return post


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
    return ModelInputs(pri, model, args, kwargs, centre, constant, dims)


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


def _learn_kappa(rows, law, pri, noise, args, kwargs, run_nuts, seed, n_draws) -> tuple[np.ndarray, dict]:
    """Draws of ``kappa`` (discrepancy="compute") and how they were learnt, for the config.

    Leave-last-level-out inside ``rows``: the ``distance`` model fitted (``run_nuts`` with the
    main fit's settings, the held-out runs masked out) to every IsoFLOP level below the largest
    (:func:`bayesdistill.inference.validation.compute_levels`) predicts the largest; the posterior of
    ``kappa`` on a grid (:func:`bayesdistill.model.kappa_posterior`) is drawn ``n_draws`` times,
    independently of the other parameters. Where the runs form one level, or too few runs lie
    below the largest level, ``kappa`` keeps its prior (said in the config).
    """
    from .model import KAPPA_GRID, kappa_posterior, sample_grid
    from .validation import MIN_FIT_RUNS, compute_levels, log10_compute

    need = max(MIN_FIT_RUNS, len(pri))
    try:
        levels = compute_levels(rows)
    except SweepError as exc:
        levels, why = None, str(exc)
    else:
        inner = levels < levels.max()
        why = ("the runs form one compute level" if levels.max() == 0 else
               f"{int(inner.sum())} runs below the largest compute level, fewer than {need}")
    if levels is None or levels.max() == 0 or inner.sum() < need:
        kappa = pri["kappa"].to_numpyro().sample(jax.random.PRNGKey(seed), (n_draws,))
        return np.asarray(kappa, dtype=np.float64), {"source": f"prior: {why}"}
    t0 = time.perf_counter()
    logN, logD, _ = args
    train = rows[inner]
    geometry = {"N": float(np.asarray(logN)[inner].mean()), "D": float(np.asarray(logD)[inner].mean()),
                **distance_geometry(np.asarray(logN)[inner], np.asarray(logD)[inner])}
    mcmc = run_nuts((logN, logD, _centre_arg(geometry)), {**kwargs, "mask": jnp.asarray(inner)})
    draws = {k: np.asarray(v).reshape(-1) for k, v in mcmc.get_samples().items()}
    inner_post = Posterior(az.from_dict(posterior={k: v[None] for k, v in draws.items()}), law, pri, noise,
                           geometry, {"discrepancy": "distance"})
    test = rows[~inner]
    N, D = test["N"].to_numpy(float), test["D"].to_numpy(float)
    e = np.maximum(0.0, log10_compute(test) - float(log10_compute(train).max()))
    nu = inner_post.draws(["nu"])["nu"] if noise == "student_t" else None
    w = kappa_posterior(np.log(test["loss"].to_numpy(float)), inner_post.log_loss_draws(N, D),
                        inner_post.noise_scale(N, D), nu, e, pri["kappa"])
    kappa = sample_grid(KAPPA_GRID, w, n_draws, np.random.default_rng(np.random.SeedSequence([seed, 15])))
    info = {"source": "leave-last-level-out", "inner_runs": int(inner.sum()), "held_out_runs": int((~inner).sum()),
            "held_out_decades": float(np.median(e)), "median": float(np.median(kappa)),
            "q05": float(np.quantile(kappa, 0.05)), "q95": float(np.quantile(kappa, 0.95)),
            "inner_seconds": time.perf_counter() - t0}
    return kappa, info
