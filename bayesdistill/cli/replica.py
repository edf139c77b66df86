"""``bayesdistill replica``: write the synthetic paper replica (:func:`bayesdistill.data.replica.paper_sweep`)."""

from __future__ import annotations

from pathlib import Path

from .._files import write_atomically
from ..data.options import TEACHER_MODES
from .common import print_json, subparser


def cmd_replica(args) -> int:
    """Write :func:`paper_sweep` to a CSV atomically (temporary file, then ``os.replace``)."""
    from ..data.replica import paper_sweep

    df = paper_sweep(seed=args.seed, noise=args.noise, teacher=args.teacher)
    write_atomically(args.out.resolve(), lambda tmp: df.to_csv(tmp, index=False))
    counts = df.groupby("group", sort=False).size().to_dict()
    if args.json:
        print_json({"out": str(args.out), "runs": len(df), "groups": counts})
    else:
        print(f"wrote {len(df)} runs to {args.out}: {counts}")
    return 0


def add_replica_parser(sub, common) -> None:
    """Add the ``replica`` subcommand."""
    p = subparser(sub, "replica", cmd_replica, "write the SYNTHETIC replica of the Busbridge et al. (2025) "
                  "distillation sweep (Table 6 laws plus noise) to a CSV",
                  ["bayesdistill replica --seed 0 --noise 0.01 --out data/paper_replica.csv",
                   "bayesdistill replica --teacher loss --out replica.csv --json"], [common])
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--noise", type=float, default=0.01, help="lognormal noise scale (default: %(default)s)")
    p.add_argument("--teacher", choices=TEACHER_MODES, default="both",
                   help="teacher columns: both, loss (L_T) or size (N_T, D_T) (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("data/paper_replica.csv"),
                   help="CSV to write (default: %(default)s)")
