"""Benchmark: the two shipped evidence estimators against an independent reference.

The "Which law?" issue asks that log Z can be trusted: the default estimator (bridge sampling from
the NUTS draws) must agree with an independent reference within 0.2 nats or its own stated error,
whichever is larger, and the two shipped estimators (bridge sampling, tempered SMC) must agree with
each other. The reference is the stepping-stone estimate from 33 power posteriors, each sampled by
NUTS, 2,000 draws after 500 warmup (:mod:`bayesdistill.inference.thermo`), which shares no failure
mode with either; thermodynamic integration on the same draws is reported next to it.

Sweeps: notebook 05's four variants on the 34 Gadre ``c4_original`` runs (its settings: 4 x 1,000
draws after 1,000 warmup, target_accept 0.95, the ``distance`` discrepancy of ``bd.compare``), and
the same four variants on the 240 Chinchilla points (``../shared/data``; skipped when absent).
A last column gives bridge sampling from a small fit (2 x 100 draws after 100 warmup, as the
notebooks run in the tests), to show what too few draws do to it.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

VARIANTS = ["chinchilla", "busbridge", "chinchilla:normal", "busbridge:normal"]
SETTINGS = {"chains": 4, "draws": 1000, "warmup": 1000, "target_accept": 0.95, "seed": 0}
SMALL = {"chains": 2, "draws": 100, "warmup": 100, "seed": 0, "retry": False}
TI = {"rungs": 32, "warmup": 500, "draws": 2000, "seed": 0}
#: the issue's agreement criterion: within max(TOL, the estimator's own stated error)
TOL = 0.2


def _variant(label):
    law, _, noise = label.partition(":")
    return law, noise or "student_t"


def _one(sweep, label) -> dict:
    import bayesdistill as bd
    from bayesdistill.inference.comparison import log_evidence
    from bayesdistill.inference.evidence import Target
    from bayesdistill.inference.inputs import model_inputs
    from bayesdistill.inference.thermo import thermodynamic_evidence

    law, noise = _variant(label)
    out = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = bd.fit(sweep, law, noise=noise, discrepancy="distance", progress_bar=False, **SETTINGS)
        out["review_ok"] = bool(post.review().ok)
        t0 = time.perf_counter()
        ev = log_evidence(post, sweep, smc=True, seed=0)
        out["evidence_s"] = time.perf_counter() - t0
        small = bd.fit(sweep, law, noise=noise, discrepancy="distance", progress_bar=False, **SMALL)
        ev_small = log_evidence(small, sweep, seed=0)
    out["warnings"] = sorted({type(w.message).__name__ for w in caught})
    out.update(bridge=ev["log_z"], bridge_se=ev["log_z_se"], smc=ev["log_z_smc"], smc_se=ev["log_z_smc_se"],
               laplace=ev["log_z_laplace"], bridge_small=ev_small["log_z"], bridge_small_se=ev_small["log_z_se"])
    mi = model_inputs(sweep, post.law, post.priors, post.noise, discrepancy="distance")
    target = Target(mi.model, mi.args, mi.kwargs)
    start = np.median(target.unconstrain({k: post.idata.posterior[k].values for k in target.sites})
                      .reshape(-1, target.dim), axis=0)
    t0 = time.perf_counter()
    ti = thermodynamic_evidence(target, start, **TI)
    out.update(ti=ti.log_z, ti_se=ti.se, ti_s=time.perf_counter() - t0, trapezoid=ti.info["ti"],
               trapezoid_se=math.hypot(ti.info["ti_mc_se"], ti.info["ti_discretisation"]),
               ti_divergences=int(sum(ti.info["divergences"])))
    return out


def _agree(a, a_se, b, b_se, tol=TOL) -> bool:
    return bool(abs(a - b) <= max(tol, 2 * math.hypot(a_se, b_se)))


def run() -> dict:
    from bayesdistill.data.datasets import load_chinchilla_points, load_dataset
    from bayesdistill.data.sweep import read_sweep

    sweeps, skipped = {"gadre_c4 / c4_original (34 runs)": read_sweep(load_dataset("gadre_c4", dataset="c4_original"))}, {}
    try:
        sweeps["chinchilla points (240 runs)"] = read_sweep(load_chinchilla_points()[["N", "D", "loss"]])
    except FileNotFoundError as exc:
        skipped["chinchilla points"] = str(exc)
    rows = {}
    for name, sweep in sweeps.items():
        for label in VARIANTS:
            r = _one(sweep, label)
            # the criterion, the reference taken as exact: within max(0.2, the estimator's own error)
            r["bridge_vs_ti"] = bool(abs(r["bridge"] - r["ti"]) <= max(TOL, r["bridge_se"]))
            r["smc_vs_ti"] = bool(abs(r["smc"] - r["ti"]) <= max(TOL, r["smc_se"]))
            r["bridge_vs_smc"] = _agree(r["bridge"], r["bridge_se"], r["smc"], r["smc_se"])
            rows[f"{name}: {label}"] = r
            print(f"  {name}: {label}: {r}", flush=True)
    return {"rows": rows, "skipped": skipped, "ti": TI, "settings": SETTINGS, "small": SMALL}


def markdown(res: dict) -> str:
    rows = res["rows"]
    out = ["### Evidence: bridge sampling and SMC against power posteriors (the reference)", "",
           "log Z in nats (of log-loss density) with standard errors. Fits: 4 x 1,000 after 1,000 warmup, "
           "target_accept 0.95, `distance` discrepancy. Reference (ref): stepping-stone over 33 power posteriors "
           "(k/32)^5, 2,000 NUTS draws after 500 warmup each; thermodynamic integration (TI) on the same draws. "
           "Agreement with the reference: within max(0.2, the estimator's own standard error), the reference taken "
           "as exact (its own error is in its column); bridge with SMC: within max(0.2, 2 x their combined "
           "error).", "",
           "| sweep: variant | review | bridge | SMC | ref (stepping-stone) | TI | bridge - ref | SMC - ref | agree "
           "(bridge/ref, SMC/ref, bridge/SMC) | bridge from 2 x 100 draws | ref time (s) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    yn = lambda b: "yes" if b else "**no**"  # noqa: E731
    for name, r in rows.items():
        out.append(f"| {name} | {'passed' if r['review_ok'] else '**failed**'} | {r['bridge']:.2f} ± {r['bridge_se']:.2f} | "
                   f"{r['smc']:.2f} ± {r['smc_se']:.2f} | {r['ti']:.2f} ± {r['ti_se']:.2f} | "
                   f"{r['trapezoid']:.2f} ± {r['trapezoid_se']:.2f} | "
                   f"{r['bridge'] - r['ti']:+.2f} | {r['smc'] - r['ti']:+.2f} | {yn(r['bridge_vs_ti'])} / "
                   f"{yn(r['smc_vs_ti'])} / {yn(r['bridge_vs_smc'])} | {r['bridge_small']:.2f} ± "
                   f"{r['bridge_small_se']:.2f} | {r['ti_s']:.0f} |")
    for name, why in res.get("skipped", {}).items():
        out.append(f"| {name} | skipped: {why} | | | | | | | | | |")
    ok_ref = all(r["bridge_vs_ti"] for r in rows.values())
    ok_pair = all(r["bridge_vs_smc"] for r in rows.values())
    out += ["", "| target | met |", "|---|---|",
            f"| default estimator (bridge) within max(0.2 nats, its error) of the reference | {yn(ok_ref)} |",
            f"| bridge sampling and SMC agree on every variant | {yn(ok_pair)} |", ""]
    return "\n".join(out)
