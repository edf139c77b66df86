"""``bayesdistill recipes``: which recipe to scale (see :mod:`bayesdistill.decisions.recipes`)."""

from __future__ import annotations

from .common import capturing, load_posterior, print_json, subparser

EXAMPLES = ["bayesdistill fit shipped:gadre_c4 --groups dataset --out grouped.nc",
            "bayesdistill recipes grouped.nc c4_original rpj --budget 1e21 1e22 1e23",
            "bayesdistill recipes grouped.nc c4_original rw_original --budget 1e23 --json"]


def add_recipes_parser(sub, common):
    """Register ``recipes`` on the ``bayesdistill`` subparsers; returns its parser."""
    p = subparser(sub, "recipes", cmd_recipes,
                  "compare two recipes (groups of a grouped fit): the compute multiplier of B over A with its "
                  "interval, P(B beats A) per budget, and where the preferred recipe changes", EXAMPLES, [common])
    p.add_argument("file", metavar="FILE", help="grouped posterior ('bayesdistill fit ... --groups COLUMN')")
    p.add_argument("a", metavar="A", help="reference recipe (a group name)")
    p.add_argument("b", metavar="B", help="alternative recipe (a group name)")
    p.add_argument("--budget", type=float, nargs="+", default=[1e21, 1e22, 1e23], metavar="FLOPS",
                   help="training budgets in FLOPs (default: %(default)s)")
    p.add_argument("--accounting", choices=("6ND", "paper"), default="6ND",
                   help="FLOP accounting: '6ND' or 'paper' = 3 F(N) D (default: %(default)s)")
    p.add_argument("--prob", type=float, default=0.9, help="interval mass (default: %(default)s)")
    return p


def cmd_recipes(args) -> int:
    from ..decisions.recipes import compare_recipes

    post = load_posterior(args.file)
    res, messages = capturing(compare_recipes, args.a, args.b, posterior=post, budgets=args.budget,
                              accounting=args.accounting, prob=args.prob)
    if args.json:
        print_json({**res.to_dict(), "warnings": messages})
    else:
        print(res)
    return 0
