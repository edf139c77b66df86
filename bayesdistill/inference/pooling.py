"""Hierarchical fits across related sweeps: one posterior, partial pooling of chosen coefficients.

``bd.fit(sweep, law, groups="dataset", pool="exponents")`` fits one law to every group of runs
(a data mixture, an architecture, a recipe: the values of the column ``groups``) in one joint
posterior. Each group has its own coefficients; those named by ``pool`` are drawn around a
population value, the others independently from the law's priors. Noise (``sigma``, ``nu`` and the
discrepancy ``tau``) is shared by all runs.

On the sampler's scale (the one :func:`bayesdistill.inference.model.sample_coefficients` uses:
``log E``, ``log alpha``, ``log A - alpha * mean log N``, ...) a pooled coefficient of group ``g``
is ``u_g = u_pop + sd * z_g`` with ``z_g ~ Normal(0, 1)`` (non-centred: with few groups the
spread ``sd`` is barely identified, and a centred parameterisation funnels), ``u_pop`` with the
law's prior for that coefficient and ``sd ~ HalfNormal(...)`` (site ``{name}_sd``; defaults in
:data:`SPREAD_PRIORS`, override with ``priors={"alpha_sd": ("halfnormal", 0.2)}``). A pooled size
or data coefficient is pooled as its term at the centre of all runs, which is what the data
identify. ``pool``: ``"exponents"`` (default: exponents pooled, ``E`` and the coefficients free),
``"all"``, ``"none"`` (independent coefficients, shared noise: the "separate fits" of
:func:`bayesdistill.compare`) or a list of coefficient names.

Each group's distance term is measured from that group's own runs, so a group's view
(``post.group(name)``, an ordinary :class:`Posterior`) predicts exactly like a fit of that group.
``discrepancy="compute"`` (``bd.fit``'s default) learns one ``kappa`` shared by the groups, by
leave-last-level-out per group in one inner fit (:mod:`bayesdistill.inference.pooled_kappa`); each
group's predictions count the decades beyond that group's largest run. Distillation laws are not
supported with groups yet.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from ..data.sweep import read_sweep
from ..errors import BayesDistillError, InputError, LawError, SweepError
from ..laws.base import Law, get_law
from ..laws.distillation import DistillationLaw
from ..laws.priors import Prior
from .inputs import ModelInputs
from .model import check_discrepancy, distance_geometry, log10_6nd, observe_runs, resolve_priors, scale_site

POOL_KINDS = ("exponents", "all", "none")
#: fewest runs a group may have, whatever is pooled
MIN_GROUP_RUNS = 3
#: default half-normal scale of the between-group sd, on the sampler's scale: exponents and E on
#: the log scale (0.1: groups' exponents typically within ~10%), a coefficient as its log term at
#: the centre of the runs (0.3: terms within ~30%)
SPREAD_SCALES = {"exponent": 0.1, "E": 0.1, "coefficient": 0.3}
#: the dimension of per-group values in the posterior's DataTree ("group" is the sweep's column of runs of one training run)
GROUP_DIM = "sweep_group"


class Column(NamedTuple):
    """A constant-data column and its dimension (as :func:`bayesdistill.fit` stores them)."""

    values: np.ndarray
    dims: str


def exponents(law: Law) -> tuple[str, ...]:
    """The law's exponents: those of its sheared terms and an outer ``gamma``."""
    out = [e for _, e, _ in law.shears] + [g for g, _ in law.outer] + (["gamma"] if "gamma" in law.params else [])
    return tuple(dict.fromkeys(out))


def resolve_pool(law: Law, pool) -> tuple[str, ...]:
    """The coefficients ``pool`` names (see the module docstring), in the law's order."""
    if isinstance(pool, str):
        if pool not in POOL_KINDS:
            raise InputError(f"pool must be one of {list(POOL_KINDS)} or a list of coefficients of law "
                             f"{law.name!r} ({', '.join(law.params)}), got {pool!r}")
        names = {"exponents": exponents(law), "all": law.params, "none": ()}[pool]
    else:
        names = tuple(pool)
        bad = [n for n in names if n not in law.params]
        if bad:
            raise InputError(f"pool: {bad} are not coefficients of law {law.name!r}; its coefficients: "
                             f"{list(law.params)}")
    return tuple(n for n in law.params if n in names)


def spread_prior(law: Law, name: str) -> Prior:
    kind = "exponent" if name in exponents(law) else "E" if name not in {c for c, _, _ in law.shears} \
        else "coefficient"
    return Prior("halfnormal", {"scale": SPREAD_SCALES.get(name, SPREAD_SCALES[kind])},
                 f"between-group sd of {name} on the sampler's scale (log {name}"
                 + (", as its term at the centre of the runs)" if kind == "coefficient" else ")"))


def pooled_priors(law: Law, noise: str, priors: dict | None, discrepancy: str, pooled) -> dict[str, Prior]:
    """The law's and noise priors (``resolve_priors``) plus a spread prior ``{name}_sd`` per pooled coefficient."""
    priors = dict(priors or {})
    spread = {f"{n}_sd": spread_prior(law, n) for n in pooled}
    given = {k: priors.pop(k) for k in list(priors) if k.endswith("_sd")}
    bad = [k for k in given if k not in spread]
    if bad:
        raise LawError(f"priors: {bad} are not spreads of pooled coefficients; valid: {sorted(spread)}")
    out = resolve_priors(law, noise, priors, discrepancy)
    for k, p in given.items():
        p = Prior.from_dict(p)
        if p.family not in ("halfnormal", "halfcauchy", "exponential", "gamma", "lognormal"):
            raise LawError(f"priors: {k!r} is a between-group sd and needs a prior on [0, inf), got {p.family!r}")
        spread[k] = p
    sheared = {c for c, _, _ in law.shears}
    for n in law.params:
        if (n in pooled or n in sheared) and out[n].family != "lognormal":
            raise LawError(f"priors: a grouped fit needs a lognormal prior on {n!r} (pooled or sheared "
                           f"coefficients are drawn on the log scale), got {out[n].family!r}")
    return {**out, **spread}


def _log_normal(prior: Prior, shift):
    """Distribution of ``log(X) - shift`` for ``X ~ prior`` (lognormal)."""
    return dist.Normal(prior.params["loc"] - shift, prior.params["scale"])


def sample_group_coefficients(law: Law, priors: dict, pooled, n_groups: int, centre: dict) -> dict:
    """Every coefficient of ``law`` per group (arrays of shape ``(n_groups,)``, natural units)."""
    sheared = {c: (e, cov) for c, e, cov in law.shears}
    order = [n for n in law.params if n not in sheared] + [n for n in law.params if n in sheared]
    theta = {}
    plate = numpyro.plate(GROUP_DIM, n_groups)
    for name in order:
        p = priors[name]
        if name in sheared:
            expo, cov = sheared[name]
            shift_g = theta[expo] * centre[cov]
            if name in pooled:  # around the population's term at the centre (geometric mean exponent)
                shift_pop = jnp.exp(jnp.mean(jnp.log(theta[expo]))) * centre[cov]
                u_pop = numpyro.sample(f"log_{name}_c_pop", _log_normal(p, shift_pop))
                sd = numpyro.sample(f"{name}_sd", priors[f"{name}_sd"].to_numpyro())
                with plate:
                    z = numpyro.sample(f"log_{name}_c_z", dist.Normal(0.0, 1.0))
                u = u_pop + sd * z
            else:
                with plate:
                    u = numpyro.sample(f"log_{name}_c", _log_normal(p, shift_g))
            theta[name] = numpyro.deterministic(name, jnp.exp(u + shift_g))
        elif name in pooled:
            u_pop = numpyro.sample(f"log_{name}_pop", _log_normal(p, 0.0))
            sd = numpyro.sample(f"{name}_sd", priors[f"{name}_sd"].to_numpyro())
            with plate:
                z = numpyro.sample(f"{name}_z", dist.Normal(0.0, 1.0))
            theta[name] = numpyro.deterministic(name, jnp.exp(u_pop + sd * z))
        else:
            with plate:
                theta[name] = numpyro.sample(name, p.to_numpyro())
    return theta


def group_sites(law: Law, pooled) -> list[str]:
    """Sites of the pooled model with one value per group (dimension ``group``)."""
    sheared = {c for c, _, _ in law.shears}
    out = list(law.params)
    for n in law.params:
        if n in pooled:
            out.append(f"log_{n}_c_z" if n in sheared else f"{n}_z")
        elif n in sheared:
            out.append(f"log_{n}_c")
    return out


def hyper_sites(law: Law, pooled) -> list[str]:
    """Population sites of the pooled coefficients: location and between-group sd."""
    sheared = {c for c, _, _ in law.shears}
    return [s for n in pooled for s in ((f"log_{n}_c_pop" if n in sheared else f"log_{n}_pop"), f"{n}_sd")]


def make_pooled_model(law: Law, priors: dict, noise: str, discrepancy: str, n_groups: int, pooled=()):
    """A numpyro model ``model(logN, logD, code, centre, log_loss=None, mask=None)`` of grouped runs.

    ``code`` (int per run) is each run's group, ``0 .. n_groups - 1``; ``centre`` holds ``N``, ``D``
    (mean log N and log D of all runs: the shear of every group) and the distance geometry of each
    group (``loc_logN`` ... arrays of length ``n_groups``). Data enter as arguments; the number of
    groups is the only structural constant. ``mask`` (bool per run) fits only the runs where it is
    true, as in :func:`bayesdistill.inference.model.make_model`.
    """
    check_discrepancy(discrepancy)
    pooled = tuple(pooled)

    def model(logN, logD, code, centre, log_loss=None, mask=None):
        theta = sample_group_coefficients(law, priors, pooled, n_groups, centre)
        mu = law.log_loss({k: v[code] for k, v in theta.items()}, logN, logD)
        per_run = {k: (v[code] if jnp.ndim(v) else v) for k, v in centre.items()}
        sigma = scale_site("sigma", priors, discrepancy, logN, logD, per_run, mask=mask)
        observe_runs(noise, priors, mu, sigma, log_loss, mask)

    return model


def group_law(law, sweep, groups: str) -> Law:
    """The law shared by every group of ``sweep`` (``law`` a law, its name, or a mapping group -> law).

    A :class:`LawError` when a mapping gives groups different laws or misses one.
    """
    names = group_codes(read_sweep(sweep).supervised, groups)[1]
    if isinstance(law, dict):
        missing = [g for g in names if g not in law]
        if missing:
            raise LawError(f"law: no law given for groups {missing} (groups: {names})")
        laws = {g: get_law(law[g]) for g in names}
        kinds = {}
        for g, lw in laws.items():
            kinds.setdefault(lw.name, []).append(g)
        if len(kinds) > 1:
            listed = "; ".join(f"{k}: {v}" for k, v in kinds.items())
            raise LawError(f"a grouped fit shares one law across groups, but the groups have different laws "
                           f"({listed}); fit them separately, or give one law")
        return next(iter(laws.values()))
    return get_law(law)


def group_codes(df, groups: str) -> tuple[np.ndarray, list[str]]:
    """Each run's group code and the group names (in order of first appearance) of column ``groups``."""
    if not isinstance(groups, str):
        raise InputError(f"groups must be the name of a column of the sweep, got {groups!r}")
    if groups not in df.columns:
        raise SweepError(f"groups={groups!r}: the sweep has no column {groups!r} to group runs by "
                         f"(columns: {list(df.columns)})")
    col = df[groups]
    if col.isna().any():
        i = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise SweepError(f"groups={groups!r}: row {i} has no value in column {groups!r}; every run needs a group")
    names = [str(v) for v in dict.fromkeys(col.astype(str))]
    codes = col.astype(str).map({n: i for i, n in enumerate(names)}).to_numpy(np.int32)
    return codes, names


def pooled_inputs(sweep, law, groups: str, pool="exponents", priors=None, noise="student_t",
                  discrepancy="distance"):
    """The pooled model and its arguments: the same :class:`~bayesdistill.inference.sampling.ModelInputs`
    as :func:`bayesdistill.inference.sampling.model_inputs`, for ``bd.fit(..., groups=...)``."""
    sweep = read_sweep(sweep)
    rows = sweep.supervised.reset_index(drop=True)
    if len(sweep.distillation):
        raise BayesDistillError("grouped fits support supervised laws only; this sweep has distillation runs "
                                "(groups by teacher family or data mixture are not supported yet)")
    codes, names = group_codes(rows, groups)
    law = group_law(law, sweep, groups)
    if isinstance(law, DistillationLaw):
        raise BayesDistillError(f"grouped fits support supervised laws only; law {law.name!r} is a distillation "
                                "law (not supported with groups yet)")
    if law.covariates:
        raise BayesDistillError(f"grouped fits take N and D only; law {law.name!r} also reads "
                                f"{list(law.covariates)} (not supported with groups yet): fit each group alone")
    if len(names) < 2:
        raise SweepError(f"groups={groups!r}: the sweep has one group ({names[0]!r}); a grouped fit needs two or "
                         "more (fit without groups=)")
    pooled = resolve_pool(law, pool)
    pri = pooled_priors(law, noise, priors, discrepancy, pooled)
    free = [n for n in law.params if n not in pooled]
    counts = np.bincount(codes, minlength=len(names))
    for g, n in zip(names, counts):
        if n < MIN_GROUP_RUNS or n <= len(free):
            raise SweepError(f"group {g!r} (column {groups!r}) has {n} runs, too few for its {len(free)} free "
                             f"coefficients ({', '.join(free) or 'none'}; pooled: {', '.join(pooled) or 'none'}) "
                             f"and at least {MIN_GROUP_RUNS} runs: give it more runs, pool more coefficients "
                             "(pool='all') or leave the group out")
    logN, logD, y = (np.log(rows[c].to_numpy(float)) for c in ("N", "D", "loss"))
    geo = [distance_geometry(logN[codes == i], logD[codes == i]) for i in range(len(names))]
    centre = {"N": float(logN.mean()), "D": float(logD.mean()),
              **{k: [g[k] for g in geo] for k in geo[0]},
              "log10_c_max_groups": [float(np.max(log10_6nd(rows["N"][codes == i], rows["D"][codes == i])))
                                     for i in range(len(names))]}
    arg_centre = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in centre.items() if k != "log10_c_max_groups"}
    f32 = lambda x: jnp.asarray(x, dtype=jnp.float32)  # noqa: E731
    args = (f32(logN), f32(logD), jnp.asarray(codes), arg_centre)
    constant = {c: Column(rows[c].to_numpy(float), "run") for c in ("N", "D")}
    for c in ("run_id", "group"):
        constant[c] = Column(rows[c].to_numpy(str), "run")
    constant["group_code"] = Column(codes, "run")
    constant["group_name"] = Column(np.asarray(names, dtype=str), GROUP_DIM)
    dims = {"log_loss": ["run"], **{s: [GROUP_DIM] for s in group_sites(law, pooled)}}
    model = make_pooled_model(law, pri, noise, discrepancy, len(names), pooled)
    return ModelInputs(pri, model, args, {"log_loss": f32(y)}, centre, constant, dims)


def pool_config(inputs, law: Law, groups: str, pool) -> dict:
    """What :func:`bayesdistill.fit` records in ``Posterior.config["groups"]`` for ``pooled_inputs``' ``inputs``."""
    return {"column": groups, "names": [str(n) for n in inputs.constant["group_name"].values],
            "pool": list(resolve_pool(law, pool))}


def group_view(post, name: str):
    """Group ``name`` of the grouped posterior ``post`` as an ordinary :class:`Posterior`.

    Its draws are the group's coefficients and the shared noise, its runs the group's runs, its
    centre the group's (distance term and largest compute), so predictions, compute-optimal
    allocations, reports and save/load work on it as on a fit of that group alone. The draws stay
    aligned across groups (draw ``i`` of every view is the same joint draw), which
    :func:`bayesdistill.decisions.recipes.compare_recipes` relies on.
    """
    import xarray as xr

    names, info = post.group_names, post.config["groups"]
    if name not in names:
        raise InputError(f"no group {name!r} in this fit (column {info['column']!r}); its groups: {names}")
    g = names.index(name)
    runs = np.flatnonzero(post.idata.constant_data["group_code"].values == g)
    parts = {}
    for kind in post.idata.children:
        ds = post.idata[kind].to_dataset()
        if GROUP_DIM in ds.dims:
            ds = ds.isel({GROUP_DIM: g})
        if "run" in ds.dims:
            ds = ds.isel(run=runs)
        parts[kind] = ds
    c = post.centre
    centre = {"N": c["N"], "D": c["D"], **{k: v[g] for k, v in c.items() if isinstance(v, list)}}
    centre["log10_c_max"] = centre.pop("log10_c_max_groups")
    config = {k: v for k, v in post.config.items() if k != "groups"}
    config["group"] = {"column": info["column"], "name": name, "pool": info["pool"], "of": names}
    priors = {k: v for k, v in post.priors.items() if not k.endswith("_sd")}
    return type(post)(xr.DataTree.from_dict(parts), post.law, priors, post.noise, centre, config)
