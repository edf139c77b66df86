"""Rebuild ``models/distillation_replica.nc``, the default posterior of ``bayesdistill recommend``.

    .venv/bin/python models/make_default.py [--priors default|paper]

Fits the joint distillation law (``law="distillation"``) to the SYNTHETIC
replica of the paper's sweep (``bd.paper_sweep(seed=0)``: 73 supervised + 697
distillation runs drawn from Table 6's laws with 1% noise), 4 chains x 1000
draws after 1000 warmup, seed 0, constant noise (``discrepancy="none"``), then keeps every 4th draw (4 x 250) and drops
the per-run log-likelihood so the file stays small. The fit must pass its
review, or nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "distillation_replica.nc"
THIN = 4


def main(argv=None) -> int:
    import xarray as xr

    import bayesdistill as bd
    from bayesdistill.inference.posterior import Posterior

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--priors", choices=("default", "paper"), default="default")
    args = ap.parse_args(argv)
    sweep = bd.read_sweep(bd.paper_sweep(seed=0))
    # discrepancy="none": the replica is drawn from the law itself with constant 1% noise, so there is
    # no misfit that grows away from the data to model
    post = bd.fit(sweep, law="distillation", chains=4, draws=1000, warmup=1000, seed=0, discrepancy="none",
                  priors=bd.paper_priors() if args.priors == "paper" else None, progress_bar=False)
    print(post.review())
    if not post.review().ok:
        print("the fit failed its review; nothing written", file=sys.stderr)
        return 1
    idata = xr.DataTree.from_dict({
        name: (node.dataset.isel(draw=slice(None, None, THIN)) if "draw" in node.dims else node.dataset)
        for name, node in post.idata.children.items() if name != "log_likelihood"})
    config = {**post.config, "source": "SYNTHETIC paper replica: bd.paper_sweep(seed=0)", "synthetic": True,
              "thinned": THIN, "priors_preset": args.priors, "made_by": "models/make_default.py"}
    small = Posterior(idata, post.law, post.priors, post.noise, post.centre, config)
    small.save(OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB); review of the thinned draws: "
          f"{'passed' if small.review().ok else 'FAILED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
