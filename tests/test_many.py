"""Compile once, fit many: reusable samplers, padding, ``bd.fit_many`` and its Dask fan-out."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from conftest import synthetic_sweep
from numpyro.infer.util import log_density

import bayesdistill as bd
from bayesdistill.inference import engine
from bayesdistill.inference.inputs import model_inputs

TINY = {"chains": 2, "draws": 40, "warmup": 40, "progress_bar": False, "review": False,
        "chain_method": "sequential", "discrepancy": "distance", "retry": False}


def _sweeps(n, rows=20, seed=0):
    """``n`` synthetic chinchilla sweeps of ``rows`` runs each (different truths' noise draws)."""
    return [synthetic_sweep("chinchilla", seed=seed + i).sample(rows, random_state=seed + i).reset_index(drop=True)
            for i in range(n)]


def _same(a, b):
    for k in a.param_names:
        np.testing.assert_array_equal(a.draws()[k], b.draws()[k])


def test_buckets():
    assert [engine.bucket(n) for n in (0, 1, 16, 17, 32, 33, 240, 256, 257)] == [0, 16, 16, 32, 32, 64, 256,
                                                                                 256, 512]


@pytest.mark.parametrize("law", ["chinchilla", "distillation"])
def test_padding_leaves_the_log_density_unchanged(law):
    """The padded, masked model has the same log density as the unpadded one at any parameters."""
    sweep = bd.paper_sweep(seed=0).sample(60, random_state=0) if law == "distillation" \
        else synthetic_sweep("chinchilla", seed=0).sample(21, random_state=0)
    mi = model_inputs(sweep, law, discrepancy="distance")
    job = engine.Job(mi.fingerprint, mi.model, mi.args, mi.kwargs, mi.sizes, 0)
    args, kwargs = engine.padded(job, joint=law == "distillation")
    for site, n in mi.sizes.items():  # really padded, and the mask marks the real runs
        assert np.shape(kwargs[site])[0] == engine.bucket(n) > n
        assert kwargs[engine.MASK_OF[site]].sum() == n
    from numpyro.infer import Predictive

    draws = Predictive(mi.model, num_samples=5)(jax.random.PRNGKey(1), *mi.args)
    sites = [k for k in draws if k not in mi.sizes]
    for s in range(5):
        params = {k: draws[k][s] for k in sites}
        lp, _ = log_density(mi.model, mi.args, mi.kwargs, params)
        lp_pad, _ = log_density(mi.model, args, kwargs, params)
        assert np.isfinite(float(lp))
        np.testing.assert_allclose(float(lp_pad), float(lp), rtol=1e-5, atol=1e-3)


def test_a_second_sweep_of_similar_size_compiles_nothing():
    a, b = _sweeps(2, rows=20, seed=10)
    b = b.iloc[:18]  # another sweep, other size, same bucket (32)
    first = bd.fit(a, **TINY)
    n = engine.n_programs()
    events = []
    listener = lambda name, secs, **kw: events.append((name, secs))  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        second = bd.fit(b, **TINY)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert engine.n_programs() == n and second.config["compiled"] is False
    compiles = [s for name, s in events if name == "/jax/compilation_cache/compile_requests_use_cache"
                or name.endswith("backend_compile_duration")]
    # nothing the size of a sampler compiles (a few tiny array ops outside it may)
    assert not [s for s in compiles if s > 0.5], compiles
    assert first.review() is not None and len(second.data) == 18


def test_fit_many_with_batch_of_one_equals_fit():
    sweeps = _sweeps(3, seed=20)
    many = bd.fit_many(sweeps, seed=5, batch_size=1, **TINY)
    for i, s in enumerate(sweeps):
        _same(many[i], bd.fit(s, seed=5 + i, **TINY))


def test_fit_many_batches_in_order_with_own_reviews():
    sweeps = _sweeps(4, seed=30) + [synthetic_sweep("chinchilla", seed=34).iloc[:40]]  # noqa: E501  # a second bucket
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)  # tiny fits fail their review; each says so
        posts = bd.fit_many(sweeps, seed=1, batch_size=3, **{**TINY, "review": True, "discrepancy": "compute"})
    assert [len(p.data) for p in posts] == [20, 20, 20, 20, 40]
    for s, p in zip(sweeps, posts):
        np.testing.assert_allclose(p.data["loss"].to_numpy(), s["loss"].to_numpy(), rtol=1e-6)
        assert p.review().checks and p.config["seed"] == 1 + posts.index(p)
        assert "kappa" in p.idata.posterior and "omega" in p.idata.posterior
    # the batch a sweep is in changes floating-point rounding only: same posterior
    alone = bd.fit(sweeps[1], seed=2, **{**TINY, "discrepancy": "compute"})
    for k in ("E", "alpha", "beta"):
        assert abs(np.median(alone.draws()[k]) - np.median(posts[1].draws()[k])) < 0.5 * np.std(alone.draws()[k])


def test_fit_many_errors_name_the_sweep():
    good = _sweeps(1)[0]
    with pytest.raises(bd.SweepError, match=r"sweeps\[1\]: .*column 'loss'"):
        bd.fit_many([good, good.assign(loss=-1.0)], **TINY)
    with pytest.raises(bd.BayesDistillError, match="at least one sweep"):
        bd.fit_many([], **TINY)
    with pytest.raises(bd.BayesDistillError, match="batch_size must be an integer >= 1"):
        bd.fit_many([good], batch_size=0, **TINY)
    with pytest.raises(bd.BayesDistillError, match="client must be a distributed.Client"):
        bd.fit_many([good], client="localhost:8786", **TINY)


def test_memory_maps_stay_bounded_over_300_fits():
    """300 fits in one process, of sweeps of several sizes: the compiled code is reused, so the
    process's memory maps stop growing (compiling one sampler per fit hit the kernel's limit of
    ~65,000 maps after ~45 fits)."""
    def maps():
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)

    sweeps = _sweeps(6, rows=24, seed=40)
    kw = {**TINY, "draws": 10, "warmup": 10}
    for i in range(30):  # warm: every sampler and array op of these shapes compiled
        bd.fit(sweeps[i % 6].iloc[:17 + i % 8], seed=i, **kw)
    before = maps()
    for i in range(270):
        bd.fit(sweeps[i % 6].iloc[:17 + i % 8], seed=i, **kw)
    grown = maps() - before
    assert grown < 200, f"memory maps grew by {grown} over 270 fits"


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's own start-up notices
        c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0", silence_logs=40)
        client = distributed.Client(c)
    yield client
    client.close()
    c.close()


def test_dask_cluster_of_two_workers_gives_the_local_numbers(cluster):
    sweeps = _sweeps(4, seed=50)
    local = bd.fit_many(sweeps, seed=7, batch_size=2, **TINY)
    remote = bd.fit_many(sweeps, seed=7, batch_size=2, client=cluster, **TINY)
    workers = {w["id"] for w in cluster.scheduler_info()["workers"].values()}
    assert len(workers) == 2
    for a, b in zip(local, remote):
        _same(a, b)
        assert a.config["seed"] == b.config["seed"]
