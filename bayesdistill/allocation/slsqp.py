"""The paper's method as a reference: SciPy SLSQP on Eq. 10 for one draw, in float64.

Used by the tests and the benchmark to check :func:`bayesdistill.allocate.allocate`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import BayesDistillError
from ..laws.flops import PAPER_ARCH, forward_flops, log_forward_flops
from ..laws.scenarios import SCENARIOS
from .distillation import HI, LO, LOG3, check_budget, check_law, check_scenario, teacher_range


@functools.lru_cache(maxsize=16)
def _slsqp_functions(log_loss, student_log_loss, scenario, arch):
    """Jitted value-and-gradient of log L_S and of the log-budget constraint in y = (log D_S, log N_T, log D_T)."""
    dl, dp = SCENARIOS[scenario]

    def objective(theta, s, y):
        return student_log_loss(theta, s, y[0], log_loss(theta, y[1], y[2]))

    def constraint(theta, s, log_c, y):
        lft = log_forward_flops(y[1], arch)
        terms = [LOG3 + log_forward_flops(s, arch) + y[0]] + [lft + y[0]] * dl + [LOG3 + lft + y[2]] * dp
        return jax.scipy.special.logsumexp(jnp.stack(terms)) - log_c

    return (jax.jit(jax.value_and_grad(objective, argnums=2)), jax.jit(constraint),
            jax.jit(jax.grad(constraint, argnums=3)))


def allocate_slsqp(law, theta: Mapping, budget, student_size, scenario: str, arch=PAPER_ARCH, *,
                   starts=None) -> dict:
    """The paper's method for one draw: SciPy SLSQP on Eq. 10 in float64, best of several starts.

    Variables ``(log D_S, log N_T, log D_T)`` in [log 1e6, log 1e17], objective ``log L_S``, equality
    constraint ``log FLOPs = log C``, exact gradients by JAX. ``starts`` (default: teachers of 1e7
    to 1e12 parameters at 20 tokens per parameter, half of C for the student) are
    ``(log D_S, log N_T, log D_T)`` triples. Other arguments as in :func:`allocate`, with one draw
    in ``theta`` and a distillation scenario. Returns floats ``D_S, N_T, D_T, loss`` and
    ``n_success``, the starts that met the constraint.
    """
    from scipy.optimize import minimize as scipy_minimize

    if check_scenario(scenario) == "supervised":
        raise BayesDistillError("allocate_slsqp solves the distillation scenarios; 'supervised' has nothing to optimise")
    check_law(law, scenario)
    C, N_S = check_budget(budget, student_size)
    teacher_range(C, N_S, scenario, arch)
    fg, con, con_grad = _slsqp_functions(law.log_loss, law.student_log_loss, scenario, arch)
    lds0 = min(max(math.log(C / 6 / forward_flops(N_S, arch)), LO), HI)
    starts = starts if starts is not None else [(lds0, u, min(u + math.log(20), HI))
                                                for u in np.log(np.geomspace(1e7, 1e12, 6))]
    best, n_ok = None, 0
    with jax.enable_x64(True):
        th = {k: jnp.asarray(float(np.ravel(theta[k])[0]), jnp.float64) for k in law.params}
        s, lc = jnp.asarray(math.log(N_S), jnp.float64), jnp.asarray(math.log(C), jnp.float64)
        cons = {"type": "eq", "fun": lambda y: float(con(th, s, lc, jnp.asarray(y))),
                "jac": lambda y: np.asarray(con_grad(th, s, lc, jnp.asarray(y)))}
        for y0 in starts:
            r = scipy_minimize(lambda y: tuple(np.asarray(a) for a in fg(th, s, jnp.asarray(y))),
                               np.asarray(y0, float), jac=True, method="SLSQP", bounds=[(LO, HI)] * 3,
                               constraints=[cons], options={"ftol": 1e-12, "maxiter": 500})
            if abs(cons["fun"](r.x)) < 1e-7:
                n_ok += 1
                best = r if best is None or r.fun < best.fun else best
    if best is None:
        raise BayesDistillError("SLSQP met the budget constraint from no start")
    d_s, n_t, d_t = np.exp(best.x)
    return {"D_S": d_s, "N_T": n_t, "D_T": d_t, "loss": math.exp(best.fun), "n_success": n_ok}
