"""What :func:`bayesdistill.fit` hands to NUTS: a sweep turned into a numpyro model and its arguments.

:func:`model_inputs` builds it for one sweep (a supervised law, or a distillation law fitted
jointly with the supervised runs); the grouped model (:mod:`.pooling`) builds the same
:class:`ModelInputs` for a grouped sweep.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.distributions import constraints
from numpyro.infer.util import constrain_fn

from ..data.sweep import read_sweep
from ..errors import BayesDistillError, SweepError
from ..laws.base import get_law
from ..laws.distillation import DistillationLaw
from .engine import Job, fingerprint
from .model import (
    MISFIT_SITES,
    distance_geometry,
    make_joint_model,
    make_model,
    resolve_priors,
    sample_coefficients,
)


class ModelInputs(NamedTuple):
    """Everything :func:`fit` hands to NUTS: ``model(*args, **kwargs)`` is the model with its data."""

    priors: dict
    model: object
    args: tuple
    kwargs: dict
    centre: dict
    constant: dict
    dims: dict
    #: the noise kind, and a key of everything the model closure is built from (the sampler's cache key)
    model_noise: str = "student_t"
    fingerprint: str = ""
    #: runs per observed site
    sizes: dict | None = None
    #: ``gap(free, args)``: the law's loss at the sweep's centre less its asymptote ``E``, for the
    #: sampler's coordinates (:mod:`.coordinates`); ``None``: the model's own coordinates
    gap: object = None


class Prepared(NamedTuple):
    """A sweep checked and turned into the sampler's inputs (:func:`bayesdistill.inference.sampling.prepare`);
    cheap to pickle."""

    sweep: object
    law: object
    inputs: ModelInputs
    seed: int
    options: dict


def job_of(p: Prepared, masks=None, args=None) -> Job:
    """The engine's :class:`~bayesdistill.inference.engine.Job` of ``p`` (``args`` and ``masks`` replaced if given)."""
    mi = p.inputs
    return Job(mi.fingerprint, mi.model, mi.args if args is None else args, mi.kwargs, mi.sizes, p.seed, masks,
               mi.gap)


def asymptote_gap(law, priors, joint: bool):
    """``gap(free, args)`` of :attr:`ModelInputs.gap`, or ``None`` for a joint distillation fit, a law
    without an asymptote or one whose prior is not on ``(0, inf)`` (the sampler's coordinates assume
    ``log E``).

    ``free`` holds the unconstrained values of the model's sample sites; only the coefficients' part
    of the model (:func:`.model.sample_coefficients`) is run to constrain them, so the sampler's
    potential does not trace the whole model twice.
    """
    name = law.asymptote
    if joint or name is None or priors[name].to_numpyro().support is not constraints.positive:
        # joint distillation fits keep the model's coordinates: on replica seeds 0-2 (first attempt,
        # every default) the change gave 106/266/173 leapfrog steps per draw with 7/1/6 divergences,
        # against 145/245/242 with 1/1/0
        return None
    covariates = law.covariates

    def gap(free, args):
        centre = args[-1]
        theta = constrain_fn(lambda: sample_coefficients(law, priors, centre), (), {}, free, return_deterministic=True)
        cov = [centre[c] for c in covariates]
        return jnp.exp(law.log_loss(theta, centre["N"], centre["D"], *cov)) - theta[name]

    gap.site = name  # the coordinate the sampler replaces (:func:`.laplace.sampler_coordinates`)
    return gap


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
        # a law's covariates (unique tokens U) ride between log D and the centre; absent: U = D
        extra = [_log32(rows[c] if c in rows else rows["D"]) for c in law.covariates]
        centre.update({c: float(x.mean()) for c, x in zip(law.covariates, extra)})
        args, kwargs = (logN, logD, *extra, centre_arg(centre)), {"log_loss": y}
        constant = _constants(rows, "run", ("N", "D", *(c for c in law.covariates if c in rows)))
        dims = {"log_loss": ["run"]}
        model = make_model(law, pri, noise, discrepancy)
    # the joint model is built for the number of distinct teachers (codes 0 .. n-1)
    n_teachers = int(np.max(np.asarray(args[1]["teacher"]))) + 1 if isinstance(law, DistillationLaw) else 0
    # "compute" fits the "distance" model (kappa, omega are learnt outside it): the two share a sampler
    gap = asymptote_gap(law, pri, isinstance(law, DistillationLaw))
    key = fingerprint(type(law).__module__, type(law).__qualname__, law.spec(),
                      {k: v.to_dict() for k, v in pri.items() if k not in MISFIT_SITES}, noise,
                      "distance" if discrepancy == "compute" else discrepancy, teacher_noise, n_teachers,
                      law.asymptote if gap is not None else None)
    sizes = {k: int(np.shape(kwargs[k])[0]) for k in ("log_loss", "log_loss_student") if k in kwargs}
    return ModelInputs(pri, model, args, kwargs, centre, constant, dims, noise, key, sizes, gap)


class _Const:
    """A constant-data column and its dimension name."""

    def __init__(self, values, dims):
        self.values, self.dims = np.asarray(values), dims


def _log32(col):
    return jnp.log(jnp.asarray(np.asarray(col, dtype=float), dtype=jnp.float32))


def centre_arg(centre):
    return {k: jnp.float32(v) for k, v in centre.items()}


def _constants(rows, dim, cols=("N", "D")):
    out = {c if dim == "run" else f"{c}_{dim}": _Const(rows[c].to_numpy(float), dim) for c in cols}
    for c in ("run_id", "group"):
        out[c if dim == "run" else f"{c}_{dim}"] = _Const(rows[c].to_numpy(str), dim)
    return out


def _check_count(n, pri, law):
    pri = {k: v for k, v in pri.items() if k not in MISFIT_SITES}  # learnt by the inner fit, not from these runs
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
    return (s, d, centre_arg(centre)), kwargs, constant, dims, centre, model
