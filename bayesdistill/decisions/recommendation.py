"""Decisions under uncertainty: one recommended allocation for a budget.

The per-draw optima of :mod:`bayesdistill.allocate` say what each posterior
draw would do; a user must commit to *one* allocation. :func:`recommend`
turns the posterior into that decision (sample-average approximation):

1. candidates: for every scenario, the per-draw optimal allocations of a
   random subset of draws, plus the plug-in optimum (at posterior-mean
   coefficients); every candidate spends the budget exactly;
2. each candidate's student loss is evaluated under *every* draw;
3. the objective (:mod:`bayesdistill.decisions.objectives`: expected loss, a quantile,
   CVaR, P(loss <= target), or any function of the per-draw losses) picks the
   best candidate per scenario, and the best scenario among those allowed.

The result also gives P(distillation beats supervised), the plug-in answer and
the expected regret of using it. A fit that failed its review gives a loud
:class:`~bayesdistill.errors.FitWarning` and a flag on the result.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..allocation.distillation import BOUND_FLAGS, allocate, check_budget
from ..errors import BayesDistillError, FitWarning
from ..laws.distillation import require_distillation
from ..laws.flops import PAPER_ARCH, distillation_flops_parts
from ..laws.scenarios import DEFAULT_SCENARIOS, OPTIONS
from .objectives import get_objective

#: default choice: no teacher exists yet, so distilling means training one for this student


def check_scenarios(scenarios) -> tuple:
    """Validated tuple of option names (distillation scenarios and/or ``supervised``)."""
    if isinstance(scenarios, str):
        scenarios = (scenarios,)
    scenarios = tuple(dict.fromkeys(scenarios))
    bad = [s for s in scenarios if s not in OPTIONS]
    if bad or not scenarios:
        raise BayesDistillError(f"unknown scenarios {bad or scenarios}; choose from {list(OPTIONS)}")
    return scenarios


def review_gate(post, strict: bool, what: str = "this decision") -> bool:
    """Warn loudly (or raise with ``strict``) when the fit failed its review; returns ``review.ok``."""
    review = post.review()
    if review.ok:
        return True
    failed = ", ".join(f"{c.name} = {c.value:.4g}" for c in review.failed)
    msg = (f"{what} is made from a fit that FAILED its review ({failed}); the posterior may be wrong, "
           "so the numbers below may be too. Refit with more warmup/draws or a higher target_accept first.")
    if strict:
        raise BayesDistillError(msg)
    warnings.warn(msg, FitWarning, stacklevel=3)
    return False


def losses_under_draws(law, theta, student_size, alloc) -> np.ndarray:
    """Student loss of fixed allocations under every draw: array (n_alloc, n_draws).

    ``alloc`` maps ``D_S``, ``N_T``, ``D_T`` to arrays (n_alloc,); rows with
    NaN ``N_T`` are supervised training of the student on ``D_S`` tokens.
    """
    th = {k: jnp.asarray(v)[None, :] for k, v in theta.items()}
    logN = jnp.log(float(student_size))
    logD = jnp.log(jnp.asarray(alloc["D_S"], dtype=float))[:, None]
    sup = law.log_loss(th, logN, logD)
    nt = np.asarray(alloc["N_T"], dtype=float)
    distilled = ~np.isnan(nt)
    if not distilled.any():
        return np.exp(np.asarray(sup, dtype=float))
    logNT = jnp.log(jnp.asarray(np.where(distilled, nt, 1e9)))[:, None]
    logDT = jnp.log(jnp.asarray(np.where(distilled, alloc["D_T"], 1e10), dtype=float))[:, None]
    log_lt = law.log_loss(th, logNT, logDT)
    stu = law.student_log_loss(th, logN, logD, log_lt)
    return np.exp(np.asarray(jnp.where(jnp.asarray(distilled)[:, None], stu, sup), dtype=float))


def _subset(theta, n, seed):
    n_draws = len(next(iter(theta.values())))
    if n >= n_draws:
        return theta
    idx = np.sort(np.random.default_rng(seed).choice(n_draws, size=n, replace=False))
    return {k: np.asarray(v)[idx] for k, v in theta.items()}


def law_draws(posterior) -> list[tuple]:
    """``(law, coefficient draws as NumPy arrays)``: one pair for a fit, one per law for a mixture of fits
    (``bd.average``), whose draws are those of every pair in order."""
    if hasattr(posterior, "law_draws"):
        return posterior.law_draws()
    return [(posterior.law, {k: np.asarray(v) for k, v in posterior.theta().items()})]


def require_distillation_fit(posterior, needs: str) -> list[tuple]:
    """:func:`law_draws` of ``posterior`` after checking that every law in it is a distillation law."""
    parts = law_draws(posterior)
    for law, _ in parts:
        require_distillation(law, needs)
    return parts


def mixture_candidates(parts, budget, student_size, scenario, *, n_candidates=256, seed=0, arch=PAPER_ARCH):
    """:func:`candidates` over the laws of ``parts`` (:func:`law_draws`): per-draw optima of each law's draws
    in proportion to its share of the draws, then the plug-in optimum of the law with the most draws last."""
    if len(parts) == 1:
        law, theta = parts[0]
        return candidates(law, theta, budget, student_size, scenario, n_candidates=n_candidates, seed=seed, arch=arch)
    sizes = np.array([len(next(iter(theta.values()))) for _, theta in parts])
    counts = np.maximum(1, np.round(n_candidates * sizes / sizes.sum()).astype(int))
    each = [candidates(law, theta, budget, student_size, scenario, n_candidates=int(c), seed=seed + j, arch=arch)
            for j, ((law, theta), c) in enumerate(zip(parts, counts))]
    main = each[int(np.argmax(sizes))]
    keys = [k for k in each[0] if all(k in c for c in each)]
    return {k: np.concatenate([np.asarray(c[k])[:-1] for c in each] + [np.asarray(main[k])[-1:]]) for k in keys}


def mixture_losses(parts, student_size, alloc) -> np.ndarray:
    """:func:`losses_under_draws` over every law of ``parts``: array (n_alloc, total draws)."""
    return np.concatenate([losses_under_draws(law, theta, student_size, alloc) for law, theta in parts], axis=1)


def candidates(law, theta, budget, student_size, scenario, *, n_candidates=256, seed=0, arch=PAPER_ARCH):
    """Candidate allocations of one scenario: per-draw optima of a draw subset, then the plug-in optimum last."""
    sub = _subset(theta, n_candidates, seed)
    plug = {k: np.atleast_1d(np.mean(np.asarray(v))) for k, v in theta.items()}
    per_draw = allocate(law, sub, budget, student_size, scenario, arch)
    point = allocate(law, plug, budget, student_size, scenario, arch)
    return {k: np.concatenate([np.asarray(per_draw[k]), np.asarray(point[k])]) for k in per_draw}


def _allocation_dict(cand, i, scenario, budget, student_size, arch):
    a = {"scenario": scenario, "N_S": float(student_size), "D_S": float(cand["D_S"][i]),
         "tokens_per_param_S": float(cand["D_S"][i] / student_size)}
    if scenario == "supervised":
        a.update({"N_T": None, "D_T": None, "flops_student": float(budget), "flops_teacher_logits": 0.0,
                  "flops_teacher_training": 0.0})
    else:
        parts = distillation_flops_parts(student_size, a["D_S"], float(cand["N_T"][i]), float(cand["D_T"][i]),
                                         scenario, arch)
        a.update({"N_T": float(cand["N_T"][i]), "D_T": float(cand["D_T"][i]),
                  "tokens_per_param_T": float(cand["D_T"][i] / cand["N_T"][i]),
                  **{f"flops_{k}": float(v) for k, v in parts.items()}})
    a["flops_total"] = a["flops_student"] + a["flops_teacher_logits"] + a["flops_teacher_training"]
    mask = int(cand["bounds"][i]) if "bounds" in cand else 0
    if scenario == "teacher_inference":  # free teacher tokens run to their bound: that is the answer
        mask &= ~BOUND_FLAGS["D_T_max"]
    a["bounds"] = ",".join(k for k, b in BOUND_FLAGS.items() if mask & b)
    return a


def _loss_stats(L, prob=0.9):
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    return {"mean": float(L.mean()), "median": float(np.median(L)), "q05": float(np.quantile(L, lo)),
            "q95": float(np.quantile(L, hi))}


@dataclass
class Recommendation:
    """One recommended allocation for a budget, with the uncertainty around it.

    Attributes
    ----------
    option : str
        The recommended scenario (``"supervised"`` or a distillation scenario).
    allocation : dict
        Student tokens, teacher size and tokens, FLOPs split, of the recommendation.
    losses : ndarray (n_draws,)
        The recommended allocation's student loss under every posterior draw.
    options : DataFrame
        The best allocation of every scenario considered, with its objective and loss summary.
    p_distill_beats_supervised : float
        P(the best distillation option's loss < supervised training's loss), over draws.
    plugin : dict
        The answer at posterior-mean coefficients (what a point estimate would recommend); for a
        mixture of laws (``bd.average``), at those of the law with the largest weight.
    plugin_regret : float
        Objective of the plug-in answer minus that of the recommendation (>= 0).
    status : str
        ``"ok"``, or ``"bound"`` when the recommended allocation sits on a bound of [1e6, 1e17].
    review_ok : bool
        False when the fit failed its review (the numbers may be wrong).
    """

    option: str
    allocation: dict
    losses: np.ndarray
    objective: str
    objective_value: float
    options: pd.DataFrame
    p_distill_beats_supervised: float
    plugin: dict
    plugin_regret: float
    status: str
    review_ok: bool
    budget: float
    student_size: float
    notes: list = field(default_factory=list)
    option_losses: dict = field(default_factory=dict, repr=False)

    @property
    def loss_summary(self) -> dict:
        return _loss_stats(self.losses)

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-draw arrays)."""
        out = {"option": self.option, "budget": self.budget, "student_size": self.student_size,
               "objective": self.objective, "objective_value": self.objective_value,
               "allocation": self.allocation, "loss": self.loss_summary,
               "p_distill_beats_supervised": self.p_distill_beats_supervised,
               "plugin": self.plugin, "plugin_regret": self.plugin_regret, "status": self.status,
               "review_ok": self.review_ok, "notes": list(self.notes),
               "options": json.loads(self.options.to_json(orient="records"))}
        return out

    def __str__(self) -> str:
        a, s = self.allocation, self.loss_summary
        lines = []
        if not self.review_ok:
            lines += ["!" * 72, "!! WARNING: the fit behind this recommendation FAILED its review.",
                      "!! Treat every number below as unreliable until a refit passes.", "!" * 72]
        lines += [f"Budget {self.budget:.3g} FLOPs, student {self.student_size:.3g} parameters, "
                  f"objective {self.objective}",
                  f"Recommended: {self.option}"
                  + ("" if self.option == "supervised" else
                     f" (teacher {a['N_T']:.3g} params on {a['D_T']:.3g} tokens)"),
                  f"  student tokens D_S = {a['D_S']:.3g} ({a['tokens_per_param_S']:.1f} per parameter)",
                  f"  FLOPs: student {a['flops_student']:.3g}, teacher logits {a['flops_teacher_logits']:.3g}, "
                  f"teacher training {a['flops_teacher_training']:.3g}",
                  f"  student loss: median {s['median']:.4f}, 90% interval ({s['q05']:.4f}, {s['q95']:.4f})",
                  f"P(distillation beats supervised) = {self.p_distill_beats_supervised:.2f}",
                  f"Plug-in answer (posterior-mean coefficients): {self.plugin['option']}; "
                  f"expected regret of using it {self.plugin_regret:.2e} ({self.objective})",
                  f"Status: {self.status}"]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


def pick(losses, objective) -> int:
    """Index of the row of ``losses`` (candidates x draws) with the lowest objective."""
    return int(np.argmin(get_objective(objective).matrix(losses)))


def evaluate_options(post, budget, student_size, scenarios, obj, n_candidates, seed, arch):
    """Per scenario: candidates, their loss matrix under all draws and objectives."""
    parts = law_draws(post)
    out = {}
    for i, sc in enumerate(scenarios):
        cand = mixture_candidates(parts, budget, student_size, sc, n_candidates=n_candidates, seed=seed + i, arch=arch)
        L = mixture_losses(parts, student_size, cand)
        out[sc] = {"cand": cand, "L": L, "obj": obj.matrix(L)}
    return out


def recommend(posterior, *, budget, student_size, scenarios=DEFAULT_SCENARIOS, objective="mean",
              n_candidates: int = 256, seed: int = 0, strict: bool = False, arch=PAPER_ARCH) -> Recommendation:
    """Recommend one allocation of ``budget`` FLOPs for a student of ``student_size`` parameters.

    Parameters
    ----------
    posterior : Posterior or AveragedPosterior
        A distillation fit (see :func:`bayesdistill.fit` with ``law="distillation"``), or a mixture of
        distillation fits of one sweep (:func:`bayesdistill.average`): candidates then come from every
        law in proportion to its weight, each is scored under every draw of its own law, and the
        plug-in answer is that of the law with the largest weight.
    budget : float
        Total FLOPs (Eq. 9 accounting: ``3 F(N) D`` per model trained, ``F(N_T) D_S`` for logits).
    student_size : float
        Student non-embedding parameters.
    scenarios : sequence of str
        The options you actually have. Default ``("pretraining_inference", "supervised")``:
        no teacher exists, so distilling means training one for this student. Pass
        ``"teacher_inference"`` when a teacher exists and you pay its logits,
        ``"teacher_pretraining"`` when the logits are reused, ``"best_case"`` when the teacher is
        free. Supervised training is always evaluated as the reference.
    objective : str or callable
        See :mod:`bayesdistill.decisions.objectives` (``"mean"``, ``"quantile:0.9"``, ``"cvar:0.9"``,
        ``"p_target:2.3"`` or ``f(losses) -> float``; lower is better).
    n_candidates : int
        Posterior draws whose optimal allocations are candidates (per scenario).
    seed : int
        Seed of the candidate subset (same inputs and seed, same recommendation).
    strict : bool
        Raise instead of warn when the fit failed its review.

    Returns
    -------
    Recommendation
    """
    from ..runtime import enable_compilation_cache

    require_distillation_fit(posterior, "recommendations need")
    budget, student_size = check_budget(budget, student_size)
    scenarios = check_scenarios(scenarios)
    obj = get_objective(objective)
    enable_compilation_cache()  # the allocation solvers compile once per machine, not once per call
    if not (isinstance(n_candidates, int) and n_candidates >= 1):
        raise BayesDistillError(f"n_candidates must be a positive integer, got {n_candidates!r}")
    review_ok = review_gate(posterior, strict, "this recommendation")
    evaluated = tuple(dict.fromkeys(scenarios + ("supervised",)))
    ev = evaluate_options(posterior, budget, student_size, evaluated, obj, n_candidates, seed, arch)
    rows, best = [], {}
    for sc in evaluated:
        e = ev[sc]
        i = int(np.argmin(e["obj"]))
        best[sc] = i
        a = _allocation_dict(e["cand"], i, sc, budget, student_size, arch)
        rows.append({"option": sc, "allowed": sc in scenarios, "objective": float(e["obj"][i]),
                     **{f"loss_{k}": v for k, v in _loss_stats(e["L"][i]).items()},
                     **{k: a[k] for k in ("D_S", "N_T", "D_T", "flops_student", "flops_teacher_logits",
                                          "flops_teacher_training")}})
    options = pd.DataFrame(rows).set_index("option")
    allowed = options[options["allowed"]]
    option = str(allowed["objective"].idxmin())
    L_rec = ev[option]["L"][best[option]]
    allocation = _allocation_dict(ev[option]["cand"], best[option], option, budget, student_size, arch)
    L_sup = ev["supervised"]["L"][best["supervised"]]
    distill = [s for s in scenarios if s != "supervised"]
    if distill:
        best_d = min(distill, key=lambda s: options.loc[s, "objective"])
        p_beats = float(np.mean(ev[best_d]["L"][best[best_d]] < L_sup))
    else:
        p_beats = float("nan")
    # plug-in: each scenario's optimum at posterior-mean coefficients is its last candidate
    plug_loss = {s: float(ev[s]["cand"]["loss"][-1]) for s in scenarios}
    plug_opt = min(plug_loss, key=plug_loss.get)
    plug_obj = float(ev[plug_opt]["obj"][-1])
    plugin = {"option": plug_opt, "allocation": _allocation_dict(ev[plug_opt]["cand"], -1, plug_opt, budget,
                                                                 student_size, arch),
              "objective_value": plug_obj, "loss_at_posterior_mean": plug_loss[plug_opt]}
    status = "bound" if allocation["bounds"] else "ok"
    notes = []
    if status == "bound":
        notes.append(f"the recommended allocation sits on a bound ({allocation['bounds']}) of [1e6, 1e17]")
    config = getattr(posterior, "components", [posterior])[0].config  # a mixture: its first fit's
    if config.get("source", "").find("replica") >= 0 or config.get("synthetic"):
        notes.append("this posterior was fitted to the SYNTHETIC replica of the paper's sweep (Table 6 laws), "
                     "not to measured runs; refit on your own sweep before spending compute")
    return Recommendation(option, allocation, L_rec, obj.name, float(options.loc[option, "objective"]), options,
                          p_beats, plugin, max(0.0, plug_obj - float(options.loc[option, "objective"])),
                          status, review_ok, float(budget), float(student_size), notes,
                          {s: ev[s]["L"][best[s]] for s in evaluated})
