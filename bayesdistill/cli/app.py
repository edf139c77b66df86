"""Command-line interface: ``bayesdistill fit | summary | predict | optimal | recommend | compare | recipes | report | demo | datasets | replica``.

Every subcommand takes ``--json`` to print one machine-readable JSON object
on stdout instead of tables. Errors print one line ``error: ...`` on stderr
and exit with code 2; warnings print one line ``warning: ...``. ``fit
--strict`` exits with code 3 when the fit fails its review.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ..errors import ExtrapolationWarning
from .common import (
    SHIPPED,
    capturing,
    load_posterior,
    print_json,
    read_data,
    show_warning,
    subparser,
)
from .comparison import add_compare_parser
from .decide import add_optimal_options, add_parsers
from .recipes import add_recipes_parser
from .replica import add_replica_parser

EXIT_ERROR, EXIT_REVIEW = 2, 3
BANNER = "!" * 78


# ----------------------------------------------------------------- helpers
def _banner(review) -> str:
    if review.ok:
        return ""
    return "\n".join([BANNER, "!!  WARNING: THIS FIT FAILED ITS REVIEW; DO NOT TRUST ITS NUMBERS YET.",
                      f"!!  Remedy: {review.failed[0].remedy}", BANNER, ""])


def _describe(post) -> str:
    c = post.config
    return (f"{post.law.name} law, {post.noise} noise, {len(post.data)} runs from {c.get('source', '?')}; "
            f"NUTS {c.get('chains')} chains x {c.get('draws')} draws ({c.get('warmup')} warmup, "
            f"seed {c.get('seed')}) in {c.get('seconds', float('nan')):.1f} s")


def _summary_text(post) -> str:
    from ..report.markdown import summary_table
    from ..report.tables import text_table

    review = post.review()
    return "\n".join([_describe(post), "", _banner(review) + str(review), "", text_table(*summary_table(post))])


def _summary_json(post) -> dict:
    return {"law": post.law.name, "noise": post.noise, "runs": len(post.data), "config": post.config,
            "review": post.review().to_dict(), "summary": post.summary().to_dict(orient="index")}


def _optimal_text(co) -> str:
    from ..report.markdown import allocation_table, fmt_interval
    from ..report.tables import text_table

    ex = co.exponents()
    lines = [f"Compute-optimal allocation ({co.accounting} accounting), medians and 90% intervals:",
             text_table(*allocation_table(co, compact=True)), ""]
    for k, sym in (("a", "N"), ("b", "D")):
        r = ex.loc[k]
        lines.append(f"{k} = {r['median']:.3f} {fmt_interval(r['q05'], r['q95'])}   ({sym}* ~ C^{k})")
    return "\n".join(lines)


# ------------------------------------------------------------ subcommands
def cmd_fit(args) -> int:
    from ..inference.model import resolve_priors
    from ..inference.sampling import fit
    from ..laws.base import get_law

    resolve_priors(get_law(args.law), args.noise, None)  # reject a bad law / noise before reading data
    sweep = read_data(args.data, args.columns, args.subset)
    progress = sys.stderr.isatty() and not args.json if args.progress is None else args.progress
    post, messages = capturing(fit, sweep, law=args.law, noise=args.noise, chains=args.chains,
                                draws=args.draws, warmup=args.warmup, seed=args.seed,
                                target_accept=args.target_accept, progress_bar=progress, retry=args.retry,
                                **({"groups": args.groups, "pool": args.pool} if args.groups else {}))
    path = post.save(args.out)
    if args.json:
        print_json({"posterior": str(path), **_summary_json(post), "warnings": messages})
    else:
        print(_summary_text(post))
        print(f"\nSaved the posterior to {path}")
    return EXIT_REVIEW if args.strict and not post.review().ok else 0


def cmd_summary(args) -> int:
    post = load_posterior(args.file, getattr(args, "group", None))
    if args.json:
        print_json({"file": args.file, **_summary_json(post)})
    else:
        print(_summary_text(post))
    return 0


STUDENT_OPTIONS = ("N_S", "D_S", "N_T", "D_T", "L_T")


def cmd_predict(args) -> int:
    from ..errors import BayesDistillError
    from ..report.markdown import fmt, fmt_interval
    from ..report.tables import text_table

    if any(getattr(args, k) is not None for k in STUDENT_OPTIONS):
        from .predict import cmd_predict_student

        return cmd_predict_student(args)
    if args.N is None:
        raise BayesDistillError("give --N with --D or --tokens-per-param (supervised loss), or, for a "
                                "distillation posterior, --N-S, --D-S and a teacher (--L-T, or --N-T and --D-T)")
    N = np.asarray(args.N, dtype=float)
    if (args.D is None) == (args.tokens_per_param is None):
        raise BayesDistillError("give exactly one of --D and --tokens-per-param")
    other = np.asarray(args.D if args.D is not None else args.tokens_per_param, dtype=float)
    if args.grid:
        N, other = (a.ravel() for a in np.meshgrid(N, other, indexing="ij"))
    elif len(N) != len(other) and 1 not in (len(N), len(other)):
        raise BayesDistillError(f"--N has {len(N)} values and --D {len(other)}: give equal numbers, "
                                "a single value for one of them, or --grid for every combination")
    N, other = np.broadcast_arrays(N, other)
    D = other if args.D is not None else N * other
    post = load_posterior(args.file, getattr(args, "group", None))
    with warnings.catch_warnings(record=True) as far:  # said below the table (stderr with --json)
        warnings.simplefilter("always", ExtrapolationWarning)
        p = post.predict(N, D, seed=args.seed)
    far = [str(w.message) for w in far if issubclass(w.category, ExtrapolationWarning)]
    data = post.data
    p["in_range"] = ((p["N"] >= data["N"].min()) & (p["N"] <= data["N"].max())
                     & (p["D"] >= data["D"].min()) & (p["D"] <= data["D"].max()))
    if args.json:
        print_json({"file": args.file, "kind": "supervised", "predictions": p.to_dict(orient="records")})
        for message in far:
            print(f"warning: {message}", file=sys.stderr)
        return 0
    rows = [[fmt(r["N"]) + ("" if r["in_range"] else " *"), fmt(r["D"]), fmt(r["D"] / r["N"]),
             fmt(r["median"], 4), fmt_interval(r["q05"], r["q95"], 4),
             fmt_interval(r["pred_q05"], r["pred_q95"], 4), f"{r['decades_beyond']:.2f}"] for _, r in p.iterrows()]
    print(text_table(["N", "D", "D/N", "loss median", "law 90%", "new run 90%", "decades beyond"], rows))
    print("\nloss in nats per token; 'law 90%': uncertainty of the mean loss; 'new run 90%': adds run noise; "
          "'decades beyond': decades\nof compute (6ND) beyond the largest fitted run")
    for message in far:
        print(f"warning: {message}")
    if not p["in_range"].all():
        print(f"* outside the fitted range of N ({fmt(data['N'].min())} to {fmt(data['N'].max())}) or "
              f"D ({fmt(data['D'].min())} to {fmt(data['D'].max())}): extrapolation")
    return 0


def cmd_optimal(args) -> int:
    from ..allocation.supervised import compute_optimal

    if args.student_size is not None:
        from .decide import cmd_optimal_distill

        return cmd_optimal_distill(args)
    if not args.file:
        from ..errors import BayesDistillError

        raise BayesDistillError("give a posterior FILE (or --student-size for compute-optimal distillation)")
    post = load_posterior(args.file, getattr(args, "group", None))
    co = compute_optimal(post, args.budget, accounting=args.accounting)
    if args.json:
        print_json({"file": args.file, **co.to_dict()})
    else:
        print(_optimal_text(co))
    return 0


def cmd_report(args) -> int:
    from ..report.markdown import PLOTS, write_report

    post = load_posterior(args.file, getattr(args, "group", None))
    path, _ = capturing(write_report, post, args.out, budget=args.budget, accounting=args.accounting)
    files = [str(path.parent / name) for name, _, _ in PLOTS]
    if args.json:
        print_json({"report": str(path), "files": [str(path), *files]})
    else:
        print(f"Wrote {path} with {len(files)} plots")
    return 0


def cmd_demo(args) -> int:
    from ..allocation.supervised import compute_optimal
    from ..inference.sampling import fit
    from ..report.markdown import write_report

    t0 = time.perf_counter()
    chains, draws, warmup = (2, 200, 200) if args.quick else (4, 1000, 1000)
    sweep = read_data(f"{SHIPPED}gadre_c4", subset="c4_original")
    out = Path(args.out)
    if not args.json:
        print(f"Fitting the chinchilla law to {len(sweep)} runs of Gadre et al. (2024), trained on C4 "
              f"(c4_original), with NUTS: {chains} chains x {draws} draws after {warmup} warmup ...")
    progress = sys.stderr.isatty() and not args.json
    post, messages = capturing(fit, sweep, law="chinchilla", chains=chains, draws=draws, warmup=warmup,
                                seed=args.seed, progress_bar=progress, retry=not args.quick)
    co = compute_optimal(post, [args.budget])
    nc = post.save(out / "posterior.nc")
    report, more = capturing(write_report, post, out, budget=args.budget)
    rec, decision, more2 = _demo_decision(out, args)
    seconds = time.perf_counter() - t0
    if args.json:
        print_json({"posterior": str(nc), "report": str(report), "decision_report": str(decision),
                     "seconds": seconds, "review": post.review().to_dict(), "optimal": co.to_dict(),
                     "recommendation": rec.to_dict(), "warnings": messages + more + more2})
        return 0
    print(f"\n{_banner(post.review())}{post.review()}\n")
    print(_optimal_text(co))
    print("\nDistillation: a budget recommendation from the shipped joint posterior (fitted to the SYNTHETIC "
          "replica of the paper's sweep, not to measured runs):\n")
    print(rec)
    print(f"\nSaved the posterior to {nc}, the report to {report} and the decision to {decision} "
          f"({seconds:.0f} s in all)")
    return 0


def _demo_decision(out, args):
    from ..decisions.recommendation import recommend
    from ..inference.shipped import default_posterior
    from ..report.markdown import write_decision

    joint, m1 = capturing(default_posterior)
    rec, m2 = capturing(recommend, joint, budget=args.decision_budget, student_size=args.student_size,
                         scenarios=("teacher_inference", "pretraining_inference", "supervised"))
    path, m3 = capturing(write_decision, rec, joint, out)
    return rec, path, m1 + m2 + m3


def cmd_datasets(args) -> int:
    from ..data.datasets import dataset_records
    from ..report.tables import text_table

    records = dataset_records()
    if args.json:
        print_json({"datasets": records})
        return 0
    rows = [[f"{SHIPPED}{r['name']}", r["rows"], r["licence"], r["description"]] for r in records]
    print(text_table(["name", "rows", "licence", "description"], rows, align="lrll"))
    return 0


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayesdistill`` command."""
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="bayesdistill",
        description="Bayesian scaling laws for LLM training: fit a law to a sweep of training runs with "
                    "NUTS, check the fit, predict losses and compute-optimal allocations with uncertainty.",
        epilog="examples:\n  bayesdistill demo --quick\n  bayesdistill fit runs.csv --out posterior.nc\n"
               "  bayesdistill optimal posterior.nc --budget 1e21 1e22\nRun 'bayesdistill COMMAND --help' "
               "for the options of a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bayesdistill {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of tables")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = subparser(sub, "fit", cmd_fit, "fit a scaling law to a sweep of training runs and save the posterior",
                   ["bayesdistill fit runs.csv --out posterior.nc",
                    "bayesdistill fit runs.csv --columns 'Model Size=N,Tokens=D,Loss=loss' --law busbridge",
                    "bayesdistill fit shipped:gadre_c4 --subset c4_original --draws 500 --json"], [common])
    p.add_argument("data", metavar="DATA", help="sweep file (.csv, .tsv, .parquet, .jsonl) with columns N, D, "
                   "loss, or shipped:NAME for a shipped dataset (see 'bayesdistill datasets')")
    p.add_argument("--law", default="chinchilla", help="scaling law: chinchilla, busbridge, kaplan, muennighoff (reads a column U of unique "
                        "tokens), ... (any registered law; default: %(default)s)")
    p.add_argument("--noise", default="student_t", help="noise on log loss: student_t or normal (default: %(default)s)")
    p.add_argument("--out", default="posterior.nc", help="where to save the posterior (default: %(default)s)")
    p.add_argument("--columns", metavar="MAP", help="rename your columns, e.g. 'Model Size=N,Tokens=D'")
    p.add_argument("--subset", metavar="NAME", help="shipped:gadre_c4 only: keep the runs trained on this "
                   "dataset (c4_original, rpj or rw_original)")
    for name, default, what in (("chains", 4, "Markov chains"), ("draws", 1000, "draws per chain after warmup"),
                                ("warmup", 1000, "warmup (adaptation) steps per chain"), ("seed", 0, "random seed")):
        p.add_argument(f"--{name}", type=int, default=default, help=f"{what} (default: %(default)s)")
    p.add_argument("--target-accept", type=float, default=None,
                   help="NUTS target acceptance (default: 0.9 for supervised laws, 0.99 for distillation laws)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show the sampler's progress bar (default: when stderr is a terminal)")
    p.add_argument("--retry", action=argparse.BooleanOptionalAction, default=True,
                   help="sample a fit that fails its review once more, with target acceptance 0.99 and twice the "
                   "warmup (default: %(default)s)")
    p.add_argument("--strict", action="store_true", help="exit with code 3 when the fit fails its review")
    p.add_argument("--groups", metavar="COLUMN", help="one hierarchical fit over the groups of this column "
                   "(e.g. dataset; see 'pydoc bayesdistill.inference.pooling')")
    p.add_argument("--pool", default="exponents", help="with --groups: coefficients pooled across groups: "
                   "exponents, all or none (default: %(default)s)")

    posterior = argparse.ArgumentParser(add_help=False)
    posterior.add_argument("file", metavar="FILE", help="posterior file written by 'bayesdistill fit'")
    posterior.add_argument("--group", metavar="NAME", help="a grouped fit (fit --groups): use this group")
    budget = argparse.ArgumentParser(add_help=False)
    budget.add_argument("--accounting", choices=("paper", "6ND"), default="paper",
                        help="FLOP accounting: 'paper' = 3 F(N) D (Eq. 69) or '6ND' (default: %(default)s)")

    subparser(sub, "summary", cmd_summary, "show the summary table and the review of a saved posterior",
               ["bayesdistill summary posterior.nc", "bayesdistill summary posterior.nc --json"], [common, posterior])

    p = subparser(sub, "predict", cmd_predict, "predict the loss of models of N parameters trained on D tokens, "
                   "or (distillation posteriors) of a student distilled from a teacher",
                   ["bayesdistill predict posterior.nc --N 1e9 --D 2e10",
                    "bayesdistill predict posterior.nc --N 1e9 1e10 --tokens-per-param 20",
                    "bayesdistill predict posterior.nc --N 1e9 1e10 --D 2e10 2e11 --grid --json",
                    "bayesdistill predict joint.nc --N-S 5.46e8 --D-S 1.1e10 --N-T 1.82e9 --D-T 3.64e10",
                    "bayesdistill predict joint.nc --N-S 1.43e8 --D-S 2.9e9 4.6e10 --L-T 2.2 2.5 --grid --json"],
                   [common, posterior])
    p.add_argument("--N", nargs="+", type=float, help="model sizes (non-embedding parameters)")
    p.add_argument("--D", nargs="+", type=float, help="training tokens (paired with --N, or one value for all)")
    p.add_argument("--tokens-per-param", nargs="+", type=float, metavar="R", help="instead of --D: D = R * N")
    p.add_argument("--grid", action="store_true", help="predict every combination of the values given")
    for flag, what in (("N-S", "student sizes (non-embedding parameters)"), ("D-S", "student distillation tokens"),
                       ("N-T", "teacher sizes (with --D-T; its loss then comes from the supervised law)"),
                       ("D-T", "teacher training tokens"), ("L-T", "instead of --N-T, --D-T: the teacher's "
                                                                   "loss (nats per token)")):
        p.add_argument(f"--{flag}", nargs="+", type=float, metavar=flag.replace("-", "_"), help=what)
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draws (default: %(default)s)")

    p = subparser(sub, "optimal", cmd_optimal, "compute-optimal model size and tokens for a training budget; "
                   "with --student-size, compute-optimal distillation (D_S, N_T, D_T) per posterior draw",
                   ["bayesdistill optimal posterior.nc --budget 1e21",
                    "bayesdistill optimal posterior.nc --budget 1e20 1e21 1e22 --accounting 6ND --json",
                    "bayesdistill optimal --budget 1e22 --student-size 1e9   (shipped default posterior)",
                    "bayesdistill optimal joint.nc --budget 1e21 --student-size 3e8 --scenarios teacher_inference"],
                   [common, budget])
    p.add_argument("file", metavar="FILE", nargs="?", help="posterior file written by 'bayesdistill fit' "
                   "(optional with --student-size: the shipped default distillation posterior)")
    p.add_argument("--budget", nargs="+", type=float, required=True, help="training budget(s) in FLOPs")
    add_optimal_options(p)

    p = subparser(sub, "report", cmd_report, "write a Markdown report with plots (report.md and PNGs)",
                   ["bayesdistill report posterior.nc --out report/",
                    "bayesdistill report posterior.nc --out report/ --budget 1e22 --accounting 6ND"],
                   [common, posterior, budget])
    p.add_argument("--out", required=True, metavar="DIR", help="folder for report.md and the plots")
    p.add_argument("--budget", type=float, default=1e21, help="training budget in FLOPs (default: %(default)g)")

    p = subparser(sub, "demo", cmd_demo, "fit the shipped Gadre et al. C4 sweep and write a report (about a "
                   "minute; --quick: seconds, for smoke tests)",
                   ["bayesdistill demo", "bayesdistill demo --out demo_out --quick"], [common])
    p.add_argument("--out", default="out", metavar="DIR", help="folder for posterior.nc, report.md and plots "
                   "(default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="2 chains x 200 draws (200 warmup): fast, not converged")
    p.add_argument("--decision-budget", type=float, default=1e22, help="distillation decision: total FLOPs "
                   "(default: %(default)g)")
    p.add_argument("--student-size", type=float, default=1e9, help="distillation decision: student size "
                   "(default: %(default)g)")
    p.add_argument("--budget", type=float, default=1e21, help="training budget in FLOPs (default: %(default)g)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")

    add_parsers(sub, common)
    add_compare_parser(sub, [common])
    add_replica_parser(sub, common)
    add_recipes_parser(sub, common)
    subparser(sub, "datasets", cmd_datasets, "list the shipped datasets (use them as DATA = shipped:NAME)",
               ["bayesdistill datasets", "bayesdistill datasets --json"], [common])
    return parser


def main(argv=None) -> int:
    """Run the ``bayesdistill`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    os.environ["MPLBACKEND"] = "Agg"  # figures go to files; matplotlib reads this when a command first imports it
    from ..errors import BayesDistillError

    shown, warnings.showwarning = warnings.showwarning, show_warning
    try:
        return args.func(args)
    except (BayesDistillError, OSError) as exc:  # OSError: FileNotFoundError, PermissionError ...
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = shown
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
