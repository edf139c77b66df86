"""Benchmark: calibration of extrapolations on real sweeps (issue 6), with and without the discrepancy.

For each real sweep in ``data/`` (Gadre et al. per training set, since their losses are not
comparable; Gemstones cooled-down checkpoints; Datablations single-epoch runs) and Epoch AI's
extraction of the Chinchilla points (``../shared/data``; skipped with a message when absent):

- split by compute C = 6 N D: fit on the runs with C <= the 75th percentile of the sweep's C
  (numpy's linear interpolation), predict the runs above it (fixed split, same for every sweep);
- fit the Chinchilla law (Student-t noise) with ``discrepancy="none"`` (one constant noise scale)
  and ``discrepancy="distance"`` (noise scale ``sqrt(sigma^2 + (tau d)^2)`` growing with the
  distance ``d`` from the fitted runs), 4 chains x 500 draws after 500 warmup; one ``bd.fit_many``
  call per variant fits every sweep (sweep i with seed i);
- report, at the held-out runs: coverage of the 50% and 90% predictive intervals
  (``Posterior.predict(prob=0.5)`` / ``prob=0.9``), median relative error of the posterior median
  of the law, median relative width of the 90% predictive interval, and the mean log predictive
  density of the held-out log losses (a proper score: rewards calibrated *and* sharp intervals);
  on the fitted runs: PSIS-LOO (``arviz_stats.loo`` on the ``log_loss`` site).

Target of the issue: 90% intervals cover 80-100% of the held-out runs, median error <= 1%.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

LAW = "chinchilla"
QUANTILE = 0.75
SETTINGS = {"chains": 4, "draws": 500, "warmup": 500, "seed": 0}  # sweep i: seed 0 + i (bd.fit_many)
VARIANTS = ("none", "distance")


def sweeps() -> tuple[dict, dict]:
    """The real sweeps by name, and the ones skipped with the reason."""
    from bayesdistill.data.datasets import load_chinchilla_points, load_dataset

    out, skipped = {}, {}
    gadre = load_dataset("gadre_c4")
    for name in sorted(gadre["dataset"].unique()):
        out[f"gadre_c4 / {name}"] = load_dataset("gadre_c4", dataset=name)
    out["gemstones_cool_end"] = load_dataset("gemstones_cool_end")
    out["datablations_single_epoch"] = load_dataset("datablations_single_epoch")
    try:
        out["chinchilla_points"] = load_chinchilla_points()[["N", "D", "loss"]]
    except FileNotFoundError as exc:
        skipped["chinchilla_points"] = f"skipped: {exc}"
    return out, skipped


def split(df, quantile: float = QUANTILE):
    """Boolean mask of the held-out runs (compute above the quantile) and the threshold."""
    C = 6.0 * df["N"].to_numpy(float) * df["D"].to_numpy(float)
    thr = float(np.quantile(C, quantile))
    return C > thr, thr


def evaluate(post, test) -> dict:
    """Coverage, error, width and log score at the held-out runs ``test`` (N, D, loss)."""
    from bayesdistill.inference.validation import held_out_log_score

    N, D, y = (test[c].to_numpy(float) for c in ("N", "D", "loss"))
    p90 = post.predict(N, D, prob=0.9, seed=1)
    p50 = post.predict(N, D, prob=0.5, seed=1)
    return {
        "coverage50": float(np.mean((y >= p50["pred_q25"]) & (y <= p50["pred_q75"]))),
        "coverage90": float(np.mean((y >= p90["pred_q05"]) & (y <= p90["pred_q95"]))),
        "median_rel_error": float(np.median(np.abs(p90["median"] / y - 1))),
        "median_rel_width90": float(np.median((p90["pred_q95"] - p90["pred_q05"]) / p90["median"])),
        "log_score": float(held_out_log_score(post, N, D, y).mean()),  # the IsoFLOP protocol's score
    }


def loo(post) -> dict:
    import arviz_stats as azs

    from bayesdistill.inference.comparison import PARETO_K_WARNING

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PARETO_K_WARNING, category=UserWarning)  # counted below
        res = azs.loo(post.idata, var_name="log_loss", pointwise=True)
    return {"elpd_loo": float(res.elpd), "se": float(res.se),
            "pareto_k_bad": int(np.sum(np.asarray(res.pareto_k) > 0.7)), "loo_obj": res}


#: wall time of this benchmark with the code before issue 13 (one ``bd.fit`` per sweep and variant, each
#: tracing and compiling its own sampler): the sum of the per-fit times in benchmarks/results.md of
#: 2026-11-28 (commit 2f8ec85 and earlier), on this 2-core machine
BEFORE_WALL_S = 159.0


def run() -> dict:
    import arviz_stats as azs

    import bayesdistill as bd

    data, skipped = sweeps()
    t_all = time.perf_counter()
    names, trains, tests, meta = list(data), [], [], {}
    for name, df in data.items():
        test_mask, thr = split(df)
        trains.append(df[~test_mask].reset_index(drop=True)[["N", "D", "loss"]])
        tests.append(df[test_mask].reset_index(drop=True))
        meta[name] = {"runs": len(df), "fitted": int((~test_mask).sum()), "held_out": int(test_mask.sum()),
                      "compute_threshold": thr, "variants": {}}
    posts, fit_s = {}, {}
    for kind in VARIANTS:  # one bd.fit_many per variant: every sweep with the same compiled samplers
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bd.FitWarning)
            posts[kind] = bd.fit_many(trains, LAW, discrepancy=kind, progress_bar=False, **SETTINGS)
        fit_s[kind] = time.perf_counter() - t
    out = {}
    for j, name in enumerate(names):
        res, loos = meta[name], {}
        for kind in VARIANTS:
            post = posts[kind][j]
            r = evaluate(post, tests[j])
            lo = loo(post)
            loos[kind] = lo.pop("loo_obj")
            r.update(lo)
            rev = post.review()
            r.update(wall_s=post.config["seconds"], review_ok=rev.ok, review_failed=[c.name for c in rev.failed],
                     divergences=int(next(c.value for c in rev.checks if c.name == "divergences")),
                     sigma=float(np.median(post.draws(["sigma"])["sigma"])),
                     tau=float(np.median(post.draws(["tau"])["tau"])) if kind == "distance" else 0.0)
            res["variants"][kind] = r
        cmp = azs.compare(loos, round_to="none")
        res["loo_diff"] = {"best": str(cmp.index[0]), "elpd_diff": float(cmp["elpd_diff"].iloc[1]),
                           "dse": float(cmp["dse"].iloc[1])}
        out[name] = res
        print(f"  {name}: " + ", ".join(f"{k} cov90 {v['coverage90']:.2f} err {v['median_rel_error']:.2%}"
                                        for k, v in res["variants"].items()), flush=True)
    out["_skipped"] = skipped
    out["_settings"] = {"law": LAW, "noise": "student_t", "quantile": QUANTILE, **SETTINGS}
    out["_timing"] = {"wall_s": time.perf_counter() - t_all, "fit_many_s": fit_s, "before_wall_s": BEFORE_WALL_S}
    return out


def _review(v) -> str:
    return "passed" if v["review_ok"] else "failed: " + ", ".join(v.get("review_failed", []))


def markdown(res: dict) -> str:
    s = res.get("_settings", {})
    lines = [f"### Calibration of extrapolations on real sweeps ({s.get('law', LAW)} law, Student-t noise, "
             f"{s.get('chains')}x{s.get('draws')} after {s.get('warmup')} warmup)", "",
             f"Fit on the runs with C = 6ND at most the {s.get('quantile', QUANTILE):.0%} quantile of the sweep, "
             "predict the rest. `none`: one constant noise scale; `distance`: noise scale growing with the "
             "distance from the fitted runs (the default of `bd.fit`). Coverage of the 50% and 90% predictive "
             "intervals, median relative error of the posterior median, median relative width of the 90% "
             "interval and mean log predictive density (per held-out run; higher is better) at the held-out "
             "runs; PSIS-LOO on the fitted runs.", "",
             "| sweep | fitted / held out | discrepancy | cover 50% | cover 90% | median error | 90% width "
             "| held-out log score | elpd LOO (se) | tau | review | sampler (s) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, r in res.items():
        if name.startswith("_"):
            continue
        for kind, v in r["variants"].items():
            ok90 = 0.8 <= v["coverage90"] <= 1.0
            lines.append(
                f"| {name} | {r['fitted']} / {r['held_out']} | {kind} | {v['coverage50']:.2f} | "
                f"{v['coverage90']:.2f}{'' if ok90 else ' **x**'} | {v['median_rel_error']:.2%} | "
                f"{v['median_rel_width90']:.1%} | {v['log_score']:.2f} | {v['elpd_loo']:.1f} ({v['se']:.1f}) | "
                f"{v['tau']:.4f} | {_review(v)} | {v['wall_s']:.1f} |")
    lines += ["", "LOO difference (best variant first; `elpd_diff` with its standard error):", ""]
    for name, r in res.items():
        if not name.startswith("_"):
            d = r["loo_diff"]
            lines.append(f"- {name}: best `{d['best']}` by {d['elpd_diff']:.1f} (se {d['dse']:.1f})")
    for name, why in res.get("_skipped", {}).items():
        lines.append(f"- {name}: {why}")
    lines += ["", "Target of the calibration issue: 90% intervals cover 80-100% of the held-out runs "
              "(**x** marks a miss), median error <= 1%."]
    t = res.get("_timing")
    if t:
        per = ", ".join(f"`{k}` {v:.0f} s" for k, v in t["fit_many_s"].items())
        lines += ["", f"Wall time of the whole benchmark: {t['wall_s']:.0f} s (the fits: {per}, one `bd.fit_many` "
                  f"call per variant; the sampler column is each sweep's share of its batch), against "
                  f"{t['before_wall_s']:.0f} s for the fits alone with one `bd.fit` per sweep and variant before "
                  "samplers were compiled once (2026-11-28)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    r = run()
    print(markdown(r))
