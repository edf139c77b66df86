"""Every real sweep fitted with every default: does the fit pass its review, at what cost?

The fast-sampler issue asks that a default fit (4 x 1,000 draws after 1,000 warmup, seed 0,
``discrepancy="compute"``, ``retry=True``) passes its review, with the review's thresholds
unchanged, on every real sweep the benchmarks use, the grouped fit of the three Gadre sets and the
distillation replica. Each row is one ``bd.fit`` in this process (the samplers compiled by earlier
rows are reused); ``retry`` names the checks the first attempt failed, when it was sampled again
with target_accept 0.99 and twice the warmup (:func:`bayesdistill.fit`).
"""

from __future__ import annotations

import time
import warnings

SEED = 0


def _fit(sweep, **kw) -> tuple:
    import bayesdistill as bd

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        post = bd.fit(sweep, seed=SEED, progress_bar=False, **kw)
    return post, time.perf_counter() - t0


def _row(post, wall: float) -> dict:
    r = post.review()
    first = post.config.get("retry")
    return {
        "wall_s": wall, "passed": bool(r.ok), "steps": float(r.steps),
        "failed": [c.name for c in r.failed],
        "checks": {c.name: float(c.value) for c in r.checks},
        "retried": first is not None,
        "first_failed": first["failed"] if first else [],
        "first_steps": float(first["mean_leapfrog_steps"]) if first else float("nan"),
        "first_wall_s": float(first["seconds"]) if first else float("nan"),
    }


def run() -> dict:
    import bayesdistill as bd
    from bayesdistill.data.datasets import load_dataset
    from bayesdistill.inference.validation import real_sweeps

    sweeps, skipped = real_sweeps()
    rows = {}
    for name, df in sweeps.items():
        post, wall = _fit(df)
        rows[name] = _row(post, wall)
        print(f"  {name}: {rows[name]}", flush=True)
    post, wall = _fit(load_dataset("gadre_c4"), groups="dataset")
    rows["gadre_c4, grouped by dataset"] = _row(post, wall)
    for seed in (0, 1, 2):
        post, wall = _fit(bd.paper_sweep(seed=seed), law="distillation")
        rows[f"distillation replica {seed}"] = _row(post, wall)
        print(f"  replica {seed}: {rows[f'distillation replica {seed}']}", flush=True)
    return {"rows": rows, "skipped": skipped}


def markdown(res: dict) -> str:
    rows = res["rows"]
    out = ["### Every real sweep fitted with every default (4 x 1,000 after 1,000 warmup, seed 0, retry on)", "",
           "| sweep | wall (s) | review | leapfrog steps / draw | max R-hat | min ESS bulk | min ESS tail | divergences "
           "| first attempt (when sampled again) |",
           "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for name, r in rows.items():
        c = r["checks"]
        first = (f"failed {', '.join(r['first_failed'])}; {r['first_steps']:.0f} steps/draw, {r['first_wall_s']:.1f} s"
                 if r["retried"] else "")
        out.append(f"| {name} | {r['wall_s']:.1f} | {'passed' if r['passed'] else '**failed**'} | {r['steps']:.1f} | "
                   f"{c['max R-hat']:.3f} | {c['min ESS bulk']:.0f} | {c['min ESS tail']:.0f} | "
                   f"{c['divergences']:.0f} | {first} |")
    for name, why in res.get("skipped", {}).items():
        out.append(f"| {name} | | {why} | | | | | | |")
    n_pass = sum(r["passed"] for r in rows.values())
    out += ["", f"{n_pass} of {len(rows)} fits pass their review; {sum(r['retried'] for r in rows.values())} were "
            "sampled a second time.", "",
            "| target | met |", "|---|---|",
            f"| every fit passes its review at default settings | {'yes' if n_pass == len(rows) else '**no**'} |", ""]
    return "\n".join(out)
