"""Benchmark: the joint distillation fit on the full synthetic replica (issue 3).

``bd.paper_sweep(seed=0)`` (73 supervised + 697 distillation runs, SYNTHETIC: Table 6 laws plus
1% noise), 4 chains x 1000 draws after 1000 warmup, target_accept 0.99, with the default priors
and with the Table 6 preset (``bd.paper_priors()``). Reports wall time, the review and whether
each true coefficient lies in its 90% interval.
"""

from __future__ import annotations

import time
import warnings

CONFIGS = {"default priors": None, "Table 6 preset": "paper"}


def run() -> dict:
    import bayesdistill as bd
    from bayesdistill.laws.distillation import TABLE6

    sweep = bd.read_sweep(bd.paper_sweep(seed=0))
    out = {}
    for label, preset in CONFIGS.items():
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bd.FitWarning)
            post = bd.fit(sweep, law="distillation", chains=4, draws=1000, warmup=1000, seed=0,
                          target_accept=0.99, progress_bar=False,
                          priors=bd.paper_priors() if preset else None)
        wall = time.perf_counter() - t
        s = post.summary()
        covered = {k: bool(s.loc[k, "q05"] <= v <= s.loc[k, "q95"]) for k, v in TABLE6.items()}
        out[label] = {"wall_s": wall, "review": {c.name: c.value for c in post.review().checks},
                      "ok": post.review().ok, "covered": covered}
    return out


def markdown(res: dict) -> str:
    lines = ["### Joint distillation fit on the synthetic replica (770 runs), 4x1000, target_accept 0.99", "",
             "| priors | wall (s) | max R-hat | min ESS bulk | divergences | review | truths in 90% intervals |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for label, r in res.items():
        if label.startswith("_"):
            continue
        c = r["review"]
        lines.append(f"| {label} | {r['wall_s']:.0f} | {c['max R-hat']:.3f} | {c['min ESS bulk']:.0f} | "
                     f"{c['divergences']:.0f} | {'passed' if r['ok'] else '**failed**'} | "
                     f"{sum(r['covered'].values())} / {len(r['covered'])} |")
    lines += ["", "Target of the distillation issue: <= 90 s, zero divergences, max R-hat <= 1.01."]
    return "\n".join(lines) + "\n"
