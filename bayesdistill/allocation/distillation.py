"""Compute-optimal distillation (Eq. 10), solved for every posterior draw in JAX.

For a budget ``C`` and a student of ``N_S`` parameters, minimise ``L_S(N_S, D_S, L(N_T, D_T))``
over ``D_S, N_T, D_T`` in [1e6, 1e17] with the FLOPs of Eq. 9 (``3 F(N) D`` accounting) equal to
``C``. In log space, elementwise over draws, the constraint removed by parameterisation:

- ``supervised``: ``D = C / (3 F(N_S))``; nothing to optimise.
- ``best_case``: the teacher is free, ``D_S = C / (3 F(N_S))``; search ``log L_T`` over the losses
  a supervised model within the bounds reaches (``L_S`` is not monotone in ``L_T``: capacity
  gap), then report the cheapest teacher (least ``3 F(N) D``) reaching it, as the paper does.
- ``teacher_inference``: ``D_S = C / (3 F(N_S) + F(N_T))``; ``D_T`` is free, so the teacher moves
  along one path: ``N_T`` grows at ``D_T = 1e17`` (the cheapest way to any teacher loss), and
  below the smallest feasible ``N_T``, ``D_T`` shrinks instead.
- ``teacher_pretraining``, ``pretraining_inference``: search ``(log N_T, z)``, a share
  ``sigmoid(z)`` of ``C`` training the teacher and the rest paying the student (and logits).

:func:`minimize` (a grid, then a batched pattern search, in one ``lax.fori_loop``) does every
search; one jitted program serves the four distillation scenarios, fed chunks of ``CHUNK`` draws
(so any number of draws, one included, compiles once). In float32 the optimum is resolved to the
last digit of the loss: where the loss is flat in the allocation (e.g. a teacher taking a few
percent of C) the reported split is correspondingly loose. :func:`allocate_slsqp` is the paper's
method (SciPy SLSQP, float64) for one draw, kept as the reference.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.nn import log_sigmoid

from .._checks import positive_number
from ..errors import BayesDistillError
from ..laws.base import BUSBRIDGE, CHINCHILLA
from ..laws.distillation import require_distillation
from ..laws.flops import PAPER_ARCH, forward_flops, log_forward_flops
from ..laws.scenarios import OPTIONS, SCENARIOS
from .search import BOUNDS, bisect

COLUMNS = ("D_S", "N_T", "D_T", "L_T", "loss", "share_student", "share_logits", "share_teacher")
#: bit of each active bound in ``allocate(...)["bounds"]``
BOUND_FLAGS = {"D_S_min": 1, "D_S_max": 2, "N_T_min": 4, "N_T_max": 8, "D_T_min": 16, "D_T_max": 32,
               "L_T_min": 64, "L_T_max": 128}
LO, HI = math.log(BOUNDS[0]), math.log(BOUNDS[1])
LOG3 = math.log(3.0)
_MODE = {s: 2 if pre else lgt for s, (lgt, pre) in SCENARIOS.items()}  # solver branch: 2 trains a teacher
_TOL = 1e-3  # log units: closer than this to a bound counts as on it
_ZMAX = 80.0  # cap of the share logit z: share 1 - 1e-35
GRID, GRID2, ITERS = 32, 16, 24
CHUNK = 512  # draws per call of a jitted solver: one compilation serves any number of draws


def _logit_exp(a):
    """``logit(exp(a))`` for ``a < 0`` (+_ZMAX for ``a >= 0``), clipped to [-_ZMAX, _ZMAX]."""
    a_neg = jnp.minimum(a, -1e-6)
    return jnp.clip(jnp.where(a < 0, a_neg - jnp.log(-jnp.expm1(a_neg)), _ZMAX), -_ZMAX, _ZMAX)


def minimize(f, lo, hi, z_range=None, oned=False, grid: int = GRID, iters: int = ITERS):
    """Minimise an elementwise ``f(u)``, ``u`` in [lo, hi], or ``f(u, z)``, ``z`` in ``z_range(u)``.

    A grid (``grid`` points, or ``grid x grid`` with ``z`` spread over its range at each ``u``;
    ``oned``: the ``z`` range is a point, spend ``grid^2`` points on ``u``), then a batched
    Hooke-Jeeves pattern search from its best point ``x``: ``f`` at ``x`` and on the stencil
    ``x + d + h * cell * {-1, 0, 1}^dim`` (``d``: the last move, so steps grow along a valley);
    move to the best point if it beats ``x``, else drop ``d``, or halve ``h`` if ``d`` was zero.
    One loop, one call of ``f`` per step on a batch of ``3^dim + 1`` points (one copy of ``f`` to
    compile). Derivative-free: it settles where the float32 loss stops changing.

    Returns ``(x, f(x))``: ``x`` a tuple ``(u,)`` or ``(u, z)`` of arrays shaped like ``lo``.
    """
    lo, hi = jnp.broadcast_arrays(lo, hi)
    d = 1 if z_range is None else 2
    offsets = np.array([*itertools.product((-1.0, 0.0, 1.0), repeat=d), (0.0,) * d])
    m = len(offsets)  # the last point is x itself (pattern phase) or one more grid point
    n_grid = grid**d
    grid_steps = -(-n_grid // m)
    cell = (hi - lo) / jnp.where(oned, n_grid - 1, grid - 1)
    batch = (m,) + (1,) * lo.ndim
    off = [offsets[:, k].reshape(batch) for k in range(d)]
    is_x = (np.arange(m) == m - 1).reshape(batch)

    def body(i, state):
        x, fb, step, h, z_cell = state
        searching = i >= grid_steps
        idx = jnp.minimum(i * m + jnp.arange(m), n_grid - 1).reshape(batch)
        u_grid = lo + cell * (jnp.where(oned, idx, idx // grid) if d == 2 else idx)
        u_pat = jnp.where(is_x, x[0], jnp.clip(x[0] + step[0] + off[0] * h * cell, lo, hi))
        pts = (jnp.where(searching, u_pat, u_grid),)
        if d == 2:  # one call of z_range per step: z on the grid, or the stencil clipped to the range
            z_lo, z_hi = z_range(pts[0])
            z_grid = z_lo + (z_hi - z_lo) * ((idx % grid) / (grid - 1))
            z_pat = jnp.where(is_x, x[1], jnp.clip(x[1] + step[1] + off[1] * h * z_cell, z_lo, z_hi))
            pts += (jnp.where(searching, z_pat, z_grid),)
            cells = jnp.where(searching, z_cell, (z_hi - z_lo) / (grid - 1))
        fx = jnp.nan_to_num(f(*pts), nan=jnp.inf)
        j = jnp.where(searching & (fx[-1] <= fx.min(axis=0)), m - 1, jnp.argmin(fx, axis=0))[None]
        fj = jnp.take_along_axis(fx, j, axis=0)[0]
        take = fj < fb
        new = tuple(jnp.where(take, jnp.take_along_axis(p, j, axis=0)[0], xi) for p, xi in zip(pts, x))
        still = sum(jnp.abs(s) for s in step) == 0
        h = jnp.where(searching & ~take & still, 0.5 * h, h)
        step = tuple(jnp.where(searching & take, a - b, 0.0) for a, b in zip(new, x))
        if d == 2:
            z_cell = jnp.where(~searching & take, jnp.take_along_axis(cells, j, axis=0)[0], z_cell)
        return new, jnp.where(take, fj, fb), step, h, z_cell

    zero, one = jnp.zeros_like(lo), jnp.ones_like(lo)
    state = ((lo,) + (zero,) * (d - 1), jnp.full(lo.shape, jnp.inf, lo.dtype), (zero,) * d, one, one)
    x, fx, *_ = jax.lax.fori_loop(0, grid_steps + iters, body, state)
    return x, fx


def _root_decreasing(g, lo, hi, iters: int = 40):
    """Root of an elementwise decreasing ``g`` on [lo, hi] (arrays of one shape) by bisection."""
    return bisect(lambda m: g(m) > 0, lo, hi, iters)


@functools.lru_cache(maxsize=32)
def _distill_solver(log_loss, student_log_loss, arch, grid: int, iters: int):
    """Jitted ``solve(theta, logC, logN_S, u_lo, u_hi, d_lgt, mode)`` for the four distillation scenarios.

    ``mode``: 0 best case, 1 teacher inference, 2 teacher training (``d_lgt`` 1 pays the logits).
    """
    def solve(theta, logC, s, u_lo, u_hi, d_lgt, mode):
        best, infer, train = mode == 0, mode == 1, mode == 2
        log3fs = LOG3 + log_forward_flops(s, arch)

        def log_k(u):  # log FLOPs per student token: 3 F(N_S) + d_lgt F(N_T)
            return log3fs + jnp.log1p(d_lgt * jnp.exp(log_forward_flops(u, arch) - log3fs))

        def allocation(u, z):  # -> log N_T, log D_T, log D_S
            u_t = jnp.where(infer, jnp.maximum(u, u_lo), u)
            lk = log_k(u_t)
            v = jnp.where(train, logC + log_sigmoid(z) - LOG3 - log_forward_flops(u_t, arch),
                          jnp.where(infer, HI - jnp.maximum(u_lo - u, 0.0), z))
            return u_t, v, jnp.where(train, logC + log_sigmoid(-z) - lk, logC - lk)

        def objective(u, z):  # in the best case, u is log L_T itself
            u_t, v, lds = allocation(u, z)
            return student_log_loss(theta, s, lds, jnp.where(best, u, log_loss(theta, u_t, v)))

        def z_range(u):  # teacher training: D_T and D_S in [1e6, 1e17]
            l3t, lk = LOG3 + log_forward_flops(u, arch), log_k(u)
            z_lo = jnp.maximum(_logit_exp(LO + l3t - logC), -_logit_exp(HI + lk - logC))
            z_hi = jnp.maximum(z_lo, jnp.minimum(_logit_exp(HI + l3t - logC), -_logit_exp(LO + lk - logC)))
            return jnp.where(train, z_lo, 0.0), jnp.where(train, z_hi, 0.0)

        ends = jnp.array([HI, LO]).reshape(2, *(1,) * jnp.ndim(next(iter(theta.values()))))
        l_min, l_max = log_loss(theta, ends, ends)  # the teacher losses reachable within the bounds
        lo = jnp.where(best, l_min, jnp.where(infer, u_lo - (HI - LO), u_lo))
        hi = jnp.where(best, l_max, u_hi)
        (u, z), lls = minimize(objective, lo, hi, z_range, ~train, grid, iters)
        u, v, lds = allocation(u, z)
        lft = log_forward_flops(u, arch)
        return {"lds": lds, "u": u, "v": v, "llt": jnp.where(best, u, log_loss(theta, u, v)), "lls": lls,
                "l_min": l_min, "l_max": l_max,
                "share_student": jnp.exp(log3fs + lds - logC), "share_logits": d_lgt * jnp.exp(lft + lds - logC),
                "share_teacher": jnp.where(train, jnp.exp(LOG3 + lft + v - logC), 0.0)}

    return jax.jit(solve)


def _level_set_tokens(log_loss, theta, u, llt):
    """``log D`` with ``log L(exp(u), D) = llt``: closed form for Eq. 1 (and Chinchilla), else bisection."""
    if log_loss in (BUSBRIDGE.log_loss, CHINCHILLA.log_loss):  # (A N^-alpha + B D^-beta)^gamma = L - E
        log_r = jnp.log(jnp.maximum(jnp.exp(llt) - theta["E"], 1e-30)) / theta.get("gamma", 1.0)
        a = jnp.minimum(jnp.log(theta["A"]) - theta["alpha"] * u - log_r, -1e-7)  # log(A N^-alpha / r)
        return jnp.clip((jnp.log(theta["B"]) - log_r - jnp.log(-jnp.expm1(a))) / theta["beta"], LO, HI)
    return _root_decreasing(lambda v: log_loss(theta, u, v) - llt, jnp.full_like(u, LO), jnp.full_like(u, HI))


@functools.lru_cache(maxsize=32)
def _teacher_solver(log_loss, arch, grid: int, iters: int):
    """Jitted ``solve(theta, llt) -> (log N, log D)``: the cheapest teacher reaching ``llt``.

    Minimises ``log F(N) + log D(N)`` over ``log N``, with ``log D(N)`` on the level set
    ``log L(N, D) = llt``; where the level set leaves the bounds (N too small to reach ``llt``
    with 1e17 tokens, or too large to stay above it with 1e6) a penalty on the miss points back
    inside.
    """
    def solve(theta, llt):
        def cost(u):
            v = _level_set_tokens(log_loss, theta, u, llt)
            return log_forward_flops(u, arch) + v + 1e3 * jnp.abs(log_loss(theta, u, v) - llt)

        (u,), _ = minimize(cost, jnp.full_like(llt, LO), jnp.full_like(llt, HI), grid=grid, iters=iters)
        return u, _level_set_tokens(log_loss, theta, u, llt)

    return jax.jit(solve)


@functools.lru_cache(maxsize=32)
def _supervised_solver(log_loss, arch):
    """Jitted ``solve(theta, logC, logN) -> (log D, log L)`` with ``D = C / (3 F(N))``."""
    def solve(theta, logC, s):
        lds = logC - LOG3 - log_forward_flops(s, arch)
        lls = log_loss(theta, s, lds)
        return jnp.broadcast_to(lds, lls.shape), lls

    return jax.jit(solve)


# ------------------------------------------------------------------ checks
def check_scenario(scenario):
    if not isinstance(scenario, str) or scenario not in OPTIONS:
        raise BayesDistillError(f"unknown scenario {scenario!r}; choose from {', '.join(OPTIONS)}")
    return scenario


def _inv_log_f(y, arch):
    """log N in [LO, HI] with log F(N) = y (clipped), by bisection in float64."""
    a, b = LO, HI
    for _ in range(80):
        m = 0.5 * (a + b)
        a, b = (m, b) if math.log(forward_flops(math.exp(m), arch)) < y else (a, m)
    return 0.5 * (a + b)


def check_student(N_S):
    if not BOUNDS[0] <= N_S <= BOUNDS[1]:
        raise BayesDistillError(f"student_size {N_S:.3g} is outside the bounds [{BOUNDS[0]:.0e}, {BOUNDS[1]:.0e}]")


def check_student_size(student_size) -> float:
    """The student size as a float: a positive number within the search bounds."""
    N_S = positive_number(student_size, "student_size")
    check_student(N_S)
    return N_S


def check_budget(budget, student_size) -> tuple[float, float]:
    """``(budget, student_size)`` as floats, checked: every public decision function calls this first.

    Whether a budget can be spent within the bounds depends on the scenario; :func:`allocate` says so.
    """
    return positive_number(budget, "budget"), check_student_size(student_size)


def teacher_range(C, N_S, scenario, arch):
    """[lo, hi] of log N_T where tokens within the bounds spend exactly C; errors when none do."""
    check_student(N_S)
    dl, dp = SCENARIOS.get(scenario, (0, 0))
    w = dl + 3 * dp  # teacher FLOPs per teacher FLOP-per-token at the smallest / largest token counts
    fs3 = 3.0 * forward_flops(N_S, arch)
    least = BOUNDS[0] * (fs3 + w * forward_flops(BOUNDS[0], arch))
    most = BOUNDS[1] * (fs3 + w * forward_flops(BOUNDS[1], arch))
    what = "D" if scenario == "supervised" else "D_S, N_T, D_T"
    if C < least * (1 + 1e-6):
        raise BayesDistillError(f"budget {C:.3g} FLOPs is too small for scenario {scenario!r} with N_S = "
                                f"{N_S:.3g}: {what} >= {BOUNDS[0]:.0e} need at least {least:.3g} FLOPs")
    if C > most * (1 - 1e-6):
        raise BayesDistillError(f"budget {C:.3g} FLOPs is too large for scenario {scenario!r} with N_S = "
                                f"{N_S:.3g}: it cannot be spent with {what} <= {BOUNDS[1]:.0e} "
                                f"(at most {most:.3g} FLOPs)")
    if w == 0:
        return LO, HI
    u_hi = _inv_log_f(math.log((C / BOUNDS[0] - fs3) / w), arch)
    u_lo = _inv_log_f(math.log((C / BOUNDS[1] - fs3) / w), arch) if C / BOUNDS[1] > fs3 else LO
    return u_lo, u_hi


def check_law(law, scenario):
    """A distillation law unless ``scenario`` is ``supervised``."""
    if scenario != "supervised":
        require_distillation(law, f"scenario {scenario!r} needs", kind="law", otherwise="or use scenario='supervised'")


def theta_arrays(law, theta):
    missing = [k for k in law.params if k not in theta]
    if missing:
        raise BayesDistillError(f"theta lacks the coefficients {missing} of law {law.name!r}")
    dt = jnp.result_type(float)  # float32, or float64 under jax.enable_x64
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(theta[k], dtype=dt)) for k in law.params))
    if arrays[0].ndim != 1:
        raise BayesDistillError("theta values must be scalars or 1-d arrays (one entry per draw)")
    return dict(zip(law.params, arrays))


def _by_chunks(fn, per_draw, *args):
    """``fn(*per_draw, *args)`` on chunks of CHUNK draws (the last padded with its last draw), joined."""
    leaves, tree = jax.tree_util.tree_flatten(per_draw)
    n = len(leaves[0])
    leaves = [np.concatenate([x, np.repeat(x[-1:], -n % CHUNK, axis=0)]) for x in leaves]
    outs = [fn(*jax.tree_util.tree_unflatten(tree, [x[i:i + CHUNK] for x in leaves]), *args)
            for i in range(0, len(leaves[0]), CHUNK)]
    return jax.tree_util.tree_map(lambda *xs: np.concatenate([np.asarray(x) for x in xs])[:n], *outs)


# --------------------------------------------------------------------- API
def allocate(law, theta: Mapping, budget, student_size, scenario: str, arch=PAPER_ARCH, *,
             grid: int = GRID, grid2: int = GRID2, iters: int = ITERS) -> dict:
    """Compute-optimal distillation allocation (Eq. 10) for every draw of the coefficients.

    Parameters
    ----------
    law : Law or DistillationLaw
        A distillation law (``scenario="supervised"`` also accepts a supervised law).
    theta : mapping of str -> float or 1-d array
        Coefficients, one entry per draw (scalars for a single point such as ``TABLE6``).
    budget : float
        Total FLOPs ``C`` (Eq. 9, the paper's ``3 F(N) D`` accounting).
    student_size : float
        Student non-embedding parameters ``N_S``, in [1e6, 1e17].
    scenario : str
        ``best_case``, ``teacher_inference``, ``teacher_pretraining``, ``pretraining_inference``
        or ``supervised``.
    arch : ArchSettings, optional
        Architecture settings of ``F(N)`` (Eq. 69).
    grid, grid2, iters : int, optional
        Search settings of :func:`minimize`: grid points for the best-case teacher, per side of
        the main grid (``grid2^2`` points on one variable in ``best_case`` and
        ``teacher_inference``), and pattern-search steps.

    Returns
    -------
    dict of str -> numpy.ndarray (n_draws,)
        ``D_S, N_T, D_T, L_T, loss`` (the student's, or the supervised model's, law loss) and
        ``share_student, share_logits, share_teacher`` (fractions of ``C``, summing to 1);
        ``bounds``: bit mask of active bounds (:data:`BOUND_FLAGS`). Teacher entries are NaN
        for ``supervised``.

    Raises
    ------
    BayesDistillError
        Unknown scenario, a supervised law for a distillation scenario, a student size outside
        the bounds, or a budget that no allocation within the bounds spends exactly.
    """
    scenario = check_scenario(scenario)
    C, N_S = check_budget(budget, student_size)
    check_law(law, scenario)
    th = theta_arrays(law, theta)
    u_lo, u_hi = teacher_range(C, N_S, scenario, arch)
    dt = jnp.result_type(float)
    logC, s = jnp.asarray(math.log(C), dt), jnp.asarray(math.log(N_S), dt)
    n = len(next(iter(th.values())))
    l_min = l_max = None
    if scenario == "supervised":
        lds, lls = _by_chunks(_supervised_solver(law.log_loss, arch), (th,), logC, s)
        u = v = llt = np.full(n, np.nan)
        shares = (np.ones(n), np.zeros(n), np.zeros(n))
    else:
        solve = _distill_solver(law.log_loss, law.student_log_loss, arch, grid2, iters)
        r = _by_chunks(solve, (th,), logC, s, *(jnp.asarray(x, dt) for x in (u_lo, u_hi, SCENARIOS[scenario][0])),
                       jnp.asarray(_MODE[scenario], jnp.int32))
        lds, u, v, llt, lls = (r[k] for k in ("lds", "u", "v", "llt", "lls"))
        shares = tuple(r[k] for k in ("share_student", "share_logits", "share_teacher"))
        if scenario == "best_case":  # report the cheapest teacher reaching the best L_T
            u, v = _by_chunks(_teacher_solver(law.log_loss, arch, grid, iters), (th, llt))
            l_min, l_max = r["l_min"], r["l_max"]
    conds = {"D_S_min": lds <= LO + _TOL, "D_S_max": lds >= HI - _TOL, "N_T_min": u <= LO + _TOL,
             "N_T_max": u >= HI - _TOL, "D_T_min": v <= LO + _TOL, "D_T_max": v >= HI - _TOL,
             "L_T_min": False if l_min is None else llt <= l_min + _TOL,
             "L_T_max": False if l_max is None else llt >= l_max - _TOL}
    out = {"D_S": np.exp(lds), "N_T": np.exp(u), "D_T": np.exp(v), "L_T": np.exp(llt), "loss": np.exp(lls),
           "share_student": shares[0], "share_logits": shares[1], "share_teacher": shares[2]}
    out["bounds"] = sum(BOUND_FLAGS[k] * np.asarray(c, np.int32) for k, c in conds.items()) + np.zeros(n, np.int32)
    return out


def _bound_names(mask, structural=0):
    names = [",".join(k for k, b in BOUND_FLAGS.items() if m & b) for m in mask]
    status = np.where((mask & ~structural) != 0, "bound", "ok")
    return status, names


def optimal(posterior, *, budget, student_size, scenario: str, arch=PAPER_ARCH) -> pd.DataFrame:
    """Compute-optimal allocation for every posterior draw.

    Parameters
    ----------
    posterior : Posterior
        A distillation fit (``scenario="supervised"`` also accepts a supervised fit).
    budget, student_size, scenario, arch
        As in :func:`allocate`.

    Returns
    -------
    pandas.DataFrame
        One row per draw (index ``draw``): ``D_S, N_T, D_T, L_T, loss, share_student,
        share_logits, share_teacher``, ``status`` (``"ok"``, or ``"bound"`` when a bound is
        active; ``D_T`` at 1e17 in ``teacher_inference`` is that scenario's answer and does not
        count) and ``bounds`` (the active bounds by name). ``attrs`` holds the inputs.
    """
    scenario = check_scenario(scenario)
    if scenario != "supervised":
        require_distillation(posterior.law, f"scenario {scenario!r} needs", otherwise="or use scenario='supervised'")
    res = allocate(posterior.law, posterior.theta(), budget, student_size, scenario, arch)
    df = pd.DataFrame({k: res[k] for k in COLUMNS})
    structural = BOUND_FLAGS["D_T_max"] if scenario == "teacher_inference" else 0
    df["status"], df["bounds"] = _bound_names(res["bounds"], structural)
    df.index.name = "draw"
    df.attrs.update(budget=float(budget), student_size=float(student_size), scenario=scenario)
    return df
