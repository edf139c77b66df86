"""Benchmark: decisions under law uncertainty (issue 21): does averaging laws keep intervals honest?

For every real sweep (:func:`bayesdistill.inference.validation.real_sweeps`), leave-largest-budget-out
(:func:`bayesdistill.inference.validation.leave_largest_out`): the Chinchilla, Busbridge and Kaplan
laws are fitted to every level below the largest (Student-t noise, ``compute`` discrepancy, 4 x 500
draws after 500 warmup, seed 0) and averaged with stacking weights (``bd.average``); each single law
and the average are scored at the held-out level (:func:`bayesdistill.inference.validation.score`):
coverage of the 50% / 90% predictive intervals, median error, 90% width, log score. Nothing is tuned.
"""

from __future__ import annotations

import time
import warnings

LAWS = ("chinchilla", "busbridge", "kaplan")
SETTINGS = {"chains": 4, "draws": 500, "warmup": 500, "seed": 0}


def run() -> dict:
    import jax

    import bayesdistill as bd
    from bayesdistill.inference.validation import leave_largest_out, pool, real_sweeps, score

    data, skipped = real_sweeps()
    out = {"sweeps": {}, "_skipped": skipped}
    for name, df in data.items():
        sp = leave_largest_out(df)
        train, test = sp.frames(df)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            posts = {law: bd.fit(train, law, progress_bar=False, **SETTINGS) for law in LAWS}
            mix = bd.average(posts)
            res = {law: score(p, test) for law, p in posts.items()}
            res["average (stacking)"] = score(mix, test)
        res["_weights"] = dict(zip(mix.names, map(float, mix.weights)))
        res["_reviews"] = {law: p.review().ok for law, p in posts.items()}
        res["_seconds"] = time.perf_counter() - t
        out["sweeps"][name] = res
        jax.clear_caches()
        print(f"  {name}: " + ", ".join(f"{k} cov90 {v['coverage90']:.2f} ls {v['log_score']:.2f}"
                                        for k, v in res.items() if not k.startswith("_")), flush=True)
    kinds = [*LAWS, "average (stacking)"]
    out["pooled"] = {k: pool([r[k] for r in out["sweeps"].values()]) for k in kinds}
    return out


def markdown(res: dict) -> str:
    kinds = list(res["pooled"])
    lines = ["### Averaging laws (leave-largest-budget-out, stacking weights)", "",
             "Chinchilla, Busbridge and Kaplan fitted to every level below the largest, and their stacking "
             "average (`bd.average`); scored at the held-out level. Pooled over the sweeps:", "",
             "| model | held-out runs | cover 50% | cover 90% | median error | 90% width | log score |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for k in kinds:
        p = res["pooled"][k]
        lines.append(f"| {k} | {p['n']} | {p['coverage50']:.2f} | {p['coverage90']:.2f} | "
                     f"{p['median_rel_error']:.2%} | {p['median_rel_width90']:.1%} | {p['log_score']:.2f} |")
    lines += ["", "Per sweep (90% coverage / log score; stacking weights chinchilla / busbridge / kaplan; "
              "reviews passed):", "",
              "| sweep | " + " | ".join(kinds) + " | weights | reviews |",
              "|---|" + "---:|" * len(kinds) + "---|---|"]
    for name, r in res["sweeps"].items():
        cells = " | ".join(f"{r[k]['coverage90']:.2f} / {r[k]['log_score']:.2f}" for k in kinds)
        w = " / ".join(f"{v:.2f}" for v in r["_weights"].values())
        ok = sum(r["_reviews"].values())
        lines.append(f"| {name} | {cells} | {w} | {ok} of {len(r['_reviews'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(run()))
