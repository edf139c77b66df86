"""Benchmark: simulation-based calibration of the Chinchilla fit (issue 6).

Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788): draw a truth theta from the
prior and a sweep from the model given theta, fit the sweep, and rank the truth among the posterior
draws. If the sampler and the model code are right, the rank of every coefficient is uniform over
many such sweeps, and a central interval of mass p covers the truth in a share p of them.

Setup: the ``chinchilla`` law with every default of ``bd.fit``: its default priors, Student-t
noise on log loss and the default noise model (priors of ``sigma``, ``nu`` and, with the default
``discrepancy="distance"``, ``tau`` from :mod:`bayesdistill.inference.model`). Each sweep is 5 model sizes
(1e7 to 1e9) x 4 tokens-per-parameter ratios (5, 20, 80, 320) = 20 runs, drawn by running the
very numpyro model that ``bd.fit`` builds for that design (``bayesdistill.inference.sampling.model_inputs``)
without observations through ``numpyro.infer.Predictive``. ``bd.read_sweep`` refuses losses
outside the plausible nats range (``LOSS_RANGE``), so prior draws whose sweep has such a loss are
discarded and drawn again; the benchmark reports how many. Discarding depends on the data only,
never on theta, so it changes the distribution of the sweeps but not the posterior given a sweep:
ranks stay uniform and coverage nominal for every sweep that is kept (it does change which part
of the prior is tested: mostly draws whose loss at 1e7 parameters is not absurdly large).

The sweeps are fitted by one ``bd.fit_many`` call (2 chains x 500 draws after 500 warmup, the
package's NUTS defaults otherwise; sweep i with seed 1 + i), compilation included. Ranks use every 10th draw of each chain (100 roughly independent draws,
ranks 0 to 100); intervals use all draws. Per coefficient: a chi-square test of uniform ranks in
10 bins, and the coverage of the 50% and 90% central intervals with its binomial standard error.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FIGURE = HERE / "sbc_ranks.png"
LAW, NOISE = "chinchilla", "student_t"
SIZES = tuple(float(n) for n in np.geomspace(1e7, 1e9, 5))
TOKENS_PER_PARAM = (5.0, 20.0, 80.0, 320.0)
#: coefficients checked, where the model has them (``tau``: with a distance discrepancy)
CANDIDATES = ("E", "A", "B", "alpha", "beta", "sigma", "nu", "tau")
SETTINGS = {"chains": 2, "draws": 500, "warmup": 500}
THIN = 10
BINS = 10
LEVELS = (0.5, 0.9)


def design() -> tuple[np.ndarray, np.ndarray]:
    """Model sizes N and tokens D of the sweep: every size at every tokens-per-parameter ratio."""
    N, tpp = np.meshgrid(np.asarray(SIZES), np.asarray(TOKENS_PER_PARAM), indexing="ij")
    return N.ravel(), (N * tpp).ravel()


def fit_defaults() -> dict:
    """Keyword arguments that pin ``bd.fit`` to its current default noise model (passed to both sides)."""
    import inspect

    import bayesdistill as bd

    par = inspect.signature(bd.fit).parameters
    return {"discrepancy": par["discrepancy"].default} if "discrepancy" in par else {}


def _model_and_args():
    """The numpyro model ``bd.fit`` fits to the design, and its arguments (observations left out)."""
    import jax.numpy as jnp
    import pandas as pd

    import bayesdistill as bd

    N, D = design()
    try:
        from bayesdistill.inference.inputs import model_inputs
    except ImportError:  # before model_inputs: one noise scale, centre = mean log N, log D
        from bayesdistill.inference.model import make_model, resolve_priors

        law = bd.get_law(LAW)
        logN, logD = jnp.log(jnp.asarray(N, jnp.float32)), jnp.log(jnp.asarray(D, jnp.float32))
        centre = {"N": jnp.float32(logN.mean()), "D": jnp.float32(logD.mean())}
        return make_model(law, resolve_priors(law, NOISE, None), NOISE), (logN, logD, centre)
    mi = model_inputs(pd.DataFrame({"N": N, "D": D, "loss": 3.0}), LAW, noise=NOISE, **fit_defaults())
    return mi.model, mi.args


def prior_sweeps(n: int, seed: int = 0) -> dict:
    """``n`` truths and sweeps from the prior; sweeps with an implausible loss are drawn again.

    Returns a dict: ``params`` (names checked), ``theta`` (name -> array (n,)), ``loss`` (array
    (n, runs)), ``drawn`` (prior draws made), ``rejected`` (reason -> count; a sweep is counted
    under its first reason).
    """
    import jax
    from numpyro.infer import Predictive

    from bayesdistill.data.sweep import LOSS_RANGE

    model, args = _model_and_args()
    key = jax.random.PRNGKey(seed)
    thetas, losses, drawn, params = [], [], 0, None
    rejected = {"non-finite loss": 0, f"loss > {LOSS_RANGE[1]:g} nats": 0, f"loss < {LOSS_RANGE[0]:g} nats": 0}
    while len(losses) < n:
        key, sub = jax.random.split(key)
        batch = max(64, 3 * (n - len(losses)))
        s = {k: np.asarray(v) for k, v in Predictive(model, num_samples=batch)(sub, *args).items()}
        params = [p for p in CANDIDATES if p in s]
        y = np.asarray(s["log_loss"], dtype=np.float64)
        with np.errstate(over="ignore"):
            loss = np.exp(y)
        finite = np.isfinite(loss).all(axis=1)
        big = (loss > LOSS_RANGE[1]).any(axis=1)
        small = (loss < LOSS_RANGE[0]).any(axis=1)
        for i in range(batch):
            if len(losses) == n:
                break
            drawn += 1
            if not finite[i]:
                rejected["non-finite loss"] += 1
            elif big[i]:
                rejected[f"loss > {LOSS_RANGE[1]:g} nats"] += 1
            elif small[i]:
                rejected[f"loss < {LOSS_RANGE[0]:g} nats"] += 1
            else:
                thetas.append({p: float(s[p][i]) for p in params})
                losses.append(loss[i])
    theta = {p: np.array([t[p] for t in thetas]) for p in params}
    return {"params": params, "theta": theta, "loss": np.array(losses), "drawn": drawn, "rejected": rejected}


def rank_of(truth: float, draws: np.ndarray, rng) -> int:
    """Number of draws below the truth, ties broken at random."""
    below, ties = int(np.sum(draws < truth)), int(np.sum(draws == truth))
    return below + int(rng.integers(0, ties + 1))


def uniformity(ranks, n_ranks: int, bins: int = BINS) -> tuple[np.ndarray, np.ndarray, float]:
    """Observed and expected counts of ``ranks`` (0..n_ranks-1) in ``bins`` bins, and the chi-square p-value.

    Bins are ``floor(rank * bins / n_ranks)``; the expected counts are exact when ``n_ranks`` is not
    a multiple of ``bins`` (some bins then hold one rank value more).
    """
    from scipy import stats

    ranks = np.asarray(ranks, dtype=int)
    which = np.arange(n_ranks) * bins // n_ranks
    share = np.bincount(which, minlength=bins) / n_ranks
    observed = np.bincount(ranks * bins // n_ranks, minlength=bins)
    expected = share * len(ranks)
    p = float(stats.chisquare(observed, expected).pvalue) if len(ranks) else float("nan")
    return observed, expected, p


def coverage_verdict(hits: int, n: int, level: float) -> tuple[float, float, float, str]:
    """Coverage, binomial standard error, z-score against ``level`` and a verdict (<= 2 SE ok, <= 3 borderline)."""
    cov = hits / n
    se = float(np.sqrt(level * (1 - level) / n))
    z = (cov - level) / se
    return cov, se, z, "ok" if abs(z) <= 2 else ("borderline" if abs(z) <= 3 else "off")


def record(i: int, post, sims: dict, seed: int, thin: int) -> dict:
    """Sweep ``i``'s ranks, interval hits, quantiles and review, as plain JSON values."""
    rec = {"i": i, "failed": [c.name for c in post.review().failed],
           "divergences": int(post.idata.sample_stats["diverging"].values.sum()),
           "truth": {}, "rank": {}, "hit": {}, "quantiles": {}}
    rng = np.random.default_rng([seed, i])  # tie-breaking, reproducible per sweep
    pos = post.idata.posterior
    for p in sims["params"]:
        truth = float(sims["theta"][p][i])
        thinned = pos[p].values[:, ::thin].ravel()
        everything = pos[p].values.ravel()
        rec["truth"][p] = truth
        rec["rank"][p] = rank_of(truth, thinned, rng)
        rec["n_ranks"] = len(thinned) + 1
        q = np.quantile(everything, [0.05, 0.25, 0.5, 0.75, 0.95])
        rec["quantiles"][p] = [float(x) for x in q]
        rec["hit"][p] = {str(lv): bool(lo <= truth <= hi)
                         for lv, lo, hi in zip(LEVELS, (q[1], q[0]), (q[3], q[4]))}
    return rec


def sweeps_of(sims: dict) -> list:
    import pandas as pd

    N, D = design()
    return [pd.DataFrame({"N": N, "D": D, "loss": loss}) for loss in sims["loss"]]


def fit_all(sims: dict, seed: int, settings: dict, batch_size: int | None = None) -> tuple[list, float]:
    """Every sweep of ``sims`` fitted by one ``bd.fit_many`` call (sweep i with seed ``seed + 1 + i``); wall s."""
    import bayesdistill as bd

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)  # recorded per sweep
        posts = bd.fit_many(sweeps_of(sims), LAW, noise=NOISE, seed=seed + 1, progress_bar=False,
                            batch_size=batch_size, **fit_defaults(), **settings)
    return posts, time.perf_counter() - t


#: the code before fits were compiled once (issue 13); its sequential ``bd.fit`` calls are the baseline
BASELINE_COMMIT = "2f8ec85"

_BASELINE_CHILD = r"""
import json, sys, time, warnings
import jax, pandas as pd
import bayesdistill as bd
rows = json.loads(sys.stdin.read())
out = []
for r in rows["sweeps"]:
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bd.fit(pd.DataFrame(r["sweep"]), "chinchilla", noise="student_t", seed=r["seed"], progress_bar=False,
               **rows["settings"])
    jax.clear_caches()  # as the SBC loop of that code did (memory maps)
    out.append(time.perf_counter() - t)
print("RESULT" + json.dumps(out))
"""


def baseline_sequential(sims: dict, seed: int, settings: dict, n: int, commit: str = BASELINE_COMMIT) -> dict:
    """Seconds of ``n`` sequential ``bd.fit`` calls of the code at ``commit`` (a fresh process, warm JAX cache).

    The code is taken from this repository's history (``git archive``), so the baseline is measured
    in the same run as the batched fits; ``None`` where git or the commit is not available.
    """
    import subprocess

    from benchmarks.baseline import extract_code

    with tempfile.TemporaryDirectory() as tmp:
        why = extract_code(commit, tmp)
        if why:
            return {"error": f"baseline {why}"}
        payload = {"settings": settings, "sweeps": [
            {"sweep": sw.to_dict(orient="list"), "seed": seed + 1 + i} for i, sw in enumerate(sweeps_of(sims)[:n])]}
        env = dict(os.environ, PYTHONPATH=tmp)
        proc = subprocess.run([sys.executable, "-c", _BASELINE_CHILD], input=json.dumps(payload), env=env,
                              capture_output=True, text=True, check=False, cwd=tmp)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    if proc.returncode or not line:
        return {"error": f"baseline fits failed: {proc.stderr[-1500:]}"}
    times = json.loads(line[0][len("RESULT"):])
    return {"commit": commit, "n": len(times), "fit_s": times, "mean_s": float(np.mean(times))}


def run(n_sims: int = 100, seed: int = 0, settings: dict | None = None, thin: int = THIN,
        figure: Path | str | None = FIGURE, progress: bool = True, batch_size: int | None = None,
        baseline_fits: int = 10) -> dict:
    """Fit ``n_sims`` prior sweeps with ``bd.fit_many`` and collect ranks, coverage and fit reviews.

    In the same run, ``baseline_fits`` of the sweeps are fitted one ``bd.fit`` call after another
    by the code before issue 13 (:data:`BASELINE_COMMIT`); their mean time x ``n_sims`` is the
    sequential baseline (0: skipped).
    """
    import jax

    settings = {**SETTINGS, **(settings or {})}
    t0 = time.perf_counter()
    sims = prior_sweeps(n_sims, seed)
    config = {"n_sims": n_sims, "seed": seed, "settings": settings, "thin": thin, "model": fit_defaults()}
    posts, batched_s = fit_all(sims, seed, settings, batch_size)  # compilation included (first call here)
    if progress:
        print(f"  sbc: {n_sims} fits by bd.fit_many in {batched_s:.0f} s", flush=True)
    recs = [record(i, post, sims, seed, thin) for i, post in enumerate(posts)]
    del posts
    base = baseline_sequential(sims, seed, settings, baseline_fits) if baseline_fits else {}
    if progress and base:
        print(f"  sbc baseline: {base}", flush=True)
    n_ranks = recs[0]["n_ranks"]
    params = {}
    for p in sims["params"]:
        ranks = [r["rank"][p] for r in recs]
        observed, expected, pval = uniformity(ranks, n_ranks)
        params[p] = {"ranks": ranks, "counts": observed.tolist(), "expected": expected.tolist(), "chi2_p": pval}
        for lv in LEVELS:
            hits = sum(r["hit"][p][str(lv)] for r in recs)
            cov, se, z, verdict = coverage_verdict(hits, n_sims, lv)
            params[p][f"cov{int(lv * 100)}"] = {"coverage": cov, "se": se, "z": z, "verdict": verdict}
    res = {
        **config, "n_ranks": n_ranks, "bins": BINS,
        "design": {"sizes": list(SIZES), "tokens_per_param": list(TOKENS_PER_PARAM)},
        "prior_draws": sims["drawn"], "rejected": sims["rejected"],
        "failed_review": [r["i"] for r in recs if r["failed"]],
        "failed_checks": {c: sum(c in r["failed"] for r in recs) for c in sorted({c for r in recs for c in r["failed"]})},
        "divergent_fits": [r["i"] for r in recs if r["divergences"]],
        "batched_s": batched_s, "batch_size": batch_size, "backend": jax.default_backend(),
        "baseline": base, "wall_s": time.perf_counter() - t0,
        "params": params, "sims": recs,
    }
    if base.get("mean_s"):
        res["baseline_s"] = base["mean_s"] * n_sims
        res["speedup"] = res["baseline_s"] / batched_s
        res["targets"] = {">= 5x faster than sequential bd.fit calls of the code before": res["speedup"] >= 5}
    if figure is not None:
        res["figure"] = str(plot(res, figure))
    return res


def plot(res: dict, path) -> Path:
    """Rank histograms per coefficient with the 99% band of a uniform histogram; written atomically."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state
    from scipy import stats

    path = Path(path)
    names = list(res["params"])
    rows = -(-len(names) // 4)
    fig = Figure(figsize=(12, 2.9 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, 4, squeeze=False).ravel()
    n, bins = res["n_sims"], res["bins"]
    for ax in axes[len(names):]:
        ax.axis("off")
    for ax, p in zip(axes, names):
        r = res["params"][p]
        counts, expected = np.asarray(r["counts"]), np.asarray(r["expected"])
        share = expected / max(n, 1)
        lo, hi = stats.binom.ppf(0.005, n, share), stats.binom.ppf(0.995, n, share)
        x = np.arange(bins)
        ax.fill_between(np.r_[x, bins] - 0.5, np.r_[lo, lo[-1]], np.r_[hi, hi[-1]], step="post",
                        color="0.85", label="99% band if uniform")
        ax.bar(x, counts, width=0.9, color="C0")
        ax.step(np.r_[x, bins] - 0.5, np.r_[expected, expected[-1]], where="post", color="0.3", lw=0.8,
                ls="--", label="expected")
        c50, c90 = r["cov50"]["coverage"], r["cov90"]["coverage"]
        ax.set_title(f"{p}: p={r['chi2_p']:.2f}, cov50 {c50:.0%}, cov90 {c90:.0%}", fontsize=9)
        ax.set_xticks([0, bins - 1], ["truth below\nall draws", "truth above\nall draws"], fontsize=7)
    axes[0].legend(fontsize=7, loc="lower center")
    rej = sum(res["rejected"].values())
    fig.supxlabel(
        f"{n} sweeps from the prior ({len(SIZES)} sizes x {len(TOKENS_PER_PARAM)} ratios; {rej} of "
        f"{res['prior_draws']} prior draws redrawn for an implausible loss); rank of the truth among "
        f"{res['n_ranks'] - 1} thinned draws in {bins} bins; {len(res['failed_review'])} fits failed "
        f"their review, {len(res['divergent_fits'])} had divergences", fontsize=8)
    fig.suptitle("Simulation-based calibration of the Chinchilla fit: rank of the truth among posterior draws")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def markdown(res: dict) -> str:
    s = res["settings"]
    rej = res["rejected"]
    n_rej = sum(rej.values())
    reasons = ", ".join(f"{v} {k}" for k, v in rej.items() if v) or "none"
    model = ", ".join(f"{k}={v!r}" for k, v in res.get("model", {}).items())
    lines = [f"### Simulation-based calibration: {res['n_sims']} Chinchilla sweeps from the prior "
             f"({len(res['design']['sizes'])} sizes x {len(res['design']['tokens_per_param'])} ratios), "
             f"{s['chains']}x{s['draws']} after {s['warmup']} warmup", "",
             f"Every default of `bd.fit` (Student-t noise{', ' + model if model else ''}); truths and sweeps "
             "drawn from the model `bd.fit` builds, without observations.", "",
             f"Prior draws: {res['prior_draws']}, of which {n_rej} were redrawn because `read_sweep` would refuse "
             f"their sweep ({reasons}). Ranks among {res['n_ranks'] - 1} draws (every {res['thin']}th); "
             f"chi-square of {res['bins']} rank bins; coverage with its binomial standard error; verdict ok "
             "within 2 SE of nominal, borderline within 3 SE.", "",
             "| coef | rank chi2 p | 50% coverage (SE) | verdict | 90% coverage (SE) | verdict |",
             "|---|---:|---:|---|---:|---|"]
    for p, r in res["params"].items():
        c50, c90 = r["cov50"], r["cov90"]
        lines.append(f"| {p} | {r['chi2_p']:.3f} | {c50['coverage']:.0%} ({c50['se']:.0%}) | {c50['verdict']} | "
                     f"{c90['coverage']:.0%} ({c90['se']:.0%}) | {c90['verdict']} |")
    checks = ", ".join(f"{k} {v}" for k, v in res.get("failed_checks", {}).items())
    lines += ["", f"Fits that failed their review: {len(res['failed_review'])}"
              + (f" (by check: {checks})" if checks else "") + "; fits with divergences: "
              f"{len(res['divergent_fits'])}. Rank histograms: "
              f"`{Path(res.get('figure', 'benchmarks/sbc_ranks.png')).name}`.", ""]
    if "batched_s" in res:
        b = res.get("baseline", {})
        lines += ["| how the sweeps were fitted | wall (s) |", "|---|---:|",
                  f"| `bd.fit_many`, {res['n_sims']} sweeps, batches of "
                  f"{res['batch_size'] or 'the default size'} ({res.get('backend', 'cpu')}, compilation included) | "
                  f"{res['batched_s']:.0f} |"]
        if b.get("mean_s"):
            lines.append(f"| {res['n_sims']} sequential `bd.fit` calls of the code before (commit {b['commit']}): "
                         f"{b['n']} measured in this run, mean {b['mean_s']:.1f} s, x {res['n_sims']} | "
                         f"{res['baseline_s']:.0f} |")
            lines += ["", f"Speed-up {res['speedup']:.1f}x (target >= 5x: "
                      f"{'met' if res['speedup'] >= 5 else '**missed**'})."]
        elif b.get("error"):
            lines += ["", f"Baseline not measured: {b['error']}"]
    return "\n".join(lines) + "\n"
