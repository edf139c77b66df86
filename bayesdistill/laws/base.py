"""Scaling laws as small specifications.

A :class:`Law` is a name, the names of its coefficients (natural units), a pure
JAX function giving the *log* loss in a numerically stable log-sum-exp form,
and default priors. Laws know nothing of numpyro; :mod:`bayesdistill.inference.model`
turns a law into a probabilistic model.

Register your own law with :func:`register_law`; it can then be fitted,
saved and loaded by name without editing the package.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import jax.numpy as jnp
from jax.scipy.special import logsumexp

from ..errors import LawError
from .priors import Prior

COVARIATES = ("N", "D", "N_S", "D_S", "U")


def lse(*terms):
    """Elementwise log(sum(exp(terms))), stable, for broadcastable arrays."""
    return logsumexp(jnp.stack(jnp.broadcast_arrays(*terms)), axis=0)


@dataclass(frozen=True)
class Law:
    """A scaling-law specification.

    Parameters
    ----------
    name : str
        Lookup name (``bd.fit(sweep, law=name)``).
    params : tuple of str
        Coefficient names, in natural units (``E``, ``A``, ``alpha`` ...).
    log_loss : callable
        ``log_loss(theta, logN, logD) -> log L``: ``theta`` maps each name in
        ``params`` to a (broadcastable) array; pure JAX.
    priors : dict of str -> Prior
        Default prior of every coefficient.
    shears : tuple of (coef, exponent, covariate)
        Pairs that the sampler decorrelates: it samples
        ``log(coef) - exponent * mean(log covariate)`` instead of
        ``log(coef)`` (``covariate`` is ``"N"``, ``"D"``, ``"N_S"``, ``"D_S"`` or ``"U"``).
        The joint prior is unchanged (the shear has unit Jacobian).
    products : tuple of (coef, partner) or (coef, partner, pivot)
        Coefficients identified only through a product: the sampler works on
        ``log(coef * partner)`` instead of ``log(coef)``, or, with a pivot, on
        ``log(coef * partner) - log(pivot) / partner`` (the prefactor of a
        broken power law ``coef * partner * (x / pivot)^(1 / partner)`` at
        x = 1). Unit Jacobian too.
    levels : tuple of (coef, other, key)
        A sheared coefficient whose term trades with ``other * centre[key]``
        (e.g. the student's size coefficient against ``c0 * mean log L_T``):
        the sampler subtracts that product from the sheared coordinate of
        ``coef``. Unit Jacobian.
    outer : tuple of (gamma, (exponents...))
        Exponents inside a term raised to the power ``gamma``: the sampler
        works on the effective exponents ``exponent * gamma`` (on the log
        scale) and scales the matching sheared coefficients by ``gamma``,
        which straightens the ridge along which only the products are
        identified. An exact change of variables.
    description : str
        One line, shown in listings.
    covariates : tuple of str
        Sweep columns the law reads besides ``N`` and ``D`` (``("U",)``: unique tokens). Their logs
        follow ``log D`` in ``log_loss(theta, logN, logD, logU)``, each with a default (``None``)
        that gives the law without them (``U = D``), so callers that know only N and D still work.
    asymptote : str or None
        The irreducible term (``"E"``) where the loss is that coefficient plus terms that do not
        involve it; the sampler then works on the loss at the sweep's centre in its place
        (:mod:`bayesdistill.inference.coordinates`). ``None`` (default): no such term.
    """

    name: str
    params: tuple
    log_loss: Callable = field(repr=False)
    priors: dict = field(repr=False)
    shears: tuple = ()
    description: str = ""
    products: tuple = ()
    outer: tuple = ()
    levels: tuple = ()
    covariates: tuple = ()
    asymptote: str | None = None

    def __post_init__(self):
        missing = [p for p in self.params if p not in self.priors]
        if missing:
            raise LawError(f"law {self.name!r} has no default prior for {missing}")
        for coef, expo, cov in self.shears:
            if coef not in self.params or expo not in self.params:
                raise LawError(f"law {self.name!r}: shear ({coef}, {expo}) names unknown coefficients")
            if cov not in COVARIATES:
                raise LawError(f"law {self.name!r}: shear covariate must be one of {COVARIATES}, got {cov!r}")
        for coef, *others in self.products:
            if coef not in self.params or any(o not in self.params for o in others) or len(others) not in (1, 2):
                raise LawError(f"law {self.name!r}: product {(coef, *others)} names unknown coefficients")
        sheared = {c for c, _, _ in self.shears}
        for coef, other, _key in self.levels:
            if coef not in sheared or other not in self.params:
                raise LawError(f"law {self.name!r}: level ({coef}, {other}) needs a sheared coefficient "
                               "and a known partner")
        if self.asymptote is not None and self.asymptote not in self.params:
            raise LawError(f"law {self.name!r}: asymptote {self.asymptote!r} is not one of its coefficients")
        for g, exps in self.outer:
            if g not in self.params or any(e not in self.params for e in exps):
                raise LawError(f"law {self.name!r}: outer ({g}, {exps}) names unknown coefficients")

    def __call__(self, theta, N, D, **covariates):
        """Loss L(N, D) (not log) at coefficients ``theta``; ``U=...`` for a law with that covariate."""
        extra = [jnp.log(covariates[c]) if covariates.get(c) is not None else None for c in self.covariates]
        unknown = sorted(set(covariates) - set(self.covariates))
        if unknown:
            raise LawError(f"law {self.name!r} takes no covariate {unknown}; its covariates: {list(self.covariates)}")
        return jnp.exp(self.log_loss(theta, jnp.log(N), jnp.log(D), *extra))

    def spec(self) -> dict:
        """JSON-serialisable description (the function itself is found by name)."""
        return {
            "name": self.name,
            "params": list(self.params),
            "priors": {k: v.to_dict() for k, v in self.priors.items()},
            "shears": [list(s) for s in self.shears],
            "products": [list(s) for s in self.products],
            "outer": [[g, list(e)] for g, e in self.outer],
            "levels": [list(x) for x in self.levels],
            "description": self.description,
        }


def _chinchilla(theta, logN, logD):
    return lse(
        jnp.log(theta["E"]),
        jnp.log(theta["A"]) - theta["alpha"] * logN,
        jnp.log(theta["B"]) - theta["beta"] * logD,
    )


def _busbridge(theta, logN, logD):
    inner = lse(jnp.log(theta["A"]) - theta["alpha"] * logN, jnp.log(theta["B"]) - theta["beta"] * logD)
    return lse(jnp.log(theta["E"]), theta["gamma"] * inner)


def _kaplan(theta, logN, logD):
    # log L = alpha_D * log[(N_c / N)^(alpha_N / alpha_D) + D_c / D]
    ratio = theta["alpha_N"] / theta["alpha_D"]
    return theta["alpha_D"] * lse(ratio * (jnp.log(theta["N_c"]) - logN), jnp.log(theta["D_c"]) - logD)


SUPERVISED_PRIORS = {
    "E": Prior("lognormal", {"loc": 0.4, "scale": 0.6},
               "irreducible loss; median 1.5 nats, 90% in (0.56, 4.0)"),
    "A": Prior("lognormal", {"loc": 7.0, "scale": 3.0},
               "model-size coefficient; median 1100, 90% spans ~e^2 to ~e^12"),
    "B": Prior("lognormal", {"loc": 7.0, "scale": 3.0},
               "data coefficient; same prior as A"),
    "alpha": Prior("lognormal", {"loc": -1.05, "scale": 0.5},
                   "model-size exponent; median 0.35, 90% in (0.15, 0.80)"),
    "beta": Prior("lognormal", {"loc": -1.05, "scale": 0.5},
                  "data exponent; median 0.35, 90% in (0.15, 0.80)"),
    "gamma": Prior("lognormal", {"loc": -0.36, "scale": 0.5},
                   "outer exponent; median 0.7, 90% in (0.31, 1.6); 1 is Chinchilla"),
}

CHINCHILLA = Law(
    name="chinchilla",
    params=("E", "A", "B", "alpha", "beta"),
    log_loss=_chinchilla,
    priors={k: SUPERVISED_PRIORS[k] for k in ("E", "A", "B", "alpha", "beta")},
    shears=(("A", "alpha", "N"), ("B", "beta", "D")),
    description="L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022)",
    asymptote="E",
)

BUSBRIDGE = Law(
    name="busbridge",
    params=("E", "A", "B", "alpha", "beta", "gamma"),
    log_loss=_busbridge,
    priors=dict(SUPERVISED_PRIORS),
    shears=(("A", "alpha", "N"), ("B", "beta", "D")),
    description="L = E + (A/N^alpha + B/D^beta)^gamma (Busbridge et al. 2025, Eq. 1)",
    asymptote="E",
)

#: Kaplan et al. (2020), Eq. 1.5; centred on their fit (Table 2: alpha_N 0.076, alpha_D 0.103,
#: N_c 6.4e13, D_c 1.8e13), wide enough for other tokenisers and data
KAPLAN_PRIORS = {
    "N_c": Prior("lognormal", {"loc": 31.8, "scale": 4.0},
                 "size scale; median 6.4e13 (Kaplan et al.), 90% spans ~1e11 to ~4e16"),
    "D_c": Prior("lognormal", {"loc": 30.5, "scale": 4.0},
                 "data scale (tokens); median 1.8e13 (Kaplan et al.), 90% spans ~2e10 to ~1e16"),
    "alpha_N": Prior("lognormal", {"loc": -2.58, "scale": 0.7},
                     "size exponent; median 0.076 (Kaplan et al.), 90% in (0.024, 0.24)"),
    "alpha_D": Prior("lognormal", {"loc": -2.27, "scale": 0.7},
                     "data exponent; median 0.103 (Kaplan et al.), 90% in (0.033, 0.33)"),
}

KAPLAN = Law(
    name="kaplan",
    params=("N_c", "D_c", "alpha_N", "alpha_D"),
    log_loss=_kaplan,
    priors=dict(KAPLAN_PRIORS),
    description="L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020, Eq. 1.5; no irreducible term)",
)

_REGISTRY: dict[str, Law] = {}


def register_law(law: Law, *, overwrite: bool = False) -> Law:
    """Make ``law`` available by name to :func:`bayesdistill.fit` and :func:`bayesdistill.load`."""
    if not isinstance(law, Law):
        raise LawError(f"register_law expects a Law, got {type(law).__name__}")
    if law.name in _REGISTRY and not overwrite and _REGISTRY[law.name] is not law:
        raise LawError(f"a law named {law.name!r} is already registered (pass overwrite=True)")
    _REGISTRY[law.name] = law
    return law


#: modules whose import registers more built-in laws (like plugins' entry points: loaded by name on
#: the first lookup, so that ``laws`` costs nothing until a law is needed)
BUILTIN_MODULES = ("bayesdistill.laws.distillation", "bayesdistill.laws.muennighoff")


def _builtins() -> None:
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def get_law(law) -> Law:
    """The :class:`Law` for a name (or the law itself)."""
    if isinstance(law, Law):
        return law
    if law not in _REGISTRY:
        _builtins()
    if law not in _REGISTRY:
        raise LawError(f"unknown law {law!r}; registered laws: {sorted(_REGISTRY)}")
    return _REGISTRY[law]


def list_laws() -> dict[str, str]:
    """Registered law names with their one-line descriptions."""
    _builtins()
    return {name: law.description for name, law in _REGISTRY.items()}


def law_from_spec(spec: dict | str) -> Law:
    """Rebuild a law (with the priors it was fitted with) from :meth:`Law.spec` output."""
    if isinstance(spec, str):
        spec = json.loads(spec)
    base = get_law(spec["name"])
    if list(base.params) != list(spec["params"]):
        raise LawError(
            f"the registered law {spec['name']!r} has coefficients {list(base.params)}, "
            f"but the saved one had {spec['params']}; register the matching law before loading"
        )
    priors = {k: Prior.from_dict(v) for k, v in spec["priors"].items()}
    return replace(base, priors=priors, shears=tuple(map(tuple, spec["shears"])),
                   products=tuple(map(tuple, spec.get("products", []))),
                   outer=tuple((g, tuple(e)) for g, e in spec.get("outer", [])),
                   levels=tuple(map(tuple, spec.get("levels", []))))


register_law(CHINCHILLA)
register_law(BUSBRIDGE)
register_law(KAPLAN)
