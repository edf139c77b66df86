"""Compute-optimal distillation per draw (:mod:`bayesdistill.allocation.distillation`): SLSQP agreement, budget
accounting, the paper's findings (reference section 7), the best-case teacher, teachers to choose
from, the posterior-level frame and the error paths.

Every call uses the same four draws (Table 6 and three perturbations), so each program compiles once.
"""

from __future__ import annotations

import arviz_base as azb
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import bayesdistill as bd
from bayesdistill.allocation import distillation as al
from bayesdistill.allocation.slsqp import allocate_slsqp
from bayesdistill.allocation.teachers import best_teacher, choose_teacher
from bayesdistill.data.replica import TABLE6 as TABLE6_PROXY
from bayesdistill.data.replica import student_loss, supervised_loss
from bayesdistill.errors import BayesDistillError
from bayesdistill.inference.posterior import Posterior
from bayesdistill.laws.distillation import DISTILLATION, TABLE6
from bayesdistill.laws.flops import distillation_flops_parts, forward_flops

DISTILL = ("best_case", "teacher_inference", "teacher_pretraining", "pretraining_inference")
NEAR = 1e-4  # relative: float32 arithmetic on log FLOPs


def perturbed(n: int = 4, scale: float = 0.04, seed: int = 3) -> dict:
    """Table 6 (draw 0) and ``n - 1`` lognormal perturbations of it."""
    z = np.random.default_rng(seed).standard_normal((len(TABLE6), n))
    z[:, 0] = 0.0
    return {k: v * np.exp(scale * zk) for (k, v), zk in zip(TABLE6.items(), z)}


THETA = perturbed()


def coef(i: int) -> dict:
    return {k: float(v[i]) for k, v in THETA.items()}


def run(scenario, budget=1e22, student=1e9, theta=THETA):
    return al.allocate(DISTILLATION, theta, budget, student, scenario)


def posterior(law=DISTILLATION) -> Posterior:
    """A Posterior (1 chain x 4 draws) holding ``THETA``, read as a fit of ``law``; no sampling."""
    idata = azb.from_dict({"posterior": {k: v[None, :] for k, v in THETA.items()}})
    return Posterior(idata, law, {}, "normal", {}, {})


# ------------------------------------------------------------ against SLSQP
@pytest.mark.parametrize("scenario", DISTILL)
def test_matches_slsqp(scenario):
    for budget, student in ((1e20, 1e8), (1e23, 3e9)):
        res = run(scenario, budget, student)
        for i in (0, 3):
            ref = allocate_slsqp(DISTILLATION, coef(i), budget, student, scenario)
            assert ref["n_success"] >= 3
            assert abs(res["loss"][i] / ref["loss"] - 1) < 1e-3, (budget, i, res["loss"][i], ref)
            # the answer is self-consistent: its loss is the law's (float64, numpy) at its allocation
            lt = student_loss(student, res["D_S"][i], supervised_loss(res["N_T"][i], res["D_T"][i], coef(i)), coef(i))
            assert res["loss"][i] == pytest.approx(lt, rel=1e-5)


# ------------------------------------------------------- budget accounting
@pytest.mark.parametrize("scenario", (*DISTILL, "supervised"))
@pytest.mark.parametrize("budget, student", [(1e20, 1e8), (1e24, 3e9)])
def test_shares_sum_to_one_and_spend_the_budget(scenario, budget, student):
    res = run(scenario, budget, student)
    shares = np.stack([res["share_student"], res["share_logits"], res["share_teacher"]])
    assert np.all(shares >= 0) and np.allclose(shares.sum(0), 1.0, rtol=NEAR, atol=0)
    if scenario == "supervised":
        assert np.all(np.isnan(res["N_T"])) and np.all(res["share_student"] == 1.0)
        np.testing.assert_allclose(3 * forward_flops(student) * res["D_S"], budget, rtol=NEAR)
        return
    parts = distillation_flops_parts(student, res["D_S"].astype(float), res["N_T"].astype(float),
                                     res["D_T"].astype(float), scenario)
    np.testing.assert_allclose(sum(parts.values()), budget, rtol=NEAR)
    for key, part in zip(("share_student", "share_logits", "share_teacher"), parts.values()):
        np.testing.assert_allclose(res[key], part / budget, rtol=NEAR, atol=1e-7)
    assert np.all((res["D_S"] >= 1e6) & (res["D_S"] <= 1e17) & (res["N_T"] >= 1e6) & (res["N_T"] <= 1e17))


# --------------------------------------------------- the paper's findings
def test_teacher_inference_overtrains_the_teacher():
    for budget in (1e20, 1e22, 1e24):
        res = run("teacher_inference", budget)
        np.testing.assert_allclose(res["D_T"], 1e17, rtol=NEAR)  # D_T* runs to its bound
        assert np.all((res["N_T"] > 1e8) & (res["N_T"] < 1e11))  # N_T interior: the bound is only on D_T
        assert np.all(res["bounds"] == al.BOUND_FLAGS["D_T_max"])


def compute_optimal_tokens_per_param(c: dict, budget: float) -> float:
    """D*/N* of the supervised law at ``budget`` FLOPs (3 F(N) D), on a fine grid of sizes (numpy)."""
    n = np.geomspace(1e6, 1e14, 80001)
    d = budget / (3 * forward_flops(n))
    i = np.argmin(supervised_loss(n, d, c))
    return d[i] / n[i]


def test_teacher_pretraining_teacher_is_compute_optimal():
    ratios = []
    for budget, student in ((1e20, 1e9), (1e21, 1e9), (1e22, 1e9), (1e23, 1e9), (1e24, 1e10)):
        res = run("teacher_pretraining", budget, student)
        assert np.all(res["share_teacher"] > 0.05)  # the teacher matters here (else the split is flat)
        m_t = res["D_T"] / res["N_T"]
        c_t = 3 * forward_flops(res["N_T"].astype(float)) * res["D_T"]
        for i in range(4):  # supervised compute-optimal at its own compute, for every draw
            assert m_t[i] == pytest.approx(compute_optimal_tokens_per_param(coef(i), c_t[i]), rel=0.05)
        ratios.append(m_t[0])
    # Table 6 (alpha ~ beta): a constant number of tokens per parameter over four decades of budget
    assert 14 < min(ratios) and max(ratios) < 17


def test_distillation_wins_small_loses_large():
    """Table 6 (draw 0): the reference's section 7."""
    def loss(scenario, budget, student=1e9):
        return run(scenario, budget, student)["loss"][0]

    # an existing or free teacher helps a small student at small compute
    assert loss("best_case", 1e20, 1e8) < loss("teacher_inference", 1e20, 1e8) < loss("supervised", 1e20, 1e8)
    gain = {c: loss("supervised", c) - loss("best_case", c) for c in (1e20, 1e22, 1e24, 1e25)}
    assert gain[1e20] > gain[1e22] > 0 > gain[1e24]  # even a free teacher: supervised catches up
    for c in (1e20, 1e22, 1e24, 1e25):  # a teacher trained for one student: supervised training wins
        assert loss("supervised", c) < loss("pretraining_inference", c)
        assert loss("best_case", c) <= loss("teacher_inference", c) <= loss("pretraining_inference", c) + 1e-6


# ------------------------------------------------------------ best case
def test_best_case_teacher_loss_and_cheapest_teacher():
    res = run("best_case")
    assert np.all(res["bounds"] == 0)
    for i in range(4):
        c = coef(i)
        # the optimum is interior: the strongest reachable teacher is worse (capacity gap)
        l_min = supervised_loss(1e17, 1e17, c)
        assert student_loss(1e9, res["D_S"][i], l_min, c) > res["loss"][i] * (1 + 1e-3)
        # the reported teacher reaches L_T*, with the least compute (a fine grid of sizes as reference)
        assert supervised_loss(res["N_T"][i], res["D_T"][i], c) == pytest.approx(res["L_T"][i], rel=1e-4)
        n = np.geomspace(1e8, 1e12, 40001)
        r = (res["L_T"][i] - c["E"]) ** (1 / c["gamma"]) - c["A"] * n ** -c["alpha"]
        d = np.where(r > 0, (c["B"] / np.where(r > 0, r, 1)) ** (1 / c["beta"]), np.inf)
        least = np.min(3 * forward_flops(n) * d)
        assert 3 * forward_flops(float(res["N_T"][i])) * res["D_T"][i] == pytest.approx(least, rel=2e-3)


def test_level_set_tokens_bisection_matches_closed_form():
    th = {k: jnp.asarray(v) for k, v in THETA.items()}
    u, llt = jnp.log(jnp.asarray([3e8, 1e9, 1e10, 1e11])), jnp.log(jnp.asarray([2.6, 2.3, 2.1, 1.95]))
    closed = al._level_set_tokens(DISTILLATION.log_loss, th, u, llt)
    wrapped = lambda t, a, b: DISTILLATION.log_loss(t, a, b)  # noqa: E731 (not the law's own function: bisection)
    generic = jax.jit(lambda *x: al._level_set_tokens(wrapped, *x))(th, u, llt)
    np.testing.assert_allclose(closed, generic, atol=1e-4)
    np.testing.assert_allclose(DISTILLATION.log_loss(th, u, closed), llt, atol=1e-5)


# ------------------------------------------------------ inputs and status
def test_single_draw_from_table6():
    for table in (TABLE6, TABLE6_PROXY):
        one = al.allocate(DISTILLATION, table, 1e22, 1e9, "teacher_pretraining")
        assert all(np.shape(v) == (1,) for v in one.values())
    four = run("teacher_pretraining")
    assert one["loss"][0] == pytest.approx(four["loss"][0], rel=1e-5)


def test_status_flags_a_bound():
    student = 1e8
    least = 1e6 * (3 * forward_flops(student) + 4 * forward_flops(1e6))
    res = run("pretraining_inference", 1.5 * least, student)
    assert np.all(res["bounds"] & (al.BOUND_FLAGS["D_S_min"] | al.BOUND_FLAGS["D_T_min"] | al.BOUND_FLAGS["N_T_min"]))
    frame = al.optimal(posterior(), budget=1.5 * least, student_size=student, scenario="pretraining_inference")
    assert (frame["status"] == "bound").all() and frame["bounds"].str.len().gt(0).all()
    ok = al.optimal(posterior(), budget=1e22, student_size=1e9, scenario="teacher_inference")
    assert (ok["status"] == "ok").all() and (ok["bounds"] == "D_T_max").all()  # its own answer, not a failure


@pytest.mark.parametrize("kwargs, match", [
    ({"scenario": "distil"}, "unknown scenario"),
    ({"budget": 0.0}, "budget must be positive"),
    ({"budget": float("nan")}, "budget must be positive"),
    ({"budget": "lots"}, "budget must be one positive number"),
    ({"student_size": 1e5}, "outside the bounds"),
    ({"student_size": 1e18}, "outside the bounds"),
    ({"budget": 1e15}, "too small"),
    ({"budget": 1e15, "scenario": "supervised"}, "too small"),
    ({"budget": 1e30, "scenario": "best_case", "student_size": 1e6}, "too large"),
    ({"budget": 1e30, "scenario": "supervised", "student_size": 1e6}, "too large"),
])
def test_infeasible_inputs_raise(kwargs, match):
    args = {"budget": 1e22, "student_size": 1e9, "scenario": "teacher_inference", **kwargs}
    with pytest.raises(BayesDistillError, match=match):
        al.allocate(DISTILLATION, THETA, args["budget"], args["student_size"], args["scenario"])


def test_law_and_theta_errors():
    busbridge = bd.get_law("busbridge")
    with pytest.raises(BayesDistillError, match="needs a distillation law"):
        al.allocate(busbridge, THETA, 1e22, 1e9, "best_case")
    sup = al.allocate(busbridge, {k: THETA[k] for k in busbridge.params}, 1e22, 1e9, "supervised")
    np.testing.assert_allclose(sup["loss"], run("supervised")["loss"], rtol=1e-6)
    with pytest.raises(BayesDistillError, match="lacks the coefficients"):
        al.allocate(DISTILLATION, {k: v for k, v in THETA.items() if k != "c0"}, 1e22, 1e9, "best_case")


# -------------------------------------------------------- posterior level
def test_optimal_frame_and_supervised_posteriors():
    frame = al.optimal(posterior(), budget=1e21, student_size=3e8, scenario="pretraining_inference")
    assert list(frame.columns) == [*al.COLUMNS, "status", "bounds"] and len(frame) == 4
    assert frame.index.name == "draw" and frame.attrs["scenario"] == "pretraining_inference"
    np.testing.assert_allclose(frame["loss"], run("pretraining_inference", 1e21, 3e8)["loss"])
    supervised = posterior(bd.get_law("busbridge"))
    with pytest.raises(BayesDistillError, match="needs a distillation fit"):
        al.optimal(supervised, budget=1e21, student_size=3e8, scenario="best_case")
    sup = al.optimal(supervised, budget=1e21, student_size=3e8, scenario="supervised")
    assert sup["N_T"].isna().all() and (sup["status"] == "ok").all()


# ------------------------------------------------------ existing teachers
TEACHERS = pd.DataFrame({"N_T": [5e8, 2e9, 8e9, 1e16], "D_T": [1e12, 4e12, 2e12, 1e13]})


def test_choose_teacher_matches_brute_force():
    budget, student = 1e21, 3e8
    res = choose_teacher(DISTILLATION, THETA, TEACHERS, budget, student)
    d_s = budget / (3 * forward_flops(student) + forward_flops(TEACHERS["N_T"].to_numpy()))
    assert d_s[-1] < 1e6 and not np.any(res["teacher"] == 3)  # the 1e16 teacher's logits are unaffordable
    for i in range(4):
        losses = [student_loss(student, d, supervised_loss(n, t, coef(i)), coef(i))
                  for d, n, t in zip(d_s[:3], TEACHERS["N_T"][:3], TEACHERS["D_T"][:3])]
        assert res["teacher"][i] == np.argmin(losses)
        assert res["loss"][i] == pytest.approx(min(losses), rel=1e-5)
        assert res["D_S"][i] == pytest.approx(d_s[np.argmin(losses)], rel=1e-9)
    free = choose_teacher(DISTILLATION, THETA, TEACHERS, budget, student, pay_logits=False)
    assert np.all(free["D_S"] == pytest.approx(budget / (3 * forward_flops(student))))
    assert np.all(free["loss"] <= res["loss"])


def test_choose_teacher_given_losses():
    measured = pd.DataFrame({"L_T": [2.4, 2.1], "N_T": [1e9, 1e10]})
    res = choose_teacher(DISTILLATION, THETA, measured, 1e22, 1e9)
    np.testing.assert_allclose(res["L_T"], measured["L_T"].to_numpy()[res["teacher"]], rtol=1e-6)
    with pytest.raises(BayesDistillError, match="N_T"):
        choose_teacher(DISTILLATION, THETA, [{"L_T": 2.2}], 1e22, 1e9)
    only_loss = choose_teacher(DISTILLATION, THETA, [{"L_T": 2.2}, {"L_T": 2.0}], 1e22, 1e9, pay_logits=False)
    assert set(only_loss["teacher"]) <= {0, 1}
    with pytest.raises(BayesDistillError, match="L_T"):
        choose_teacher(DISTILLATION, THETA, [{"D_T": 1e12}], 1e22, 1e9, pay_logits=False)
    frame = best_teacher(posterior(), TEACHERS, budget=1e21, student_size=3e8)
    assert len(frame) == 4 and sum(frame.attrs["p_best"].values()) == pytest.approx(1.0)
