"""Benchmark: kappa from the Laplace step against kappa from the inner NUTS fit, on every real sweep (issue 19).

For each real sweep with a leave-last-level-out plan (Chinchilla law, every default), the inner
posterior is made both ways: Laplace + Pareto-smoothed importance sampling (what ``bd.fit`` uses
where Pareto k <= 0.7) and NUTS (4 x 1000 after 1000 warmup, the sampler of the main fit; what
``bd.fit`` falls back to). Reports kappa's 5/50/95% quantiles from each, the Pareto k and the
seconds of each inner posterior.
"""

from __future__ import annotations

import time
import warnings


def sweeps() -> dict:
    from bayesdistill.data.datasets import load_chinchilla_points, load_dataset, load_misfitting

    out = {}
    for name in ("c4_original", "rpj", "rw_original"):
        out[f"gadre_c4 / {name}"] = load_dataset("gadre_c4", dataset=name)
    out["gemstones_cool_end"] = load_dataset("gemstones_cool_end")
    out["datablations_single_epoch"] = load_dataset("datablations_single_epoch")
    for name, load in (("chinchilla_points", lambda: load_chinchilla_points()[["N", "D", "loss"]]),
                       ("misfitting", load_misfitting)):
        try:
            out[name] = load()
        except FileNotFoundError:
            pass
    return out


def run() -> dict:
    import numpy as np

    from bayesdistill.inference import engine
    from bayesdistill.inference.kappa import inner_draws, inner_job, kappa_from_inner, kappa_plan
    from bayesdistill.inference.sampling import prepare

    out = {}
    for name, df in sweeps().items():
        p = prepare(df, "chinchilla")
        plan = kappa_plan(p.sweep.supervised, p.inputs.priors)
        if isinstance(plan, str):
            out[name] = {"skipped": plan}
            continue
        job = inner_job(p, plan)
        t = time.perf_counter()
        [lap] = engine.laplace([job], joint=False)
        draws, w, k = inner_draws(lap)
        fast, _ = kappa_from_inner(p, job, draws, w, 4000, {})
        fast_s = time.perf_counter() - t
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = engine.run([job], engine.Settings(4, 1000, 1000, 0.9, True, 1, False), joint=False, modes=[lap])[0]
        slow, _ = kappa_from_inner(p, job, d.flat_samples(), None, 4000, {})
        slow_s = time.perf_counter() - t
        q = (0.05, 0.5, 0.95)
        out[name] = {"pareto_k": k, "laplace": {s: [float(np.quantile(fast[s], x)) for x in q] for s in fast},
                     "nuts": {s: [float(np.quantile(slow[s], x)) for x in q] for s in slow},
                     "laplace_s": fast_s, "nuts_s": slow_s,
                     "used": "laplace" if k <= 0.7 else "nuts"}
    return out


def markdown(res: dict) -> str:
    lines = ["### kappa and omega from the Laplace step vs the inner NUTS fit (real sweeps, Chinchilla law, every "
             "default)", "",
             "| sweep | Pareto k | bd.fit uses | site | q05 / q50 / q95, Laplace + IS | the same, inner NUTS (4x1000) "
             "| seconds (Laplace / NUTS, compilation included) |",
             "|---|---:|---|---|---|---|---|"]
    for name, r in res.items():
        if name.startswith("_"):
            continue
        if "skipped" in r:
            lines.append(f"| {name} | | prior ({r['skipped']}) | | | | |")
            continue
        for site in r["laplace"]:
            f = " / ".join(f"{x:.4f}" for x in r["laplace"][site])
            n = " / ".join(f"{x:.4f}" for x in r["nuts"][site])
            lines.append(f"| {name} | {r['pareto_k']:.2f} | {r['used']} | {site} | {f} | {n} | "
                         f"{r['laplace_s']:.1f} / {r['nuts_s']:.1f} |")
    lines += ["", "Where Pareto k > 0.7 the Laplace column is shown for comparison only: `bd.fit` then uses the "
              "inner NUTS fit."]
    return "\n".join(lines) + "\n"
