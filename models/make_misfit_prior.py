"""Rebuild ``models/misfit_prior.json``: the population prior of the law's misfit beyond the fitted compute.

    make misfit-prior        # or: .venv/bin/python models/make_misfit_prior.py [--exclude NAME ...]

For every real sweep of :func:`bayesdistill.inference.validation.real_sweeps` (the shipped ones and
those read from ``../shared/data``; a sweep whose data are absent is left out and named in the
file), the Chinchilla law with ``discrepancy="distance"`` is fitted to every IsoFLOP rollout step
(levels ``0..k``, 4 chains x 500 draws after 500 warmup, seed 0) and the held-out level ``k+1``
gives the likelihood of ``(kappa, omega)`` (:func:`bayesdistill.inference.population.sweep_evidence`).
:func:`bayesdistill.inference.population.fit_population` turns the sweeps' evidence into the
hierarchical population prior, written atomically with the sweeps it came from and each sweep's
evidence grid (so the benchmark can refit it leaving one sweep out). Takes a few minutes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "misfit_prior.json"
LAW = "chinchilla"
SETTINGS = {"chains": 4, "draws": 500, "warmup": 500, "seed": 0}


def main(argv=None) -> int:
    import jax
    import numpy as np

    from bayesdistill._files import write_text_atomically
    from bayesdistill._version import __version__
    from bayesdistill.inference.population import fit_population, sweep_evidence
    from bayesdistill.inference.validation import real_sweeps

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exclude", nargs="*", default=[], help="sweeps to leave out")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    data, skipped = real_sweeps()
    evidence, sweeps = {}, {}
    for name, df in data.items():
        if name in args.exclude:
            continue
        t = time.perf_counter()
        ll, steps = sweep_evidence(df, LAW, **SETTINGS)
        jax.clear_caches()
        evidence[name] = ll
        sweeps[name] = {"runs": len(df), "steps": steps, "seconds": round(time.perf_counter() - t, 1)}
        print(f"{name}: {len(steps)} rollout steps, {sweeps[name]['seconds']} s", flush=True)
    if not evidence:
        print("no sweep to learn from; nothing written", file=sys.stderr)
        return 1
    pop = fit_population(evidence)
    pop.update({
        "what": "population prior of (kappa, omega), the law's misfit beyond the fitted compute "
                "(bayesdistill.inference.misfit); log_density is the predictive density of a new sweep's "
                "(kappa, omega) at the grid nodes",
        "made_by": "models/make_misfit_prior.py", "bayesdistill": __version__,
        "date": datetime.date.today().isoformat(), "law": LAW, "settings": SETTINGS,
        "fitted_sweeps": sweeps, "absent_sweeps": skipped, "excluded": list(args.exclude),
        "evidence": {k: np.round(v, 3).tolist() for k, v in evidence.items()},
    })
    write_text_atomically(args.out, json.dumps(pop, indent=1) + "\n")
    print(f"wrote {args.out}: kappa median {pop['predictive']['kappa']['q50']:.4f} q90 "
          f"{pop['predictive']['kappa']['q90']:.4f}, omega median {pop['predictive']['omega']['q50']:.4f} "
          f"q90 {pop['predictive']['omega']['q90']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
