"""Benchmark: do pooled (hierarchical) fits extrapolate as well as separate fits? (issue 14)

On the three training sets of the Gadre et al. C4 sweep (``data/gadre_c4.csv``, column
``dataset``: c4_original, rpj, rw_original; C4 validation loss):

- split each training set by compute C = 6 N D at its own 75th percentile (the split of
  ``benchmarks/bench_calibration.py``): fit the runs at or below it, predict the rest;
- ``separate``: one Chinchilla fit per training set; ``pooled``: one grouped fit of the three
  (``groups="dataset"``, exponents pooled, E and the coefficients free per set); ``pooled_all``:
  every coefficient pooled. All with Student-t noise, ``discrepancy="distance"`` (grouped fits do
  not support the ``compute`` default), 4 chains x 500 draws after 500 warmup, seed 0;
- score each set's held-out runs with the validation protocol
  (:func:`bayesdistill.inference.validation.score`, pooled over the sets with ``pool``): coverage
  of the 90% and 50% predictive intervals, median relative error of the posterior median, median
  90% width, mean log predictive density;
- the ordering of the recipes: at every held-out configuration (N, D) run on all three sets,
  whether the posterior medians order the three sets as the measured losses do (all three
  ranks right) and the fraction of the pairs ordered right;
- the grouped fit of the whole sweep (4 x 1000 draws, the notebook's fit): its review.
"""

from __future__ import annotations

import time
import warnings
from itertools import combinations

import numpy as np

from benchmarks.bench_calibration import split

LAW = "chinchilla"
COLUMN = "dataset"
SETTINGS = {"chains": 4, "draws": 500, "warmup": 500, "seed": 0, "discrepancy": "distance", "progress_bar": False}
FULL = {**SETTINGS, "draws": 1000}
VARIANTS = ("separate", "pooled", "pooled_all")


def _fit(*args, **kwargs):
    import bayesdistill as bd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        return bd.fit(*args, **kwargs)


def _review(post) -> dict:
    rev = post.review()
    value = {c.name: float(c.value) for c in rev.checks}
    return {"review_ok": rev.ok, "review_failed": [c.name for c in rev.failed], "max_rhat": value["max R-hat"],
            "min_ess_bulk": value["min ESS bulk"], "divergences": int(value["divergences"])}


def ordering(preds: dict, tests: dict) -> dict:
    """Configurations held out in every set: is the measured order of the sets predicted?"""
    keys = {g: {(float(n), round(float(np.log10(d)), 2)): i for i, (n, d) in enumerate(zip(t["N"], t["D"]))}
            for g, t in tests.items()}
    common = sorted(set.intersection(*(set(k) for k in keys.values())))
    full, pairs, n_pairs = 0, 0, 0
    for key in common:
        obs = {g: float(tests[g]["loss"].iloc[keys[g][key]]) for g in tests}
        pred = {g: float(preds[g][keys[g][key]]) for g in tests}
        full += sorted(obs, key=obs.get) == sorted(pred, key=pred.get)
        for a, b in combinations(tests, 2):
            pairs += (obs[a] < obs[b]) == (pred[a] < pred[b])
            n_pairs += 1
    return {"configs": len(common), "order_right": full, "pairs_right": pairs / n_pairs if n_pairs else np.nan}


def run() -> dict:
    import bayesdistill as bd
    from bayesdistill.data.datasets import load_dataset

    warnings.simplefilter("ignore", bd.ExtrapolationWarning)  # the held-out runs lie up to 2.5 decades out
    from bayesdistill.inference.validation import pool, score

    df = load_dataset("gadre_c4")
    names = list(dict.fromkeys(df[COLUMN]))
    trains, tests = {}, {}
    for g in names:
        part = df[df[COLUMN] == g].reset_index(drop=True)
        held, _ = split(part)
        trains[g], tests[g] = part[~held].reset_index(drop=True), part[held].reset_index(drop=True)
    train_all = np.concatenate([np.flatnonzero((df[COLUMN] == g).to_numpy())[~split(df[df[COLUMN] == g])[0]]
                                for g in names])
    train_df = df.iloc[np.sort(train_all)].reset_index(drop=True)
    out = {"groups": {g: {"fitted": len(trains[g]), "held_out": len(tests[g])} for g in names}, "variants": {}}
    for kind in VARIANTS:
        t0 = time.perf_counter()
        if kind == "separate":
            posts = {g: _fit(trains[g][["N", "D", "loss"]], LAW, **SETTINGS) for g in names}
            reviews = {g: _review(p) for g, p in posts.items()}
        else:
            grouped = _fit(train_df, LAW, groups=COLUMN, pool="exponents" if kind == "pooled" else "all", **SETTINGS)
            posts = {g: grouped.group(g) for g in names}
            reviews = {"all": _review(grouped)}
        scores = {g: score(posts[g], tests[g]) for g in names}
        preds = {g: posts[g].predict(tests[g]["N"], tests[g]["D"])["median"].to_numpy() for g in names}
        pooled = pool(list(scores.values()))
        out["variants"][kind] = {
            **{k: pooled[k] for k in ("n", "coverage90", "coverage50", "median_rel_error", "median_rel_width90",
                                      "log_score")},
            "per_group": {g: {k: s[k] for k in ("coverage90", "coverage50", "median_rel_error")}
                          for g, s in scores.items()},
            **ordering(preds, tests), "reviews": reviews, "wall_s": time.perf_counter() - t0}
        v = out["variants"][kind]
        print(f"  {kind}: cov90 {v['coverage90']:.2f} cov50 {v['coverage50']:.2f} err {v['median_rel_error']:.2%} "
              f"order {v['order_right']}/{v['configs']}", flush=True)
    t0 = time.perf_counter()
    full = _fit(df, LAW, groups=COLUMN, **FULL)
    out["full_fit"] = {**_review(full), "wall_s": time.perf_counter() - t0,
                       "alpha": {g: float(np.median(full.group(g).draws(["alpha"])["alpha"])) for g in names}}
    out["_settings"] = {"law": LAW, "noise": "student_t", "quantile": 0.75, **SETTINGS}
    return out


def markdown(res: dict) -> str:
    s = res.get("_settings", {})
    g = res["groups"]
    lines = [f"### Pooled vs separate fits of the three Gadre C4 training sets ({s.get('law', LAW)} law, "
             f"Student-t noise, discrepancy {s.get('discrepancy')}, {s.get('chains')}x{s.get('draws')} after "
             f"{s.get('warmup')} warmup)", "",
             "Each training set fitted up to its 75th percentile of C = 6ND ("
             + ", ".join(f"{k} {v['fitted']} / {v['held_out']}" for k, v in g.items())
             + " fitted / held out), the rest predicted. Scores pooled over the three sets' held-out runs; "
             "ordering: held-out (N, D) run on all three sets whose three losses the posterior medians rank "
             "right, and the fraction of pairs ranked right.", "",
             "| fit | held out | cover 90% | cover 50% | median error | 90% width | log score | order right | "
             "pairs right | review | wall (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for kind, v in res["variants"].items():
        failed = sorted({c for r in v["reviews"].values() for c in r["review_failed"]})
        if failed and "max_rhat" in next(iter(v["reviews"].values())):
            failed = [f"max R-hat {max(r['max_rhat'] for r in v['reviews'].values()):.3f}, min ESS bulk "
                      f"{min(r['min_ess_bulk'] for r in v['reviews'].values()):.0f}"]
        if not np.isfinite(v["median_rel_width90"]):  # NaN predictive quantiles: coverage means nothing
            lines.append(f"| {kind} | {v['n']} | n/a | n/a | {v['median_rel_error']:.2%} | NaN | n/a | "
                         f"{v['order_right']}/{v['configs']} | {v['pairs_right']:.2f} | failed: "
                         f"{', '.join(failed)}; predictive quantiles NaN | {v['wall_s']:.0f} |")
            continue
        lines.append(f"| {kind} | {v['n']} | {v['coverage90']:.2f} | {v['coverage50']:.2f} | "
                     f"{v['median_rel_error']:.2%} | {v['median_rel_width90']:.1%} | {v['log_score']:.2f} | "
                     f"{v['order_right']}/{v['configs']} | {v['pairs_right']:.2f} | "
                     f"{'passed' if not failed else 'failed: ' + ', '.join(failed)} | {v['wall_s']:.0f} |")
    f = res["full_fit"]
    lines += ["", f"Grouped fit of all 104 runs (4 x {FULL['draws']} draws, exponents pooled): review "
              f"{'passed' if f['review_ok'] else 'failed: ' + ', '.join(f['review_failed'])}, "
              f"{f['divergences']} divergences, {f['wall_s']:.0f} s; median alpha per set: "
              + ", ".join(f"{k} {v:.3f}" for k, v in f["alpha"].items()) + "."]
    return "\n".join(lines)
