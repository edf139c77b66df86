"""Benchmark: log marginal likelihood of every supervised variant on the Chinchilla points (issue 5).

The 240 points Epoch AI extracted from Chinchilla (Hoffmann et al. 2022, five highest-loss runs
dropped; needs ``../shared/data``, skipped otherwise). Each variant (Chinchilla or the gamma form,
Student-t or Gaussian noise; the default distance discrepancy) is fitted with 4 chains x 1000
draws after 1000 warmup, then log Z comes from bridge sampling, tempered SMC (500 particles x 4
seeds) and Laplace, plus PSIS-LOO and stacking weights, with ``bd.compare(extrapolation=False)``.
Targets: <= 60 s per variant, Monte Carlo error <= 0.3 nats, estimators agreeing.
"""

from __future__ import annotations

import time
import warnings

VARIANTS = ["chinchilla:student_t", "busbridge:student_t", "chinchilla:normal", "busbridge:normal"]


def run() -> dict:
    import bayesdistill as bd
    from bayesdistill.data.datasets import load_chinchilla_points
    from bayesdistill.inference.comparison import compare
    from bayesdistill.inference.evidence import EvidenceWarning

    try:
        sweep = bd.read_sweep(load_chinchilla_points())
    except FileNotFoundError as exc:
        return {"skipped": str(exc)}
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bd.FitWarning)
        table = compare(sweep, VARIANTS, chains=4, draws=1000, warmup=1000, seed=0, extrapolation=False)
    wall = time.perf_counter() - t
    rows = {k: {c: float(v) for c, v in r.items()} for k, r in table.iterrows()}
    return {"rows": rows, "wall_s": wall, "runs": table.attrs["runs"], "stages_s": table.attrs["seconds"],
            "evidence_warnings": [str(w.message) for w in caught if issubclass(w.category, EvidenceWarning)],
            "fit_warnings": [str(w.message) for w in caught if not issubclass(w.category, EvidenceWarning)]}


def markdown(res: dict) -> str:
    head = "### Evidence of the supervised variants on the Chinchilla points (240 runs), 4x1000 per variant"
    if "skipped" in res:
        return f"{head}\n\nSkipped: {res['skipped']}\n"
    lines = [head, "",
             "| variant | log Z (bridge) | log Z (SMC) | log Z (Laplace) | log BF vs best | log Z, priors x2 "
             "| elpd LOO | stacking weight | seconds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in res["rows"].items():
        lines.append(f"| {name} | {r['log_z']:.2f} +- {r['log_z_se']:.2f} | {r['log_z_smc']:.2f} +- "
                     f"{r['log_z_smc_se']:.2f} | {r['log_z_laplace']:.2f} | {r['log_bf']:.2f} | "
                     f"{r['log_z_wide']:.2f} | {r['elpd_loo']:.1f} +- {r['elpd_loo_se']:.1f} | "
                     f"{r['weight']:.2f} | {r['seconds']:.0f} |")
    worst_se = max(r["log_z_se"] for r in res["rows"].values())
    slowest = max(r["seconds"] for r in res["rows"].values())
    lines += ["", f"Densities of log loss. Largest bridge Monte Carlo error {worst_se:.3f} nats (target <= 0.3); "
              f"slowest variant {slowest:.0f} s (target <= 60 s; fit, bridge, SMC, Laplace, LOO and "
              "prior sensitivity together). Estimators disagreeing: "
              f"{len(res['evidence_warnings'])}; fit review warnings: {len(res['fit_warnings'])}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(run()))
