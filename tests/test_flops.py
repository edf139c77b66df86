"""Tests for bayesdistill.laws.flops (Eq. 9 and Eq. 69 of Busbridge et al. 2025)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesdistill.errors import BayesDistillError
from bayesdistill.laws.flops import (
    PAPER_ARCH,
    ArchSettings,
    distillation_flops,
    distillation_flops_parts,
    forward_flops,
    supervised_flops,
    tokens_for_budget,
)
from bayesdistill.laws.scenarios import SCENARIO_DESCRIPTIONS, SCENARIOS

# (N, forward FLOPs per token) from Table 13 of the paper.
TABLE13 = [(1.821e9, 4.28e9), (1.028e8, 3.40e8), (1.261e10, 2.723e10)]


def test_arch_constants():
    assert PAPER_ARCH.omega == pytest.approx(12.0)
    assert PAPER_ARCH.s1 == pytest.approx(0.037857, rel=1e-4)
    assert PAPER_ARCH.s2 == pytest.approx(2.20128, rel=1e-5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPER_ARCH.rho = 64.0


def test_arch_custom():
    arch = ArchSettings(rho=64, g=2, n_ffn=2, rho_ffn=4)
    assert arch.omega == pytest.approx(2 + 1 + 8)
    assert arch.s1 == pytest.approx((1 / (64 * 11**2)) ** (1 / 3))
    assert arch.s2 == pytest.approx((64 / 11) ** (1 / 3))


@pytest.mark.parametrize("N, expected", TABLE13)
def test_forward_flops_matches_table13(N, expected):
    assert forward_flops(N) == pytest.approx(expected, rel=3e-3)


def test_forward_flops_formula_and_limit():
    N = 5e8
    s1, s2 = PAPER_ARCH.s1, PAPER_ARCH.s2
    expected = 2 * N * (1 + s1 * 4096 / N ** (1 / 3) + s2 * 32168 / N ** (2 / 3))
    assert forward_flops(N) == pytest.approx(expected, rel=1e-12)
    # For huge models the 2N term dominates.
    assert forward_flops(1e18) / 2e18 == pytest.approx(1.0, rel=1e-3)


def test_supervised_flops():
    N, D = 1.821e9, 20 * 1.821e9
    assert supervised_flops(N, D) == pytest.approx(3 * forward_flops(N) * D)
    assert supervised_flops(N, D, accounting="6ND") == pytest.approx(6 * N * D)
    # The paper accounting counts attention and embeddings: more than 6ND.
    assert supervised_flops(N, D) > supervised_flops(N, D, accounting="6ND")


def test_scenarios_table():
    assert dict(SCENARIOS) == {
        "best_case": (0, 0),
        "teacher_inference": (1, 0),
        "teacher_pretraining": (0, 1),
        "pretraining_inference": (1, 1),
    }
    assert set(SCENARIO_DESCRIPTIONS) == set(SCENARIOS)
    assert all(isinstance(v, str) and v for v in SCENARIO_DESCRIPTIONS.values())


def test_distillation_flops_hand_computed():
    # F(N) by hand: cube roots of 1e9 and 8e9 are 1e3 and 2e3.
    N_S, D_S, N_T, D_T = 1e9, 2e10, 8e9, 1.6e11
    s1, s2 = PAPER_ARCH.s1, PAPER_ARCH.s2
    F_S = 2e9 * (1 + s1 * 4096 / 1e3 + s2 * 32168 / 1e6)
    F_T = 1.6e10 * (1 + s1 * 4096 / 2e3 + s2 * 32168 / 4e6)
    student = 3 * F_S * D_S
    expected = {
        "best_case": student,
        "teacher_inference": student + F_T * D_S,
        "teacher_pretraining": student + 3 * F_T * D_T,
        "pretraining_inference": student + F_T * D_S + 3 * F_T * D_T,
    }
    for name, total in expected.items():
        assert distillation_flops(N_S, D_S, N_T, D_T, name) == pytest.approx(total)
        parts = distillation_flops_parts(N_S, D_S, N_T, D_T, name)
        assert set(parts) == {"student", "teacher_logits", "teacher_training"}
        assert sum(parts.values()) == pytest.approx(total)
        assert parts["student"] == pytest.approx(student)
    parts = distillation_flops_parts(N_S, D_S, N_T, D_T, "pretraining_inference")
    assert parts["teacher_logits"] == pytest.approx(F_T * D_S)
    assert parts["teacher_training"] == pytest.approx(3 * F_T * D_T)
    # Pretraining term equals the teacher's supervised cost.
    assert parts["teacher_training"] == pytest.approx(supervised_flops(N_T, D_T))


@pytest.mark.parametrize("accounting", ["paper", "6ND"])
def test_tokens_for_budget_round_trip(accounting):
    N = np.array([1.028e8, 1.821e9, 1.261e10])
    C = np.array([3e19, 1e20, 1e21])
    D = tokens_for_budget(N, C, accounting=accounting)
    C_back = supervised_flops(N, D, accounting=accounting)
    np.testing.assert_allclose(C_back, C, rtol=1e-12)
    assert tokens_for_budget(2e9, 1e21, "6ND") == pytest.approx(1e21 / 1.2e10)


def test_numpy_arrays_and_int_inputs():
    N = np.array([1.821e9, 1.028e8, 1.261e10])
    out = forward_flops(N)
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    np.testing.assert_allclose(out, [t[1] for t in TABLE13], rtol=3e-3)
    # Integer inputs are promoted to float (no int64 overflow in 6ND at scale).
    big = supervised_flops(np.array([10**10]), np.array([10**13]), accounting="6ND")
    assert big.dtype == np.float64 and big[0] == pytest.approx(6e23)
    assert isinstance(forward_flops(10**9), float)
    assert isinstance(forward_flops(np.float32(1e9)), float)
    # Broadcasting across arguments.
    grid = distillation_flops(N[:, None], 1e10, N[None, :], 2e11,
                              "pretraining_inference")
    assert grid.shape == (3, 3)


def test_jax_arrays_and_jit():
    N = jnp.array([1.821e9, 1.028e8, 1.261e10])
    np.testing.assert_allclose(np.asarray(forward_flops(N)),
                               forward_flops(np.asarray(N)), rtol=1e-5)

    @jax.jit
    def total(log_ns, log_ds, log_nt, log_dt):
        return distillation_flops(jnp.exp(log_ns), jnp.exp(log_ds), jnp.exp(log_nt),
                                  jnp.exp(log_dt), "teacher_pretraining")

    args = np.log([1e9, 2e10, 8e9, 1.6e11])
    got = float(total(*args))
    assert got == pytest.approx(distillation_flops(1e9, 2e10, 8e9, 1.6e11,
                                                   "teacher_pretraining"), rel=1e-5)
    # Differentiable under jax (needed by compute-optimal solvers).
    g = jax.grad(lambda n: jnp.log(supervised_flops(jnp.exp(n), 1e10)))(jnp.log(1e9))
    assert 0.8 < float(g) < 1.0  # d log F / d log N: slightly below 1.

    jitted_tokens = jax.jit(lambda n, c: tokens_for_budget(n, c))
    expected = tokens_for_budget(1e9, 1e20)
    assert float(jitted_tokens(1e9, 1e20)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.array([1e9, 0.0]), np.array([-5.0]),
                                 np.nan])
def test_non_positive_inputs_raise(bad):
    with pytest.raises(BayesDistillError, match="N must be positive"):
        forward_flops(bad)
    with pytest.raises(BayesDistillError, match="D must be positive"):
        supervised_flops(1e9, bad)
    with pytest.raises(BayesDistillError, match="C must be positive"):
        tokens_for_budget(1e9, bad)


@pytest.mark.parametrize("pos", ["N_S", "D_S", "N_T", "D_T"])
def test_distillation_names_bad_argument(pos):
    kwargs = {"N_S": 1e9, "D_S": 2e10, "N_T": 8e9, "D_T": 1.6e11}
    kwargs[pos] = -1.0
    with pytest.raises(BayesDistillError, match=f"{pos} must be positive"):
        distillation_flops(**kwargs, scenario="best_case")


def test_unknown_options_raise():
    with pytest.raises(BayesDistillError, match="paper, 6ND"):
        supervised_flops(1e9, 1e10, accounting="chinchilla")
    with pytest.raises(BayesDistillError, match="paper, 6ND"):
        tokens_for_budget(1e9, 1e20, accounting="6nd")
    with pytest.raises(BayesDistillError, match="best_case, teacher_inference"):
        distillation_flops(1e9, 1e10, 2e9, 4e10, "free")
    with pytest.raises(BayesDistillError, match="unknown scenario"):
        distillation_flops_parts(1e9, 1e10, 2e9, 4e10, None)
