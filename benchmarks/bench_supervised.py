"""Benchmark: Bayesian Chinchilla fit against grid + bootstrap (issue 2).

The 240 Chinchilla points Epoch AI used (five highest-loss runs dropped),
4 chains x 1000 draws after 1000 warmup, every default of ``bd.fit`` (so the
inner leave-last-level-out fit that learns ``kappa`` is included): *cold* (new
process, empty JAX compilation cache), *warm* (the same fit again in that
process: the compiled sampler is reused), a fit of another sweep of similar
size in that process, and a new process with the persistent cache warm. Side by side, in the same run,
the method people use today (``benchmarks/baseline.py``): Huber loss on log
residuals, L-BFGS-B from the 4,500-start grid, then 4,000 bootstrap refits,
twice: as published (Epoch AI's notebook: finite-difference gradients, SciPy's
default tolerances) and our faster version of it (analytic gradient, tight
tolerances). The issue quoted ~1,000 s (grid) + ~80 s (bootstrap) for the
recipe on this machine; both versions measure far faster here (44 s + 11 s as published), and
issue 13 restated the targets against the measured times: warm (the sampler compiled earlier
in the process) <= 4 s and >= 13x faster than the published recipe; cold (new process, empty
caches) <= 12 s; a second sweep of similar size compiles nothing and takes no longer than the
first fit's sampling.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time

NAMES = ("E", "A", "B", "alpha", "beta", "a")

_CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import numpy as np
import bayesdistill as bd
from bayesdistill.data.datasets import load_chinchilla_points
sweep = bd.read_sweep(load_chinchilla_points())
other = bd.read_sweep(load_chinchilla_points(drop_highest=20))  # another sweep, same bucket of runs
t1 = time.perf_counter()
SETTINGS = dict(chains=4, draws=1000, warmup=1000, progress_bar=False)

def timed(sw, seed, **kw):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        post = bd.fit(sw, law="chinchilla", seed=seed, **SETTINGS, **kw)
    return post, time.perf_counter() - t

def info(post, wall):
    r = post.review()
    return {"wall_s": wall, "sampler_s": post.config["seconds"], "compiled": post.config["compiled"],
            "inner_s": post.config.get("kappa", {}).get("inner_seconds", 0.0), "ok": r.ok,
            "checks": {c.name: c.value for c in r.checks},
            "steps": float(post.idata.sample_stats["n_steps"].mean())}

def quantiles(post):
    from arviz_stats.base import array_stats
    d = post.draws()
    d["a"] = d["beta"] / (d["alpha"] + d["beta"])
    out = {}
    for k in NAMES_HERE:
        x = d[k].reshape(post.config["chains"], -1).astype("float64")
        out[k] = [[float(np.quantile(x, q)), float(array_stats.mcse(x, method="quantile", prob=q))] for q in (0.05, 0.5, 0.95)]
    return out

out = {"import_s": t1 - t0}
post, wall = timed(sweep, 0)
out["first"] = info(post, wall)
first_E = post.draws()["E"]
post, wall = timed(sweep, 0)  # the same fit again: no compilation, the same draws
out["again"] = info(post, wall)
out["again"]["same_draws"] = bool(np.array_equal(post.draws()["E"], first_E))
d = post.draws()
d["a"] = d["beta"] / (d["alpha"] + d["beta"])
out["intervals"] = {k: [float(np.quantile(d[k], q)) for q in (0.05, 0.5, 0.95)] for k in NAMES_HERE}
out["quantiles"] = quantiles(post)
post, wall = timed(other, 1)
out["other"] = info(post, wall)
out["other"]["runs"] = len(other.df)
post, wall = timed(sweep, 0, discrepancy="distance")  # the same sampler without the inner kappa fit
out["distance"] = info(post, wall)
print("RESULT" + json.dumps(out))
""".replace("NAMES_HERE", repr(NAMES))


def _fit_in_subprocess(cache_dir: str, code_dir: str | None = None) -> dict:
    """The child's results in a new process (``code_dir``: the package found there instead, an earlier version)."""
    env = dict(os.environ, BAYESDISTILL_JAX_CACHE=cache_dir)
    if code_dir:
        from benchmarks.baseline import shared_env

        env = dict(shared_env(code_dir), BAYESDISTILL_JAX_CACHE=cache_dir)
    # cwd: ``python -c`` puts the working folder first on sys.path, ahead of PYTHONPATH
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=False,
                          cwd=code_dir)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    if proc.returncode or not line:
        raise RuntimeError(f"benchmark fit failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[0][len("RESULT"):])


def run(n_boot: int = 4000) -> dict:
    from benchmarks.baseline import SAMPLER_BASELINE_COMMIT, extract_code, run_baseline

    with tempfile.TemporaryDirectory() as cache:
        child = _fit_in_subprocess(cache)  # empty caches: the first fit is cold
        second_process = _fit_in_subprocess(cache)  # a new process with the persistent cache warm
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as code:
        why = extract_code(SAMPLER_BASELINE_COMMIT, code)  # the sampler before, same run
        before = {"error": why} if why else _fit_in_subprocess(cache, code)
    t = time.perf_counter()
    base = run_baseline(n_boot=n_boot, grid=True, seed=0)
    base_wall = time.perf_counter() - t
    t = time.perf_counter()
    pub = run_baseline(n_boot=n_boot, grid=True, seed=0, published=True)
    pub_wall = time.perf_counter() - t
    warm = child["again"]
    ess = warm["checks"]["min ESS bulk"]
    res = {
        "import_s": child["import_s"],
        "posterior_cold_s": child["first"]["wall_s"],
        "posterior_warm_s": warm["wall_s"],
        "posterior_new_process_warm_cache_s": second_process["first"]["wall_s"],
        "posterior_warm_distance_s": child["distance"]["wall_s"],
        "sampler_s": warm["sampler_s"], "inner_s": warm["inner_s"],
        "other_sweep": child["other"],
        "ess_bulk_min": ess,
        "ess_per_s_cold": ess / child["first"]["wall_s"],
        "ess_per_s_warm": ess / warm["wall_s"],
        "max_rhat": warm["checks"]["max R-hat"],
        "divergences": warm["checks"]["divergences"],
        "review_ok": warm["ok"],
        "grid_s": base["grid_seconds"],
        "bootstrap_s": base["bootstrap_seconds"],
        "baseline_total_s": base_wall,
        "published_grid_s": pub["grid_seconds"],
        "published_bootstrap_s": pub["bootstrap_seconds"],
        "published_total_s": pub_wall,
        "published_point": {k: pub["point"][k] for k in NAMES},
        "n_boot": n_boot,
        "posterior_intervals": child["intervals"],
        "bootstrap_intervals": {k: list(base["intervals"][k]) for k in NAMES},
        "baseline_point": {k: base["point"][k] for k in NAMES},
        "steps": warm["steps"],
        "before": {"commit": SAMPLER_BASELINE_COMMIT, **before},
    }
    if "again" in before:  # the same fit, the same quantiles: |new - old| within 4 Monte Carlo errors
        res["agreement"] = {k: [abs(a[0] - b[0]) <= 4 * math.hypot(a[1], b[1])
                                for a, b in zip(child["quantiles"][k], before["quantiles"][k])] for k in NAMES}
    for tag in ("cold", "warm"):
        s = res[f"posterior_{tag}_s"]
        res[f"speedup_vs_grid_bootstrap_{tag}"] = base_wall / s
        res[f"speedup_vs_bootstrap_{tag}"] = base["bootstrap_seconds"] / s
        res[f"speedup_vs_published_{tag}"] = pub_wall / s
        res[f"speedup_vs_published_bootstrap_{tag}"] = pub["bootstrap_seconds"] / s
    other = child["other"]
    res["targets"] = {
        "warm posterior <= 2 s": res["posterior_warm_s"] <= 2,
        ">= 30x faster than grid + bootstrap as published (warm)": res["speedup_vs_published_warm"] >= 30,
        "cold posterior (empty caches, new process, import included) <= 10 s":
            res["posterior_cold_s"] + res["import_s"] <= 10,
        "second fit of another sweep: no compilation": not other["compiled"],
        "second fit of another sweep: wall <= sampling time of the first": other["wall_s"] <= warm["sampler_s"],
        "max R-hat <= 1.01": res["max_rhat"] <= 1.01,
        "min ESS bulk >= 1000": ess >= 1000,
        "zero divergences": res["divergences"] == 0,
        "5/50/95% quantiles of every coefficient agree with the sampler before (4 MC se)":
            bool(res.get("agreement")) and all(all(v) for v in res["agreement"].values()),
    }
    return res


def markdown(res: dict) -> str:
    other = res["other_sweep"]
    lines = [
        "### Chinchilla fit (240 points): NUTS posterior vs grid + bootstrap",
        "",
        "| method | wall time (s) | min ESS bulk / s |",
        "|---|---:|---:|",
        f"| bayesdistill, 4x1000 draws, cold: new process, empty caches (incl. tracing and XLA compilation) | "
        f"{res['posterior_cold_s']:.1f} | {res['ess_per_s_cold']:.0f} |",
        f"| bayesdistill, 4x1000 draws, warm: the sampler compiled earlier in the process | "
        f"{res['posterior_warm_s']:.1f} | {res['ess_per_s_warm']:.0f} |",
        f"| of which the sampler / the inner leave-last-level-out fit for kappa | {res['sampler_s']:.1f} / "
        f"{res['inner_s']:.1f} | |",
        f"| bayesdistill, warm, `discrepancy=\"distance\"` (no inner fit) | {res['posterior_warm_distance_s']:.1f} | |",
        f"| bayesdistill, new process, warm persistent cache (tracing, no compilation) | "
        f"{res['posterior_new_process_warm_cache_s']:.1f} | |",
        f"| bayesdistill, another sweep ({other['runs']} runs) after the first, same process | "
        f"{other['wall_s']:.1f} | |",
        f"| L-BFGS-B from 4,500-start grid | {res['grid_s']:.1f} | |",
        f"| {res['n_boot']:,} bootstrap refits | {res['bootstrap_s']:.1f} | |",
        f"| grid + bootstrap total | {res['baseline_total_s']:.1f} | |",
        f"| as published (finite differences, SciPy defaults): grid | {res['published_grid_s']:.1f} | |",
        f"| as published: {res['n_boot']:,} bootstrap refits | {res['published_bootstrap_s']:.1f} | |",
        f"| as published: total | {res['published_total_s']:.1f} | |",
        "",
        f"Speed-up (warm / cold): {res['speedup_vs_published_warm']:.1f}x / {res['speedup_vs_published_cold']:.1f}x "
        f"vs grid + bootstrap as published, {res['speedup_vs_grid_bootstrap_warm']:.1f}x / "
        f"{res['speedup_vs_grid_bootstrap_cold']:.1f}x vs our faster version. Import of bayesdistill: "
        f"{res['import_s']:.1f} s (not counted). max R-hat {res['max_rhat']:.4f}, min ESS bulk "
        f"{res['ess_bulk_min']:.0f}, divergences {res['divergences']:.0f}; the other sweep compiled "
        f"{'a sampler' if other['compiled'] else 'nothing'}.",
        "",
        "| coefficient | posterior median (90% interval) | bootstrap point (90% interval) |",
        "|---|---|---|",
    ]
    for k in NAMES:
        lo, med, hi = res["posterior_intervals"][k]
        blo, bhi = res["bootstrap_intervals"][k]
        lines.append(f"| {k} | {med:.4g} ({lo:.4g}, {hi:.4g}) | {res['baseline_point'][k]:.4g} ({blo:.4g}, {bhi:.4g}) |")
    b = res.get("before", {})
    if "again" in b:
        lines += ["", f"The sampler before (commit {b['commit']}), the same child in the same run: "
                  f"cold {b['first']['wall_s']:.1f} s, warm {b['again']['wall_s']:.1f} s (sampler "
                  f"{b['again']['sampler_s']:.1f} s + inner kappa fit {b['again']['inner_s']:.1f} s), "
                  f"{b['again']['steps']:.1f} leapfrog steps per draw; now {res['steps']:.1f}. Quantiles "
                  f"(5/50/95%) of every coefficient within 4 Monte Carlo errors of the sampler before: "
                  f"{'yes' if res['targets'][next(k for k in res['targets'] if 'quantiles' in k)] else '**no**'}."]
    elif b:
        lines += ["", f"The sampler before (commit {b.get('commit')}) could not run: {b.get('error')}"]
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in res["targets"].items()]
    return "\n".join(lines) + "\n"
