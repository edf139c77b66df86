"""``bayesdistill compare``: model comparison of law variants (see :mod:`bayesdistill.inference.comparison`)."""

from __future__ import annotations

import argparse

from ..errors import BayesDistillError
from .common import capturing, print_json, read_data

EXAMPLES = ["bayesdistill compare runs.csv",
            "bayesdistill compare runs.csv --laws chinchilla busbridge chinchilla:normal busbridge:normal",
            "bayesdistill compare shipped:gadre_c4 --subset c4_original --no-extrapolation --json",
            "bayesdistill compare shipped:gadre_c4 --subset c4_original --laws chinchilla busbridge kaplan "
            "--average stacking --budget 1e22"]
#: where ``--average`` finds each method's weights in the comparison table
WEIGHT_COLUMN = {"stacking": "weight", "evidence": "p_model"}


def add_compare_parser(subparsers, parents=()):
    """Add the ``compare`` subcommand to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser(
        "compare", parents=list(parents), formatter_class=argparse.RawDescriptionHelpFormatter,
        help="compare scaling-law variants on a sweep by evidence (log Z), PSIS-LOO and extrapolation",
        description="Fit every law variant with NUTS and compare them: log marginal likelihood (bridge "
                    "sampling, checked by tempered SMC), Bayes factors, PSIS-LOO with stacking weights, and "
                    "the predictive density of the most expensive runs from a refit without them. Densities "
                    "are of log loss.",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES))
    p.add_argument("data", metavar="DATA", help="sweep file or shipped:NAME (see 'bayesdistill datasets')")
    p.add_argument("--laws", nargs="+", default=["chinchilla", "busbridge"], metavar="LAW",
                   help="variants: LAW or LAW:NOISE, e.g. chinchilla:normal (default: %(default)s)")
    p.add_argument("--noise", default="student_t", help="noise of variants without :NOISE (default: %(default)s)")
    p.add_argument("--discrepancy", default="distance", choices=("distance", "none"),
                   help="noise growth away from the fitted runs (see 'fit'; default: %(default)s)")
    p.add_argument("--columns", metavar="MAP", help="rename your columns, e.g. 'Model Size=N,Tokens=D'")
    p.add_argument("--subset", metavar="NAME", help="shipped:gadre_c4 only: keep runs of this dataset")
    for name, default, what in (("chains", 4, "Markov chains"), ("draws", 1000, "draws per chain"),
                                ("warmup", 1000, "warmup steps per chain"), ("seed", 0, "random seed"),
                                ("smc-particles", 500, "SMC particles per run"), ("smc-seeds", 4, "SMC runs")):
        p.add_argument(f"--{name}", type=int, default=default, help=f"{what} (default: %(default)s)")
    p.add_argument("--retry", action=argparse.BooleanOptionalAction, default=True,
                   help="sample a fit that fails its review a second time (default: on)")
    p.add_argument("--no-smc", dest="smc", action="store_false", help="skip the second log Z estimator")
    p.add_argument("--no-prior-sensitivity", dest="prior_sensitivity", action="store_false",
                   help="skip log Z with twice as wide priors")
    p.add_argument("--no-extrapolation", dest="extrapolation", action="store_false",
                   help="skip the leave-largest-compute-out refits")
    p.add_argument("--holdout-quantile", type=float, default=0.75,
                   help="refit on runs up to this compute quantile, score the rest (default: %(default)s)")
    p.add_argument("--accounting", choices=("6ND", "paper"), default="6ND",
                   help="compute of a run: 6ND or 'paper' = 3 F(N) D (default: %(default)s)")
    p.add_argument("--average", choices=tuple(WEIGHT_COLUMN), metavar="{stacking,evidence}",
                   help="also average the variants' posteriors (bd.average) with the table's stacking weights or "
                        "posterior model probabilities, and print each law's and the average's compute-optimal "
                        "N*, D* and loss at --budget (supervised laws only)")
    p.add_argument("--budget", type=float, metavar="FLOPS",
                   help="training budget of --average's prediction (default: ten times the sweep's largest "
                        "compute, in --accounting)")
    p.set_defaults(func=run_compare)
    return p


def run_compare(args) -> int:
    """Run ``bayesdistill compare``; prints a table (or JSON with ``--json``); returns the exit code."""
    import pandas as pd

    from ..inference.comparison import compare

    averaging = getattr(args, "average", None)
    if averaging is None and getattr(args, "budget", None) is not None:
        raise BayesDistillError("--budget sets the prediction of --average; give --average stacking or evidence")
    if averaging is not None:
        _check_averageable(args.laws)
    sweep = read_data(args.data, args.columns, args.subset)
    result, messages = capturing(
        compare, sweep, args.laws, noise=args.noise, chains=args.chains, draws=args.draws, warmup=args.warmup,
        seed=args.seed, smc=args.smc, smc_particles=args.smc_particles, smc_seeds=args.smc_seeds,
        prior_sensitivity=args.prior_sensitivity, extrapolation=args.extrapolation,
        holdout_quantile=args.holdout_quantile, accounting=args.accounting, discrepancy=args.discrepancy,
        retry=getattr(args, "retry", True), keep_fits=averaging is not None)
    table = result.table if averaging is not None else result
    averaged = None if averaging is None else _averaged(result, averaging, args)
    if getattr(args, "json", False):
        out = {"table": {k: dict(r) for k, r in table.iterrows()}, "columns": list(table.columns),
               "attrs": table.attrs, "warnings": messages}
        if averaged is not None:
            out["average"] = averaged
        print_json(out)
        return 0
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table.T.to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"\nlog Z is the log density of the {table.attrs['runs']} runs' log losses under each law and its "
          "priors; log_bf < -2.3 means 10:1 against. See 'pydoc bayesdistill.inference.comparison' for every column.")
    if averaged is not None:
        print("\n" + _averaged_text(averaged))
    return 0


def _check_averageable(laws) -> None:
    """Refuse ``--average`` with distillation laws before any (slow) fit."""
    from ..laws.base import get_law
    from ..laws.distillation import is_distillation

    joint = [name for name in laws if is_distillation(get_law(name.split(":", 1)[0]))]
    if joint:
        raise BayesDistillError(f"--average mixes supervised laws only; {joint} are distillation laws")


def _averaged(result, method: str, args) -> dict:
    """The variants averaged with the table's weights, and compute-optimal N*, D*, L* of each law and the mixture."""
    import numpy as np

    from ..allocation.supervised import compute_optimal
    from ..inference.averaging import average
    from ..laws.flops import supervised_flops

    table = result.table
    weights = table[WEIGHT_COLUMN[method]].reindex(list(result.fits)).to_numpy(float)
    mix = average(result.fits, weights, seed=args.seed)
    runs = result.sweep.supervised
    c_max = float(np.max(supervised_flops(runs["N"].to_numpy(float), runs["D"].to_numpy(float), args.accounting)))
    budget = 10 * c_max if args.budget is None else float(args.budget)
    if not (np.isfinite(budget) and budget > 0):
        raise BayesDistillError(f"--budget must be a positive number of FLOPs, got {args.budget!r}")
    rows = {}
    for label, post in [*result.fits.items(), ("average", mix)]:
        row = compute_optimal(post, [budget], accounting=args.accounting).summary().iloc[0]
        rows[label] = {"weight": 1.0 if label == "average" else float(mix.weights[mix.names.index(label)]),
                       **{f"{q}_{s}": float(row[f"{q}_{s}"]) for q in ("N", "D", "loss")
                          for s in ("median", "q05", "q95")}}
    return {"method": method, "weights": dict(zip(mix.names, map(float, mix.weights))),
            "draws": mix.summary_dict()["draws"], "budget": budget, "largest_sweep_compute": c_max,
            "accounting": args.accounting, "compute_optimal": rows}


def _averaged_text(av: dict) -> str:
    from ..report.markdown import fmt, fmt_interval
    from ..report.tables import text_table

    what = "stacking weights" if av["method"] == "stacking" else "posterior model probabilities (evidence)"
    rows = [[label, "" if label == "average" else f"{r['weight']:.3f}",
             *(f"{fmt(r[f'{q}_median'])} {fmt_interval(r[f'{q}_q05'], r[f'{q}_q95'])}" for q in ("N", "D", "loss"))]
            for label, r in av["compute_optimal"].items()]
    return "\n".join([f"Averaged posterior ({what}; {sum(av['draws'].values())} draws). Compute-optimal at "
                      f"{fmt(av['budget'])} FLOPs ({av['accounting']}; the sweep's largest run used "
                      f"{fmt(av['largest_sweep_compute'])}), medians and 90% intervals:",
                      text_table(["law", "weight", "N*", "D*", "loss"], rows)])
