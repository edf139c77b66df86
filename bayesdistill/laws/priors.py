"""Prior specifications that round-trip through JSON.

A :class:`Prior` names a distribution family and its parameters; it becomes a
numpyro distribution only inside the model. Keeping priors as plain data lets
a saved posterior record exactly which priors produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import LawError

#: family -> (numpyro class name, parameter names in order)
FAMILIES = {
    "normal": ("Normal", ("loc", "scale")),
    "lognormal": ("LogNormal", ("loc", "scale")),
    "halfnormal": ("HalfNormal", ("scale",)),
    "halfcauchy": ("HalfCauchy", ("scale",)),
    "exponential": ("Exponential", ("rate",)),
    "gamma": ("Gamma", ("concentration", "rate")),
    "uniform": ("Uniform", ("low", "high")),
    "truncnormal": ("TruncatedNormal", ("loc", "scale", "low", "high")),
    "studentt": ("StudentT", ("df", "loc", "scale")),
    # a prior on a sheared coefficient's TERM at the sweep's reference point, not on the coefficient:
    # sqrt(coef / x_ref^exponent) ~ HalfNormal(scale) (see bayesdistill.inference.model.sample_coefficients)
    "term_halfnormal": (None, ("scale",)),
    # the misfit beyond the fitted compute (kappa, omega) learnt across public sweeps, shipped in
    # models/misfit_prior.json (see bayesdistill.inference.misfit)
    "population": (None, ()),
}


@dataclass(frozen=True)
class Prior:
    """A prior distribution as data.

    Parameters
    ----------
    family : str
        One of ``normal``, ``lognormal``, ``halfnormal``, ``halfcauchy``,
        ``exponential``, ``gamma``, ``uniform``, ``truncnormal``, ``studentt``,
        ``term_halfnormal`` (sheared coefficients only): a prior on the
        term ``coef / x^exponent`` at the sweep's reference point ``x`` rather
        than on ``coef``: its square root is HalfNormal(``scale``), so the
        term may vanish (the student's data term of the distillation law),
        or ``population`` (``kappa`` and ``omega`` only, no parameters): the
        prior learnt across public sweeps that ships with the package.
    params : dict
        The family's parameters by numpyro name, e.g. ``{"loc": 0, "scale": 1}``.
    note : str
        What the prior means, in loss units where possible (shown in docs).

    Examples
    --------
    >>> Prior("lognormal", {"loc": 0.0, "scale": 0.5}).to_numpyro()
    <numpyro.distributions.continuous.LogNormal object at ...>
    """

    family: str
    params: dict = field(default_factory=dict)
    note: str = ""

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise LawError(f"unknown prior family {self.family!r}; choose from {sorted(FAMILIES)}")
        names = FAMILIES[self.family][1]
        missing = [n for n in names if n not in self.params]
        extra = [n for n in self.params if n not in names]
        if missing or extra:
            raise LawError(
                f"prior {self.family!r} takes parameters {list(names)}; "
                f"missing {missing}, unexpected {extra}"
            )
        for n, v in self.params.items():
            if not isinstance(v, (int, float)):
                raise LawError(f"prior {self.family!r} parameter {n!r} must be a number, got {v!r}")
        positive = {"scale", "rate", "concentration", "df"}
        for n in positive & set(self.params):
            if self.params[n] <= 0:
                raise LawError(f"prior {self.family!r}: {n} must be positive, got {self.params[n]}")
        if "low" in self.params and "high" in self.params and self.params["low"] >= self.params["high"]:
            raise LawError(f"prior {self.family!r}: low must be below high")

    def to_numpyro(self):
        """The numpyro distribution (numpyro is imported only here)."""
        import numpyro.distributions as dist

        ctor, names = FAMILIES[self.family]
        if ctor is None:
            raise LawError(f"prior {self.family!r} is a prior on a law's term, defined only inside the model")
        return getattr(dist, ctor)(**{n: float(self.params[n]) for n in names})

    def widened(self, factor: float) -> Prior:
        """The same prior with its scale parameters multiplied by ``factor``."""
        p = dict(self.params)
        for n in ("scale",):
            if n in p:
                p[n] = p[n] * factor
        if "rate" in p:
            p["rate"] = p["rate"] / factor
        if self.family == "uniform":
            mid, half = (p["low"] + p["high"]) / 2, (p["high"] - p["low"]) / 2
            p["low"], p["high"] = mid - factor * half, mid + factor * half
        return Prior(self.family, p, self.note)

    def to_dict(self) -> dict:
        return {"family": self.family, "params": dict(self.params), "note": self.note}

    @classmethod
    def from_dict(cls, d) -> Prior:
        if isinstance(d, Prior):
            return d
        if isinstance(d, (tuple, list)):
            family, *values = d
            if family not in FAMILIES:
                raise LawError(f"prior {d!r}: unknown family {family!r}; choose from {sorted(FAMILIES)}")
            names = FAMILIES[family][1]
            if len(values) != len(names):
                raise LawError(f"prior {d!r}: {family!r} takes {len(names)} numbers {list(names)}")
            return cls(family, dict(zip(names, values)))
        if isinstance(d, dict) and "family" in d:
            return cls(d["family"], dict(d.get("params", {})), d.get("note", ""))
        raise LawError(
            f"cannot read prior {d!r}: give a Prior, a dict with 'family' and 'params', "
            "or a tuple like ('lognormal', 0.0, 0.5)"
        )

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.family}({args})"
