"""Command-line decisions: ``bayesdistill recommend`` and ``optimal --student-size`` (distillation).

Without a posterior file both use the fitted default posterior shipped in
``models/`` (a fit to the SYNTHETIC replica of the paper's sweep), so that
``bayesdistill recommend --budget 1e22 --student-size 1e9`` answers in seconds
on a fresh clone.
"""

from __future__ import annotations

from ..laws.scenarios import DEFAULT_SCENARIOS, OPTIONS, SCENARIO_DESCRIPTIONS
from .common import capturing, load_posterior, print_json, subparser


def _posterior(args):
    from ..inference.shipped import DEFAULT_POSTERIOR, default_posterior

    path = getattr(args, "posterior", None) or getattr(args, "file", None)
    if path:
        return load_posterior(path), path
    post, _ = capturing(default_posterior)
    return post, f"default ({DEFAULT_POSTERIOR.name}, fitted to the SYNTHETIC paper replica)"


def cmd_recommend(args) -> int:
    from ..decisions.recommendation import recommend

    post, source = _posterior(args)
    rec, messages = capturing(recommend, post, budget=args.budget, student_size=args.student_size,
                               scenarios=args.scenarios, objective=args.objective, seed=args.seed,
                               n_candidates=args.candidates)
    if args.json:
        print_json({"posterior": source, **rec.to_dict(), "warnings": messages})
        return 0
    print(f"Posterior: {source}\n")
    print(rec)
    opts = rec.options.copy()
    print("\nEvery option considered (best allocation of each; loss median and 90% interval):")
    for name, r in opts.iterrows():
        mark = ">" if name == rec.option else ("-" if not r["allowed"] else " ")
        teacher = "" if name == "supervised" else f", teacher {r['N_T']:.3g} params on {r['D_T']:.3g} tokens"
        print(f" {mark} {name:22s} loss {r['loss_median']:.4f} ({r['loss_q05']:.4f}, {r['loss_q95']:.4f}), "
              f"D_S {r['D_S']:.3g}{teacher}")
    if (~opts["allowed"]).any():
        print("   (- = shown for reference, not among --scenarios)")
    return 0


def _interval(v, k):
    return f"{v[k + '_median']:.3g} ({v[k + '_q05']:.3g}, {v[k + '_q95']:.3g})"


def cmd_optimal_distill(args) -> int:
    """``optimal --student-size``: per-draw compute-optimal distillation for each scenario."""
    from ..allocation.distillation import optimal

    post, source = _posterior(args)
    out = {}
    for c in args.budget:
        for sc in args.scenarios:
            df, _ = capturing(optimal, post, budget=c, student_size=args.student_size, scenario=sc)
            q = df[["D_S", "N_T", "D_T", "loss"]].quantile([0.05, 0.5, 0.95])
            out[(c, sc)] = {"bound_share": float((df["status"] != "ok").mean()),
                            **{f"{k}_{tag}": float(q.loc[p, k]) for k in q.columns
                               for p, tag in ((0.05, "q05"), (0.5, "median"), (0.95, "q95"))}}
    if args.json:
        print_json({"posterior": source, "student_size": args.student_size,
                     "allocations": [{"budget": c, "scenario": sc, **v} for (c, sc), v in out.items()]})
        return 0
    print(f"Posterior: {source}\nCompute-optimal distillation of a {args.student_size:.3g}-parameter student, "
          "per posterior draw (median and 90% interval):")
    for (c, sc), v in out.items():
        line = f"  {c:.3g} FLOPs, {sc:22s} loss {_interval(v, 'loss')}, D_S {_interval(v, 'D_S')}"
        if sc != "supervised":
            line += f", N_T {_interval(v, 'N_T')}, D_T {_interval(v, 'D_T')}"
        print(line + (f"  [{v['bound_share']:.0%} of draws on a bound]" if v["bound_share"] > 0 else ""))
    return 0


def add_parsers(sub, common) -> None:
    """Register ``recommend`` on the ``bayesdistill`` subparsers."""
    p = subparser(sub, "recommend", cmd_recommend,
                   "recommend one allocation of a budget for a student size: distil (which scenario, teacher, "
                   "tokens) or train supervised, accounting for the posterior's uncertainty",
                   ["bayesdistill recommend --budget 1e22 --student-size 1e9",
                    "bayesdistill recommend --budget 1e21 --student-size 3e8 --scenarios teacher_inference "
                    "supervised --objective quantile:0.9",
                    "bayesdistill recommend joint.nc --budget 1e22 --student-size 1e9 --json"], [common])
    p.add_argument("posterior", nargs="?", metavar="FILE", help="distillation posterior (default: the one "
                   "shipped in models/, fitted to the SYNTHETIC paper replica)")
    p.add_argument("--budget", type=float, required=True, help="total FLOPs")
    p.add_argument("--student-size", type=float, required=True, help="student non-embedding parameters")
    p.add_argument("--scenarios", nargs="+", default=list(DEFAULT_SCENARIOS), choices=OPTIONS,
                   metavar="NAME", help="the options you have: " + "; ".join(
                       f"{k}: {v}" for k, v in SCENARIO_DESCRIPTIONS.items())
                   + "; supervised: train the student on data alone (default: %(default)s)")
    p.add_argument("--objective", default="mean", help="mean, quantile:Q, cvar:Q or p_target:LOSS "
                   "(default: %(default)s)")
    p.add_argument("--candidates", type=int, default=256, help="posterior draws whose optima are candidate "
                   "allocations (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the candidate subset (default: %(default)s)")


def add_optimal_options(p) -> None:
    """Distillation options of ``bayesdistill optimal``."""
    p.add_argument("--student-size", type=float, help="distillation posteriors: student size N_S; gives the "
                   "per-draw compute-optimal D_S, N_T, D_T of each --scenarios")
    p.add_argument("--scenarios", nargs="+", default=list(OPTIONS), choices=OPTIONS, metavar="NAME",
                   help="with --student-size: scenarios to solve (default: all)")

