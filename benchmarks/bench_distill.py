"""Benchmark: the joint distillation fit on the full synthetic replica (issues 3 and 19).

``bd.paper_sweep(seed=s)`` (73 supervised + 697 distillation runs, SYNTHETIC: Table 6 laws plus
1% noise), 4 chains x 1000 draws after 1000 warmup, every default of ``bd.fit`` (target_accept 0.99
for distillation laws), with the default priors and with the Table 6 preset (``bd.paper_priors()``).
Replica seed 0 is fitted twice in one process (cold: compilation included; warm: the compiled
sampler reused), replica seeds 1 and 2 once each (warm). Reports wall time, mean leapfrog steps per
draw, the review and whether each true coefficient lies in its 90% interval. In the same run, the
sampler before (`SAMPLER_BASELINE_COMMIT`) fits replica seed 0 in a new process (cold and warm).
Targets (issue 19): warm <= 20 s, 0 divergences on any replica seed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings

_BEFORE_CHILD = r"""
import json, time, warnings
import bayesdistill as bd
sweep = bd.read_sweep(bd.paper_sweep(seed=0))
out = []
for _ in range(2):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = bd.fit(sweep, law="distillation", chains=4, draws=1000, warmup=1000, seed=0, target_accept=0.99,
                      progress_bar=False)
    r = post.review()
    out.append({"wall_s": time.perf_counter() - t, "steps": float(post.idata.sample_stats["n_steps"].mean()),
                "review": {c.name: c.value for c in r.checks}, "ok": r.ok})
print("RESULT" + json.dumps(out))
"""


def _before() -> dict:
    from benchmarks.baseline import SAMPLER_BASELINE_COMMIT, extract_code, shared_env

    with tempfile.TemporaryDirectory() as code:
        why = extract_code(SAMPLER_BASELINE_COMMIT, code)
        if why:
            return {"error": why}
        proc = subprocess.run([sys.executable, "-c", _BEFORE_CHILD], env=shared_env(code),
                              capture_output=True, text=True, check=False, cwd=code)  # cwd comes first on sys.path
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    if proc.returncode or not line:
        return {"error": proc.stderr[-1500:]}
    cold, warm = json.loads(line[0][len("RESULT"):])
    return {"commit": SAMPLER_BASELINE_COMMIT, "cold": cold, "warm": warm}


def _fit(bd, seed: int, preset) -> dict:
    from bayesdistill.laws.distillation import TABLE6

    sweep = bd.read_sweep(bd.paper_sweep(seed=seed))
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        post = bd.fit(sweep, law="distillation", chains=4, draws=1000, warmup=1000, seed=0, progress_bar=False,
                      priors=bd.paper_priors() if preset else None)
    wall = time.perf_counter() - t
    s = post.summary()
    covered = {k: bool(s.loc[k, "q05"] <= v <= s.loc[k, "q95"]) for k, v in TABLE6.items()}
    r = post.review()
    return {"wall_s": wall, "review": {c.name: c.value for c in r.checks}, "ok": r.ok, "covered": covered,
            "steps": r.steps, "compiled": post.config["compiled"]}


def run() -> dict:
    import bayesdistill as bd

    out = {"replica 0, default priors, cold": _fit(bd, 0, None),
           "replica 0, default priors": _fit(bd, 0, None),
           "replica 0, Table 6 preset": _fit(bd, 0, "paper"),
           "replica 1, default priors": _fit(bd, 1, None),
           "replica 2, default priors": _fit(bd, 2, None)}
    warm = [v for k, v in out.items() if "cold" not in k]
    out["_targets"] = {"warm <= 20 s": all(v["wall_s"] <= 20 for v in warm),
                       "0 divergences on every replica seed": all(v["review"]["divergences"] == 0 for v in warm)}
    out["_before"] = _before()
    return out


def markdown(res: dict) -> str:
    lines = ["### Joint distillation fit on the synthetic replica (770 runs), 4x1000, every default "
             "(target_accept 0.99)", "",
             "| replica, priors | wall (s) | leapfrog steps / draw | max R-hat | min ESS bulk | divergences | review "
             "| truths in 90% intervals |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for label, r in res.items():
        if label.startswith("_"):
            continue
        c = r["review"]
        lines.append(f"| {label} | {r['wall_s']:.1f} | {r.get('steps', float('nan')):.0f} | {c['max R-hat']:.3f} | "
                     f"{c['min ESS bulk']:.0f} | {c['divergences']:.0f} | {'passed' if r['ok'] else '**failed**'} | "
                     f"{sum(r['covered'].values())} / {len(r['covered'])} |")
    b = res.get("_before", {})
    if "warm" in b:
        lines += ["", f"The sampler before (commit {b['commit']}), replica 0, default "
                  f"priors, in the same run: cold {b['cold']['wall_s']:.0f} s, warm {b['warm']['wall_s']:.0f} s, "
                  f"{b['warm']['steps']:.0f} leapfrog steps per draw, {b['warm']['review']['divergences']:.0f} "
                  "divergences."]
    elif b:
        lines += ["", f"The code before could not run: {str(b.get('error'))[-300:]}"]
    if "_targets" in res:
        lines += ["", "| target | met |", "|---|---|"]
        lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in res["_targets"].items()]
    return "\n".join(lines) + "\n"
