"""A short check that bayesdistill runs unchanged on a GPU, and the batched SBC there (issue 13).

Not part of ``make bench`` or the tests (CI has no GPU). Run on a machine with a CUDA JAX:

    python -m benchmarks.gpu_check OUT.json [N_SIMS]

It times (1) the Chinchilla fit (240 points, 4 x 1000 draws): first call (tracing and
compilation included) and a second call in the same process (sampler reused); and (2) the SBC of
``benchmarks/bench_sbc.py`` over ``N_SIMS`` (default 100) prior sweeps in one ``bd.fit_many``
call with every sweep in one batch, timed twice (the second call reuses the compiled sampler), and
once in batches of a quarter of the sweeps. Writes the figures as JSON after every stage.
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def main(out: str, n_sims: int = 100) -> dict:
    import jax

    import bayesdistill as bd
    from bayesdistill.data.datasets import load_chinchilla_points
    from benchmarks import bench_sbc

    res = {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()], "jax": jax.__version__}
    print(res, flush=True)
    sweep = bd.read_sweep(load_chinchilla_points())
    for tag, seed in (("chinchilla_first", 0), ("chinchilla_second", 1)):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bd.FitWarning)
            post = bd.fit(sweep, seed=seed, progress_bar=False)
        r = post.review()
        res[tag] = {"wall_s": time.perf_counter() - t, "sampler_s": post.config["seconds"],
                    "compiled": post.config["compiled"], "review_ok": r.ok,
                    "checks": {c.name: c.value for c in r.checks}, "chain_method": post.config["chain_method"]}
        print(tag, res[tag], flush=True)
        _write(out, res)
    sims = bench_sbc.prior_sweeps(n_sims, 0)
    settings = dict(bench_sbc.SETTINGS)
    for batch, rep in ((n_sims, "first"), (n_sims, "second"), (max(1, n_sims // 4), "first")):
        posts, wall = bench_sbc.fit_all(sims, 0, settings, batch_size=batch)
        recs = [bench_sbc.record(i, p, sims, 0, bench_sbc.THIN) for i, p in enumerate(posts)]
        cov = {p: {lv: sum(r["hit"][p][str(lv)] for r in recs) / n_sims for lv in bench_sbc.LEVELS}
               for p in sims["params"]}
        key = f"sbc_batch{batch}_{rep}"
        res[key] = {"wall_s": wall, "n_sims": n_sims, "failed_review": sum(bool(r["failed"]) for r in recs),
                    "coverage": cov}
        print(key, {k: v for k, v in res[key].items() if k != "coverage"}, flush=True)
        _write(out, res)
    return res


def _write(out, res):
    with open(out, "w") as f:  # after every stage: a run cut short keeps what it measured
        json.dump(res, f, indent=1, default=float)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
