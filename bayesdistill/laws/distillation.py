"""The distillation scaling law (Busbridge et al. 2025, Eq. 8) and its variants.

A :class:`DistillationLaw` is a :class:`~bayesdistill.laws.Law` whose
coefficients are the supervised law's (Eq. 1) followed by the distillation
coefficients. ``log_loss`` is still the supervised law (so supervised runs and
``Posterior.predict`` work unchanged); ``student_log_loss`` gives the student's
log loss from the student's size and tokens and the teacher's log loss:

    log L_S = LSE(log L_T, -c0 log L_T - c1 f1 LSE(0, (log L_T - log Ltilde_S - log d1) / f1)
                           + gamma' LSE(log A' - alpha' log N_S, log B' - beta' log D_S))

(Eq. 49 with the errata of the reference applied), with Ltilde_S the
supervised loss of the same student. c1 and f1 enter only as c1*f1 and 1/f1:
the sampler works on log(c1*f1) and log(f1), and reports c1 too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import jax.numpy as jnp

from ..errors import BayesDistillError
from .base import BUSBRIDGE, SUPERVISED_PRIORS, Law, lse, register_law
from .priors import Prior

DISTILL_PARAMS = ("A_prime", "B_prime", "alpha_prime", "beta_prime", "gamma_prime", "c0", "c1", "f1", "d1")


@dataclass(frozen=True)
class DistillationLaw(Law):
    """A joint supervised + distillation law.

    Extra parameters
    ----------------
    supervised_params : tuple of str
        The leading coefficients that belong to the supervised law.
    student_log_loss : callable
        ``student_log_loss(theta, logN_S, logD_S, logL_T) -> log L_S`` (pure JAX).
    """

    supervised_params: tuple = ()
    student_log_loss: Callable = field(default=None, repr=False)

    @property
    def distill_params(self) -> tuple:
        return tuple(p for p in self.params if p not in self.supervised_params)


def _capacity_factor(theta, logLT, logLtilde):
    """log of L_T^-c0 (1 + (L_T / (Ltilde d1))^(1/f1))^(-c1 f1): the broken power law in L_T."""
    k = theta["c1"] * theta["f1"]
    u = (logLT - logLtilde - jnp.log(theta["d1"])) / theta["f1"]
    return -theta["c0"] * logLT - k * jnp.logaddexp(0.0, u)


def _student_term(theta, logNS, logDS, prime=True):
    s = "_prime" if prime else ""
    inner = lse(jnp.log(theta["A" + s]) - theta["alpha" + s] * logNS,
                jnp.log(theta["B" + s]) - theta["beta" + s] * logDS)
    return theta["gamma_prime"] * inner


def _full(theta, logNS, logDS, logLT):
    logLtilde = BUSBRIDGE.log_loss(theta, logNS, logDS)
    return lse(logLT, _capacity_factor(theta, logLT, logLtilde) + _student_term(theta, logNS, logDS))


def _no_bpl(theta, logNS, logDS, logLT):
    return lse(logLT, -theta["c0"] * logLT + _student_term(theta, logNS, logDS))


def _tied(theta, logNS, logDS, logLT):
    logLtilde = BUSBRIDGE.log_loss(theta, logNS, logDS)
    return lse(logLT, _capacity_factor(theta, logLT, logLtilde) + _student_term(theta, logNS, logDS, prime=False))


DISTILL_PRIORS = {
    "A_prime": Prior("lognormal", {"loc": 8.0, "scale": 3.0}, "student size coefficient A'"),
    "B_prime": Prior("term_halfnormal", {"scale": 1.0},
                     "student's data term B'/D_S^beta' at the sweep's smallest D_S: its square root is "
                     "HalfNormal(1) (median 0.45, 95% below 3.8, in units of the inner term, whose size "
                     "term is ~3.5 on the replica); it may vanish"),
    "alpha_prime": Prior("lognormal", {"loc": -0.9, "scale": 0.6}, "student size exponent; median 0.41"),
    "beta_prime": Prior("lognormal", {"loc": -0.9, "scale": 0.6}, "student token exponent; median 0.41"),
    "gamma_prime": Prior("lognormal", {"loc": -0.36, "scale": 0.5}, "outer exponent; median 0.7"),
    "c0": Prior("lognormal", {"loc": 0.5, "scale": 0.8}, "power of the teacher loss; median 1.6"),
    "c1": Prior("lognormal", {"loc": 4.0, "scale": 2.0}, "strength of the capacity-gap break; median 55"),
    "f1": Prior("lognormal", {"loc": -1.6, "scale": 1.0}, "sharpness of the break (small = sharp); median 0.2"),
    "d1": Prior("lognormal", {"loc": 0.2, "scale": 0.3}, "break location L_T / Ltilde_S; median 1.22"),
}

#: Table 6 of the paper: supervised (Eq. 1) and distillation (Eq. 8) coefficients (read-only).
TABLE6 = MappingProxyType({
    "E": 1.220, "A": 3355.0, "B": 18186.0, "alpha": 0.408, "beta": 0.431, "gamma": 0.452,
    "A_prime": 2243.0, "B_prime": 24181.0, "alpha_prime": 0.321, "beta_prime": 0.637,
    "gamma_prime": 0.764, "c0": 2.549, "c1": 522.6, "f1": 0.090, "d1": 1.315,
})

#: relative prior width (lognormal scale) of the Table 6 preset: ~25% on exponents,
#: a factor ~2.7 on the large coefficients, and c1 left nearly free (degenerate in the paper).
_PAPER_WIDTH = {"E": 0.25, "A": 1.0, "B": 1.0, "alpha": 0.25, "beta": 0.25, "gamma": 0.25,
                "A_prime": 1.0, "B_prime": 1.0, "alpha_prime": 0.25, "beta_prime": 0.25,
                "gamma_prime": 0.25, "c0": 0.4, "c1": 1.5, "f1": 0.5, "d1": 0.15}


def paper_priors(params=None) -> dict[str, Prior]:
    """Priors centred on the paper's Table 6, far wider than its bootstrap intervals.

    For sweeps with few runs on a setup like the paper's (C4-like data, ~32k
    vocabulary); on other data the supervised part may be off by a constant.
    """
    import math

    return {k: Prior("lognormal", {"loc": math.log(TABLE6[k]), "scale": _PAPER_WIDTH[k]},
                     f"Table 6 value {TABLE6[k]:g}, lognormal scale {_PAPER_WIDTH[k]}")
            for k in (params or TABLE6)}


def _make(name, params, fn, description):
    sup = BUSBRIDGE.params
    return DistillationLaw(
        name=name, params=sup + params, log_loss=BUSBRIDGE.log_loss,
        priors={**SUPERVISED_PRIORS, **{k: DISTILL_PRIORS[k] for k in params}},
        shears=BUSBRIDGE.shears + ((("A_prime", "alpha_prime", "N_S"), ("B_prime", "beta_prime", "D_S"))
                                   if "A_prime" in params else ()),
        description=description, supervised_params=sup, student_log_loss=fn, asymptote=BUSBRIDGE.asymptote,
        products=(("c1", "f1", "d1"),) if "c1" in params else (),
        # the student's level: c0 log L_T trades with log A' (correlation 0.96 on the replica)
        levels=(("A_prime", "c0", "L_T"),) if "A_prime" in params else (),
        outer=(("gamma", ("alpha", "beta")),) + ((("gamma_prime", ("alpha_prime", "beta_prime")),)
                                                 if "alpha_prime" in params else ()),
    )


DISTILLATION = _make("distillation", DISTILL_PARAMS, _full,
                     "Eq. 8 (A', B' free, broken power law in L_T) jointly with Eq. 1")
DISTILLATION_NO_BPL = _make("distillation_nobpl", ("A_prime", "B_prime", "alpha_prime", "beta_prime",
                                                    "gamma_prime", "c0"), _no_bpl,
                            "Eq. 8 without the broken-power-law factor (no capacity gap)")
DISTILLATION_TIED = _make("distillation_tied", ("gamma_prime", "c0", "c1", "f1", "d1"), _tied,
                          "Eq. 8 with A', B', alpha', beta' tied to the supervised A, B, alpha, beta")

for _law in (DISTILLATION, DISTILLATION_NO_BPL, DISTILLATION_TIED):
    register_law(_law)


def is_distillation(law) -> bool:
    """True for a distillation law (a joint supervised + distillation fit): the package's one test of it."""
    return getattr(law, "student_log_loss", None) is not None


def require_distillation(law, needs: str, kind: str = "fit", otherwise: str = "") -> None:
    """Raise unless ``law`` is a distillation law; ``needs`` names what needs it ("recommendations need")."""
    if not is_distillation(law):
        raise BayesDistillError(f"{needs} a distillation {kind}; this is the supervised law "
                                f"{getattr(law, 'name', law)!r}: fit with law='distillation'"
                                + (f" ({otherwise})" if otherwise else ""))
