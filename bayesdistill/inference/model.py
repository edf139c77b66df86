"""NumPyro models built from law specifications.

The model observes ``log loss``. The sampler works on log-coefficients sheared
against centred log N and log D (see :class:`bayesdistill.laws.Law`), which
removes the severe A-alpha and B-beta posterior correlations; every
coefficient is also recorded in natural units under its own name.

Noise on log loss is Student-t by default (robust to the odd diverged run) or
Gaussian, with its scale ``sigma`` (and degrees of freedom ``nu``) learnt.

With ``discrepancy="distance"`` (the default of :func:`bayesdistill.fit`) the
noise scale of a run also grows with its distance ``d`` from the centre of the
fitted runs: ``sqrt(sigma^2 + (tau * d)^2)``, where ``d`` is the Euclidean
distance in log N and log D, each standardised by the fitted runs' mean and
standard deviation (see :func:`distance_geometry`). It is the marginal
variance of a random linear misfit of the law, ``delta = b . z`` with ``b ~
N(0, tau^2 I)``: one constant ``sigma`` describes the scatter between runs but
not the law's misfit far from the data, and makes extrapolations
overconfident. ``tau`` is learnt from how residuals grow towards the edges of
the sweep; it is in log-loss units per standard deviation of the fitted runs'
log N / log D: the misfit part of the noise has standard deviation ``tau * d``
(``tau = 0.01``: ~1% of the loss one standard deviation from the centre, ~3%
at three), added in quadrature to ``sigma``. Its default prior is
HalfNormal(0.01).

With ``discrepancy="compute"`` (the default of :func:`bayesdistill.fit` for supervised laws)
the ``distance`` model is fitted unchanged and the predictive noise scale of a run ``e =
max(0, log10(6ND) - log10 C_max)`` decades of compute beyond the largest fitted run gets the law's
misfit there, ``sqrt(sigma^2 + (tau d)^2 + (kappa e)^2 + omega^2 e)``: a drift ``kappa`` per decade
and a random walk ``omega`` per square-root decade (:mod:`bayesdistill.inference.misfit`). An
IsoFLOP sweep's next budget is mostly a step along log C, where ``d`` grows little while the law's
misfit grows. ``kappa`` and ``omega`` cannot be learnt from the fitted runs' residuals (every
fitted run has ``e = 0``); their prior is a population prior learnt across public sweeps
(``models/misfit_prior.json``), updated by leave-last-level-out inside the fitted runs
(:mod:`bayesdistill.inference.kappa`): the runs are binned into IsoFLOP levels
(:func:`bayesdistill.inference.validation.compute_levels`), the ``distance`` model is fitted to
every level below the largest (Laplace + importance sampling), and the largest level's runs, which
share one draw of the misfit, give the likelihood of ``(kappa, omega)`` under the inner posterior
predictive. Their posterior on a grid is drawn once per posterior draw. Within the fitted compute
range ``compute`` and ``distance`` predict identically (and have the same LOO). The student runs
of a distillation law keep ``distance`` semantics (no misfit beyond): the student's compute is not
the axis its sweeps step along.
"""

from __future__ import annotations

from contextlib import nullcontext

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import transforms as T

from ..errors import LawError
from ..laws.base import Law
from ..laws.priors import Prior

NOISE_KINDS = ("student_t", "normal")
#: ``"none"``: one noise scale ``sigma``; ``"distance"``: it grows with the distance from the fitted runs;
#: ``"compute"``: ``"distance"`` plus a misfit growing with the decades of compute beyond the fitted runs
DISCREPANCY_KINDS = ("compute", "distance", "none")
#: kinds whose model has the distance term ``tau`` (``"compute"`` fits the ``"distance"`` model)
DISTANCE_KINDS = ("compute", "distance")
#: the noise-scale site of each kind of run and its discrepancy site
DISCREPANCY_SITES = {"sigma": "tau", "sigma_distill": "tau_distill"}

NOISE_PRIORS = {
    "sigma": Prior("halfnormal", {"scale": 0.05},
                   "scatter of log loss between runs; 0.01 is ~1% loss scatter"),
    "sigma_distill": Prior("halfnormal", {"scale": 0.05},
                           "scatter of the student's log loss between distillation runs"),
    "nu": Prior("gamma", {"concentration": 2.0, "rate": 0.1},
                "Student-t degrees of freedom (Juarez & Steel 2010); mean 20"),
    "tau": Prior("halfnormal", {"scale": 0.01},
                 "misfit of the law per standard deviation of distance from the fitted runs "
                 "(discrepancy='distance'): sd tau*d of log loss, in quadrature with sigma; "
                 "0.01 is ~1% at 1 sd, ~3% at 3 sd"),
    "tau_distill": Prior("halfnormal", {"scale": 0.01},
                         "the same for the student runs, in their standardised log N_S, log D_S"),
    "kappa": Prior("population", {},
                   "drift of the law's misfit per decade of compute beyond the largest fitted run "
                   "(discrepancy='compute'): the prior learnt across public sweeps (models/misfit_prior.json), "
                   "updated by the sweep's own leave-last-level-out"),
    "omega": Prior("population", {},
                   "random walk of the law's misfit per square-root decade of compute beyond the largest "
                   "fitted run (discrepancy='compute'): misfit sd sqrt((kappa e)^2 + omega^2 e) e decades "
                   "beyond; prior learnt across public sweeps, updated by the sweep's leave-last-level-out"),
}

#: priors allowed on the discrepancy scales (support [0, inf))
DISCREPANCY_FAMILIES = ("halfnormal", "halfcauchy", "exponential", "gamma", "lognormal")
#: the sites of the misfit beyond the fitted compute (learnt outside the sampled model; see .misfit)
MISFIT_SITES = ("kappa", "omega")


def site_names(law: Law, noise: str, discrepancy: str = "none") -> list[str]:
    """Names a user may give custom priors for."""
    names = list(law.params) + ["sigma"]
    if hasattr(law, "student_log_loss"):
        names.append("sigma_distill")
    if noise == "student_t":
        names.append("nu")
    if discrepancy in DISTANCE_KINDS:
        names += [DISCREPANCY_SITES[s] for s in names if s in DISCREPANCY_SITES]
    if discrepancy == "compute" and not hasattr(law, "student_log_loss"):
        names += list(MISFIT_SITES)
    return names


def check_discrepancy(discrepancy) -> str:
    """``discrepancy`` if it is a known kind, else a :class:`LawError` listing the kinds."""
    if discrepancy not in DISCREPANCY_KINDS:
        raise LawError(f"unknown discrepancy {discrepancy!r}; choose from {list(DISCREPANCY_KINDS)}")
    return discrepancy


def resolve_priors(law: Law, noise: str, priors: dict | None, discrepancy: str = "none") -> dict[str, Prior]:
    """Default priors overridden by ``priors``; unknown site names are rejected."""
    if noise not in NOISE_KINDS:
        raise LawError(f"unknown noise {noise!r}; choose from {list(NOISE_KINDS)}")
    valid = site_names(law, noise, check_discrepancy(discrepancy))
    out = {**law.priors, **{k: NOISE_PRIORS[k] for k in valid if k in NOISE_PRIORS}}
    for name, p in (priors or {}).items():
        if name not in valid:
            raise LawError(f"priors: {name!r} is not a parameter of law {law.name!r}; valid names: {valid}")
        out[name] = Prior.from_dict(p)
    sheared = {c for c, _, _ in law.shears}
    for name, p in out.items():
        if p.family == "population" and name not in MISFIT_SITES:
            raise LawError(f"priors: 'population' is a prior on the law's misfit beyond the fitted compute "
                           f"only ({list(MISFIT_SITES)}), not on {name!r}")
        if p.family in TERM_FAMILIES and name not in sheared:
            raise LawError(f"priors: {p.family!r} is a prior on a law's term; {name!r} is not the coefficient "
                           f"of a term (those are {sorted(sheared)})")
    log_scale = sheared | {c for c, *_ in law.products}
    for name in log_scale:
        if out[name].family not in LOG_SCALE_FAMILIES:
            raise LawError(
                f"priors: {name!r} is sampled on the log scale and needs a prior with support "
                f"(0, inf), one of {list(LOG_SCALE_FAMILIES)}; got {out[name].family!r}"
            )
    for name in (*DISCREPANCY_SITES.values(), *MISFIT_SITES):
        allowed = DISCREPANCY_FAMILIES + (("population",) if name in MISFIT_SITES else ())
        if name in out and out[name].family not in allowed:
            raise LawError(
                f"priors: {name!r} is a noise scale and needs a prior on [0, inf), one of "
                f"{list(allowed)}; got {out[name].family!r}"
            )
    return out


#: priors allowed on coefficients the sampler handles on the log scale (support (0, inf))
LOG_SCALE_FAMILIES = ("lognormal", "gamma", "halfnormal", "halfcauchy", "exponential", "term_halfnormal")
#: priors on a sheared coefficient's term at the reference point rather than on the coefficient
TERM_FAMILIES = ("term_halfnormal",)


def _log_prior_dist(prior: Prior, shift, scale=1.0):
    """Distribution of (log(X) - shift) * scale when X ~ prior (X positive, unbounded above)."""
    if prior.family == "lognormal":
        return dist.Normal((prior.params["loc"] - shift) * scale, prior.params["scale"] * scale)
    base = prior.to_numpyro()
    return dist.TransformedDistribution(
        base, [T.ExpTransform().inv, T.AffineTransform(-shift * scale, scale)])


def sample_coefficients(law: Law, priors: dict[str, Prior], centre: dict) -> dict:
    """Sample every coefficient of ``law``; returns natural-unit values by name.

    ``centre`` maps ``"N"``/``"D"`` (and ``"N_S"``/``"D_S"``) to the mean log
    covariate (may be traced). Each reparameterisation below is an exact
    change of variables, so the joint prior is the one the priors state:

    - ``law.outer`` (gamma, exponents): an exponent with a lognormal prior is
      sampled as log(exponent * gamma), the effective exponent of a term
      raised to the power gamma, and a sheared coefficient of such an
      exponent as gamma * (log coef - exponent * centre);
    - ``law.products``: log(coef * partner) [- log(pivot) / partner];
    - ``law.shears``: log(coef) - exponent * centre;
    - ``law.levels``: a sheared coordinate less ``other * centre[key]``;
    - a ``term_halfnormal`` prior: the signed square root ``r`` of the term
      ``coef * exp(-exponent * centre)`` is sampled (``{coef}_root``,
      Normal(0, scale)); the term is ``r^2``. A term the data bound only from
      above then meets a soft (polynomial) wall in ``r`` instead of an
      exponential one in log(coef), and a vanishing term sits at ``r = 0``
      instead of a tail towards log 0.
    """
    sheared = {coef: (expo, cov) for coef, expo, cov in law.shears}
    levels = {coef: (other, key) for coef, other, key in law.levels}
    products = {c: others for c, *others in law.products}
    gamma_of = {e: g for g, exps in law.outer for e in exps}
    effective = {e: g for e, g in gamma_of.items() if priors[e].family == "lognormal"}
    theta = {}
    for name in law.params:
        if name not in sheared and name not in products and name not in effective:
            theta[name] = numpyro.sample(name, priors[name].to_numpyro())
    for expo, g in effective.items():
        p = priors[expo].params
        z = numpyro.sample(f"log_{expo}_{g}", dist.Normal(p["loc"] + jnp.log(theta[g]), p["scale"]))
        theta[expo] = numpyro.deterministic(expo, jnp.exp(z) / theta[g])
    for name, others in products.items():
        # log(coef * partner) [- log(pivot) / partner] = log(coef) - shift
        shift = -jnp.log(theta[others[0]])
        if len(others) == 2:
            shift = shift + jnp.log(theta[others[1]]) / theta[others[0]]
        z = numpyro.sample(f"log_{name}_{'_'.join(others)}", _log_prior_dist(priors[name], shift))
        theta[name] = numpyro.deterministic(name, jnp.exp(z + shift))
    for name in law.params:
        if name in sheared:
            expo, cov = sheared[name]
            if priors[name].family == "term_halfnormal":
                r = numpyro.sample(f"{name}_root", dist.Normal(0.0, priors[name].params["scale"]))
                theta[name] = numpyro.deterministic(name, r ** 2 * jnp.exp(theta[expo] * centre[cov]))
                continue
            shift = theta[expo] * centre[cov]
            scale = theta[gamma_of[expo]] if expo in gamma_of else 1.0
            if name in levels:  # (log coef - shift) * scale - other * centre[key]
                other, key = levels[name]
                shift = shift + theta[other] * centre[key] / scale
            z = numpyro.sample(f"log_{name}_c", _log_prior_dist(priors[name], shift, scale))
            theta[name] = numpyro.deterministic(name, jnp.exp(z / scale + shift))
    return theta


#: smallest standard deviation of log N or log D used to standardise distances (a sweep at one size)
MIN_LOG_SCALE = 0.1


def distance_geometry(logN, logD, suffix: str = "") -> dict[str, float]:
    """Location and scale of log N and log D of the fitted runs, for :func:`distance_sq`.

    Keys ``loc_logN{suffix}``, ``scale_logN{suffix}``, ``loc_logD{suffix}``,
    ``scale_logD{suffix}`` (mean and standard deviation, the latter at least
    ``MIN_LOG_SCALE``); :func:`bayesdistill.fit` stores them in
    ``Posterior.centre`` (suffix ``"_S"`` for the student runs of a joint fit).
    """
    out = {}
    for cov, x in (("N", logN), ("D", logD)):
        x = np.asarray(x, dtype=float)
        out[f"loc_log{cov}{suffix}"] = float(x.mean())
        out[f"scale_log{cov}{suffix}"] = max(float(x.std()), MIN_LOG_SCALE)
    return out


def distance_sq(logN, logD, centre, suffix: str = ""):
    """Squared distance of points from the fitted runs' centre, in standardised log N and log D."""
    zN = (logN - centre[f"loc_logN{suffix}"]) / centre[f"scale_logN{suffix}"]
    zD = (logD - centre[f"loc_logD{suffix}"]) / centre[f"scale_logD{suffix}"]
    return zN ** 2 + zD ** 2


def noise_scale(sigma, tau, d2):
    """Noise scale ``sqrt(sigma^2 + tau^2 d^2)`` at squared distance ``d2`` (``tau=None``: ``sigma``)."""
    return sigma if tau is None else jnp.sqrt(sigma ** 2 + tau ** 2 * d2)


#: half-distributions of a discrepancy scale, sampled as the absolute value of the symmetric law
_SIGNED = {"halfnormal": dist.Normal, "halfcauchy": dist.Cauchy}


def _sample_discrepancy(site, prior):
    """Sample a discrepancy scale ``site`` from ``prior``.

    Only ``tau^2`` enters the model, so a half-normal (half-Cauchy) ``tau`` is
    sampled exactly as ``|t|`` with ``t ~ Normal(0, scale)`` (Cauchy) in the
    site ``{site}_signed``: on the log scale, a ``tau`` the data cannot tell
    from 0 leaves a long tail towards log 0 that NUTS mixes through slowly
    (ESS ~10% of the draws on a well-specified sweep); the signed version has
    no boundary there. ``tau`` itself is recorded as a deterministic site.
    """
    if prior.family in _SIGNED:
        t = numpyro.sample(f"{site}_signed", _SIGNED[prior.family](0.0, prior.params["scale"]))
        return numpyro.deterministic(site, jnp.abs(t))
    return numpyro.sample(site, prior.to_numpyro())


def _polar_scales(site, tau_site, a, b, m2):
    """Sample ``sigma ~ HalfNormal(a)`` and ``tau ~ HalfNormal(b)`` in polar coordinates.

    With ``u = sigma / a`` and ``v = tau / b`` independent half-normals,
    ``r = |(u, v)|`` is Chi(2) and the angle ``phi`` is Uniform(0, pi/2),
    independently: an exact change of variables, the prior is unchanged. The
    sampler sees ``phi`` (site ``{site}_angle``: how the noise splits between
    scatter and misfit) and the log of the total noise scale at the runs'
    mean squared distance ``m2``, ``S = sqrt(sigma^2 + tau^2 m2)`` (site
    ``log_{site}_total``). The data pin ``S`` down tightly and ``phi``
    loosely; in ``(log sigma, tau)`` the same posterior is a curved ridge
    ``sigma^2 + tau^2 m2 = S^2`` that forced NUTS into ~45 leapfrog steps per
    draw on the Chinchilla points (~28 in these coordinates).
    """
    phi = numpyro.sample(f"{site}_angle", dist.Uniform(0.0, 0.5 * np.pi))
    c, s = jnp.cos(phi), jnp.sin(phi)
    norm = jnp.sqrt((a * c) ** 2 + (b * s) ** 2 * m2)
    # log S = log r + log norm, with r^2 ~ Chi2(2) = Exponential(rate 1/2)
    log_total = numpyro.sample(f"log_{site}_total", dist.TransformedDistribution(
        dist.Exponential(0.5), [T.ExpTransform().inv, T.AffineTransform(jnp.log(norm), 0.5)]))
    r = jnp.exp(log_total) / norm
    return numpyro.deterministic(site, a * r * c), numpyro.deterministic(tau_site, b * r * s)


def _scale_site(site, priors, discrepancy, logN, logD, centre, suffix="", mask=None):
    """Sample the noise scale ``site`` (and its discrepancy site); the per-run scale.

    ``mask`` (optional, bool per run): the runs that are fitted (the mean squared distance of the
    polar coordinates is taken over them).
    """
    if discrepancy not in DISTANCE_KINDS:
        return numpyro.sample(site, priors[site].to_numpyro())
    tau_site = DISCREPANCY_SITES[site]
    d2 = distance_sq(logN, logD, centre, suffix)
    ps, pt = priors[site], priors[tau_site]
    if ps.family == pt.family == "halfnormal":
        m2 = jnp.mean(d2) if mask is None else jnp.sum(jnp.where(mask, d2, 0.0)) / jnp.sum(mask)
        sigma, tau = _polar_scales(site, tau_site, ps.params["scale"], pt.params["scale"], m2)
    else:
        sigma = numpyro.sample(site, ps.to_numpyro())
        tau = _sample_discrepancy(tau_site, pt)
    return noise_scale(sigma, tau, d2)


#: public name of the noise-scale sampler, for the grouped model (:mod:`bayesdistill.inference.pooling`)
scale_site = _scale_site


def make_model(law: Law, priors: dict[str, Prior], noise: str, discrepancy: str = "none"):
    """A numpyro model ``model(logN, logD, centre, log_loss=None, mask=None)`` for a supervised law.

    A law with covariates (``law.covariates``, e.g. ``("U",)``) takes their logs between ``logD``
    and ``centre``: ``model(logN, logD, logU, centre, ...)`` (one row per run, so the engine pads
    them like ``logN``); ``centre`` is always the last positional argument.
    ``centre`` is ``{"N": mean log N, "D": mean log D}`` of the fitted runs (an
    argument, not a constant, so compiled samplers are reused across sweeps),
    plus :func:`distance_geometry` for ``discrepancy="distance"``.
    With ``log_loss=None`` the same function draws from the prior predictive.
    ``mask`` (bool per run) fits only the runs where it is true: the inner
    leave-last-level-out fit of ``discrepancy="compute"`` reuses the main fit's
    compiled sampler that way (same shapes).
    """
    check_discrepancy(discrepancy)

    def model(logN, logD, *rest, log_loss=None, mask=None):
        *covariates, centre = rest
        theta = sample_coefficients(law, priors, centre)
        mu = law.log_loss(theta, logN, logD, *covariates)
        sigma = _scale_site("sigma", priors, discrepancy, logN, logD, centre, mask=mask)
        observe_runs(noise, priors, mu, sigma, log_loss, mask)

    return model


def observe_runs(noise, priors, mu, sigma, log_loss=None, mask=None):
    """The likelihood of the supervised runs' log losses (site ``log_loss``; ``nu`` for Student-t noise).

    ``mask`` (bool per run, optional) fits only the runs where it is true.
    """
    nu = numpyro.sample("nu", priors["nu"].to_numpyro()) if noise == "student_t" else None
    with numpyro.plate("runs", mu.shape[0]), _masked(mask):
        numpyro.sample("log_loss", _noise_dist(noise, nu, mu, sigma), obs=log_loss)


def _masked(mask):
    """A context fitting only the runs where ``mask`` (bool per run) is true; ``None``: every run."""
    return nullcontext() if mask is None else numpyro.handlers.mask(mask=mask)


def _noise_dist(noise, nu, mu, sigma):
    return dist.StudentT(nu, mu, sigma) if noise == "student_t" else dist.Normal(mu, sigma)


def make_joint_model(law, priors: dict[str, Prior], noise: str, teacher_noise: float = 0.0,
                     n_teachers: int = 0, discrepancy: str = "none"):
    """A numpyro model for a :class:`~bayesdistill.laws.DistillationLaw`.

    ``model(sup, dis, centre, log_loss=None, log_loss_student=None)`` where
    ``sup = {"logN", "logD"}`` are the supervised runs and ``dis`` holds the
    distillation runs: ``logN_S, logD_S``, the measured teacher log loss
    ``logL_T`` (any value where not measured), ``measured`` (bool: use it),
    ``logN_T, logD_T`` (any value where unknown) and ``teacher`` (index of the
    distinct teacher, for ``teacher_noise``). Where the teacher loss is not
    measured it comes from the supervised law at (N_T, D_T), so its
    uncertainty propagates into the student's prediction. Supervised and
    distillation runs have their own noise scales ``sigma`` and
    ``sigma_distill`` (with ``discrepancy="distance"``, growing with the
    distance from the supervised runs in log N, log D at rate ``tau`` and from
    the student runs in log N_S, log D_S at rate ``tau_distill``).
    """
    check_discrepancy(discrepancy)

    def model(sup, dis, centre, log_loss=None, log_loss_student=None, mask=None, mask_student=None):
        theta = sample_coefficients(law, priors, centre)
        sigma = _scale_site("sigma", priors, discrepancy, sup["logN"], sup["logD"], centre, mask=mask)
        sigma_d = _scale_site("sigma_distill", priors, discrepancy, dis["logN_S"], dis["logD_S"], centre, "_S",
                              mask=mask_student)
        nu = numpyro.sample("nu", priors["nu"].to_numpyro()) if noise == "student_t" else None
        if sup["logN"].shape[0]:
            mu = law.log_loss(theta, sup["logN"], sup["logD"])
            with numpyro.plate("runs", sup["logN"].shape[0]), _masked(mask):
                numpyro.sample("log_loss", _noise_dist(noise, nu, mu, sigma), obs=log_loss)
        law_lt = law.log_loss(theta, dis["logN_T"], dis["logD_T"])
        log_lt = jnp.where(dis["measured"], dis["logL_T"], law_lt)
        if teacher_noise > 0:
            with numpyro.plate("teachers", n_teachers):
                z = numpyro.sample("teacher_offset", dist.Normal(0.0, 1.0))
            log_lt = log_lt + jnp.where(dis["measured"], teacher_noise * z[dis["teacher"]], 0.0)
        mu_s = law.student_log_loss(theta, dis["logN_S"], dis["logD_S"], log_lt)
        with numpyro.plate("distill_runs", dis["logN_S"].shape[0]), _masked(mask_student):
            numpyro.sample("log_loss_student", _noise_dist(noise, nu, mu_s, sigma_d), obs=log_loss_student)

    return model


# ------------------------------------------------- discrepancy="compute": misfit along log C
def log10_6nd(N, D) -> np.ndarray:
    """log10 of the compute C = 6 N D (summed in logs: 6 N D of integer columns overflows int64)."""
    return np.log10(6.0) + np.log10(np.asarray(N, dtype=float)) + np.log10(np.asarray(D, dtype=float))


def decades_beyond(N, D, log10_c_max: float) -> np.ndarray:
    """Decades of compute C = 6 N D beyond ``10**log10_c_max`` (0 within the fitted range)."""
    return np.maximum(0.0, log10_6nd(N, D) - log10_c_max)


def misfit_sd(kappa, omega, e):
    """Standard deviation of the misfit ``e`` decades of compute beyond the fit."""
    return ((kappa * e) ** 2 + omega ** 2 * e) ** 0.5
