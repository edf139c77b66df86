"""Benchmark: log marginal likelihood of every supervised variant on the Chinchilla points (issue 5).

The 240 points Epoch AI extracted from Chinchilla (Hoffmann et al. 2022, five highest-loss runs
dropped; needs ``../shared/data``, skipped otherwise). Each variant (Chinchilla or the gamma form,
Student-t or Gaussian noise; the default distance discrepancy) is fitted with 4 chains x 1000
draws after 1000 warmup, then log Z comes from bridge sampling, tempered SMC (500 particles x 4
seeds) and Laplace, plus PSIS-LOO and stacking weights, with ``bd.compare(extrapolation=False)``.
Targets: <= 60 s per variant, Monte Carlo error <= 0.3 nats, estimators agreeing.

Second part (issue 19): ``bd.compare`` of notebook 05's four variants on the 34 Gadre ``c4_original``
runs with that notebook's settings (evidence by bridge sampling and SMC, LOO, extrapolation), in a
new process, with the sampler before (`SAMPLER_BASELINE_COMMIT`) run the same way in the same run.
Target: <= 60 s (304 s before).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

VARIANTS = ["chinchilla:student_t", "busbridge:student_t", "chinchilla:normal", "busbridge:normal"]


#: notebook 05's comparison, timed in a child process (``PYTHONPATH`` picks the code)
_NB05_CHILD = r"""
import json, time, warnings
import bayesdistill as bd
from bayesdistill.data.datasets import load_dataset
sweep = bd.read_sweep(load_dataset("gadre_c4", dataset="c4_original"))
laws = ["chinchilla", "busbridge", "chinchilla:normal", "busbridge:normal"]
t = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    table = bd.compare(sweep, laws=laws, seed=0, chains=4, draws=1000, warmup=1000, target_accept=0.95)
wall = time.perf_counter() - t
fails = sum("failed its review" in str(w.message) for w in caught)
print("RESULT" + json.dumps({"wall_s": wall, "review_warnings": fails,
                             "log_z": {k: float(v) for k, v in table.log_z.items()},
                             "log_z_smc": {k: float(v) for k, v in table.log_z_smc.items()}}))
"""


def notebook05(code_dir: str | None = None) -> dict:
    """Seconds and log Z of notebook 05's comparison in a new process (``code_dir``: an earlier version)."""
    env = dict(os.environ)
    if code_dir:
        from benchmarks.baseline import shared_env

        env = shared_env(code_dir)
    # cwd: ``python -c`` puts the working folder first on sys.path, ahead of PYTHONPATH
    proc = subprocess.run([sys.executable, "-c", _NB05_CHILD], env=env, capture_output=True, text=True, check=False,
                          cwd=code_dir)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    if proc.returncode or not line:
        return {"error": proc.stderr[-1500:]}
    return json.loads(line[0][len("RESULT"):])


def run() -> dict:
    from benchmarks.baseline import SAMPLER_BASELINE_COMMIT, extract_code

    res = run_chinchilla()
    res["notebook05"] = notebook05()
    with tempfile.TemporaryDirectory() as code:
        why = extract_code(SAMPLER_BASELINE_COMMIT, code)
        res["notebook05_before"] = {"error": why} if why else notebook05(code)
    res["notebook05_before"]["commit"] = SAMPLER_BASELINE_COMMIT
    return res


def run_chinchilla() -> dict:
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


def _nb05_markdown(res: dict) -> list[str]:
    now, before = res.get("notebook05", {}), res.get("notebook05_before", {})
    lines = ["", "#### `bd.compare` of notebook 05's four variants on the 34 Gadre c4_original runs "
             "(4 x 1000, target_accept 0.95; evidence, LOO, extrapolation)", ""]
    if "wall_s" not in now:
        return lines + [f"Failed: {now.get('error', '?')}"]
    lines += ["| code | wall (s) | fits failing their review | log Z bridge - SMC, largest gap (nats) |",
              "|---|---:|---:|---:|"]
    for label, r in (("now", now), (f"before (commit {before.get('commit')})", before)):
        if "wall_s" in r:
            gap = max(abs(r["log_z"][k] - r["log_z_smc"][k]) for k in r["log_z"])
            lines.append(f"| {label} | {r['wall_s']:.0f} | {r['review_warnings']} | {gap:.2f} |")
        else:
            lines.append(f"| {label} | not run: {str(r.get('error', '?'))[-200:]} | | |")
    lines += ["", f"Target <= 60 s: {'met' if now['wall_s'] <= 60 else '**not met**'}."]
    return lines


def markdown(res: dict) -> str:
    head = "### Evidence of the supervised variants on the Chinchilla points (240 runs), 4x1000 per variant"
    if "skipped" in res:
        return f"{head}\n\nSkipped: {res['skipped']}\n" + "\n".join(_nb05_markdown(res)) + "\n"
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
    return "\n".join(lines + _nb05_markdown(res)) + "\n"


if __name__ == "__main__":
    print(markdown(run()))
