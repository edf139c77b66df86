"""Compute accounting for supervised training and distillation (Busbridge et al. 2025).

Eq. 9 (distillation FLOPs) and Eq. 69 (forward FLOPs per token) of "Distillation
Scaling Laws" (ICML 2025). Functions use plain arithmetic, so they accept Python
floats, NumPy arrays and JAX arrays (also tracers under ``jax.jit``). Positivity
checks run only on Python numbers and NumPy arrays; JAX values pass unchecked.
"""

import numbers
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from .scenarios import SCENARIOS


@dataclass(frozen=True)
class ArchSettings:
    """Architecture settings entering the forward-FLOP formula (Eq. 69).

    Parameters
    ----------
    rho, g : float
        Aspect ratio d_model / n_layers; grouped-query ratio (query / kv heads).
    n_ffn, rho_ffn : float
        Feed-forward matrices (3 for SwiGLU); expansion ratio d_ffn / d_model.
    n_ctx, n_vocab : float
        Context length and vocabulary size.
    """

    rho: float = 128.0
    g: float = 1.0
    n_ffn: float = 3.0
    rho_ffn: float = 8.0 / 3.0
    n_ctx: float = 4096.0
    n_vocab: float = 32168.0

    @property
    def omega(self) -> float:
        """Layer parameters over d_model^2: ``2 + 2/g + n_ffn * rho_ffn``."""
        return 2.0 + 2.0 / self.g + self.n_ffn * self.rho_ffn

    @property
    def s1(self) -> float:
        """Context coefficient ``(1 / (rho * omega^2))^(1/3)``."""
        return (1.0 / (self.rho * self.omega**2)) ** (1.0 / 3.0)

    @property
    def s2(self) -> float:
        """Vocabulary coefficient ``(rho / omega)^(1/3)``."""
        return (self.rho / self.omega) ** (1.0 / 3.0)


PAPER_ARCH = ArchSettings()

ACCOUNTINGS = ("paper", "6ND")


def _checked(name, x):
    """Return ``x`` as float(s); raise if a concrete Python/NumPy value is not > 0."""
    if isinstance(x, (numbers.Real, np.ndarray, np.generic)):
        arr = np.asarray(x, dtype=float)
        if not np.all(arr > 0):
            raise InputError(f"{name} must be positive (got {x!r})")
        return arr if isinstance(x, np.ndarray) else float(arr)
    return x


def _check_option(kind, value, options):
    if not isinstance(value, str) or value not in options:
        raise InputError(f"unknown {kind} {value!r}; options: {', '.join(options)}")


def forward_flops(N, arch: ArchSettings = PAPER_ARCH):
    """Forward-pass FLOPs per token, ``F(N)`` of Eq. 69.

    Parameters
    ----------
    N : float or array_like
        Non-embedding parameter count.
    arch : ArchSettings, optional
        Architecture settings (default: ``PAPER_ARCH``).

    Returns
    -------
    float or array
        ``2 N (1 + s1 n_ctx / N^(1/3) + s2 n_vocab / N^(2/3))``.
    """
    N = _checked("N", N)
    xp = _xp(N)
    return xp.exp(log_forward_flops(xp.log(N), arch))


def _xp(x):
    """NumPy for NumPy values, jax.numpy for JAX arrays and tracers."""
    return np if isinstance(x, (numbers.Real, np.ndarray, np.generic)) else jnp


def log_forward_flops(u, arch: ArchSettings = PAPER_ARCH):
    """``log F(N)`` at ``u = log N``: Eq. 69 in log space, the package's one copy of it.

    NumPy in, NumPy out; JAX arrays and tracers in, JAX out (the allocation solvers differentiate it).
    """
    xp = _xp(u)
    corr = arch.s1 * arch.n_ctx * xp.exp(-u / 3.0) + arch.s2 * arch.n_vocab * xp.exp(-2.0 * u / 3.0)
    return np.log(2.0) + u + xp.log1p(corr)


def supervised_flops(N, D, accounting: str = "paper", arch: ArchSettings = PAPER_ARCH):
    """Training FLOPs of supervised training of ``N`` parameters on ``D`` tokens.

    Parameters
    ----------
    N, D : float or array_like
        Non-embedding parameter count and training tokens.
    accounting : {"paper", "6ND"}, optional
        ``"paper"``: ``3 F(N) D`` (Eq. 9); ``"6ND"``: the cruder ``6 N D``.
    arch : ArchSettings, optional
        Used by ``"paper"`` accounting.

    Returns
    -------
    float or array
    """
    _check_option("accounting", accounting, ACCOUNTINGS)
    N, D = _checked("N", N), _checked("D", D)
    if accounting == "6ND":
        return 6.0 * N * D
    return 3.0 * forward_flops(N, arch) * D


def distillation_flops_parts(N_S, D_S, N_T, D_T, scenario, arch=PAPER_ARCH):
    """Split Eq. 9 into student training, teacher logits and teacher training.

    Parameters
    ----------
    N_S, D_S : float or array_like
        Student non-embedding parameters and distillation tokens.
    N_T, D_T : float or array_like
        Teacher non-embedding parameters and teacher pretraining tokens.
    scenario : str
        A key of ``SCENARIOS``.
    arch : ArchSettings, optional
        Architecture settings (shared by teacher and student).

    Returns
    -------
    dict
        ``student``: ``3 F(N_S) D_S``; ``teacher_logits``: ``delta_lgt F(N_T) D_S``;
        ``teacher_training``: ``delta_pre 3 F(N_T) D_T`` (FLOPs each).
    """
    _check_option("scenario", scenario, SCENARIOS)
    delta_lgt, delta_pre = SCENARIOS[scenario]
    N_S, D_S = _checked("N_S", N_S), _checked("D_S", D_S)
    N_T, D_T = _checked("N_T", N_T), _checked("D_T", D_T)
    f_teacher = forward_flops(N_T, arch)
    return {
        "student": 3.0 * forward_flops(N_S, arch) * D_S,
        "teacher_logits": delta_lgt * f_teacher * D_S,
        "teacher_training": delta_pre * 3.0 * f_teacher * D_T,
    }


def distillation_flops(N_S, D_S, N_T, D_T, scenario, arch=PAPER_ARCH):
    """Total distillation FLOPs, Eq. 9.

    ``3 F(N_S) D_S + F(N_T) (delta_lgt D_S + delta_pre 3 D_T)`` with the deltas of
    ``SCENARIOS[scenario]``; parameters as in :func:`distillation_flops_parts`.

    Returns
    -------
    float or array
    """
    parts = distillation_flops_parts(N_S, D_S, N_T, D_T, scenario, arch)
    return parts["student"] + parts["teacher_logits"] + parts["teacher_training"]


def tokens_for_budget(N, C, accounting: str = "paper", arch: ArchSettings = PAPER_ARCH):
    """Tokens ``D`` with ``supervised_flops(N, D, accounting) == C``.

    Parameters
    ----------
    N, C : float or array_like
        Non-embedding parameter count and compute budget (FLOPs).
    accounting : {"paper", "6ND"}, optional
        ``"paper"``: ``C / (3 F(N))``; ``"6ND"``: ``C / (6 N)``.
    arch : ArchSettings, optional
        Used by ``"paper"`` accounting.

    Returns
    -------
    float or array
    """
    _check_option("accounting", accounting, ACCOUNTINGS)
    N, C = _checked("N", N), _checked("C", C)
    if accounting == "6ND":
        return C / (6.0 * N)
    return C / (3.0 * forward_flops(N, arch))
