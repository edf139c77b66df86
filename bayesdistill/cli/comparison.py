"""``bayesdistill compare``: model comparison of law variants (see :mod:`bayesdistill.inference.comparison`)."""

from __future__ import annotations

import argparse

from .common import capturing, print_json, read_data

EXAMPLES = ["bayesdistill compare runs.csv",
            "bayesdistill compare runs.csv --laws chinchilla busbridge chinchilla:normal busbridge:normal",
            "bayesdistill compare shipped:gadre_c4 --subset c4_original --no-extrapolation --json"]


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
    p.add_argument("--no-smc", dest="smc", action="store_false", help="skip the second log Z estimator")
    p.add_argument("--no-prior-sensitivity", dest="prior_sensitivity", action="store_false",
                   help="skip log Z with twice as wide priors")
    p.add_argument("--no-extrapolation", dest="extrapolation", action="store_false",
                   help="skip the leave-largest-compute-out refits")
    p.add_argument("--holdout-quantile", type=float, default=0.75,
                   help="refit on runs up to this compute quantile, score the rest (default: %(default)s)")
    p.add_argument("--accounting", choices=("6ND", "paper"), default="6ND",
                   help="compute of a run: 6ND or 'paper' = 3 F(N) D (default: %(default)s)")
    p.set_defaults(func=run_compare)
    return p


def run_compare(args) -> int:
    """Run ``bayesdistill compare``; prints a table (or JSON with ``--json``); returns the exit code."""
    import pandas as pd

    from ..inference.comparison import compare

    sweep = read_data(args.data, args.columns, args.subset)
    table, messages = capturing(
        compare, sweep, args.laws, noise=args.noise, chains=args.chains, draws=args.draws, warmup=args.warmup,
        seed=args.seed, smc=args.smc, smc_particles=args.smc_particles, smc_seeds=args.smc_seeds,
        prior_sensitivity=args.prior_sensitivity, extrapolation=args.extrapolation,
        holdout_quantile=args.holdout_quantile, accounting=args.accounting, discrepancy=args.discrepancy)
    if getattr(args, "json", False):
        print_json({"table": {k: dict(r) for k, r in table.iterrows()}, "columns": list(table.columns),
                     "attrs": table.attrs, "warnings": messages})
        return 0
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table.T.to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"\nlog Z is the log density of the {table.attrs['runs']} runs' log losses under each law and its "
          "priors; log_bf < -2.3 means 10:1 against. See 'pydoc bayesdistill.inference.comparison' for every column.")
    return 0
