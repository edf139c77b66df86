"""Chains on separate CPU cores: the XLA host-device flag and ``chain_method="auto"``."""

from __future__ import annotations

import os
import warnings

import jax
import numpy as np
import pytest
from conftest import synthetic_sweep

import bayesdistill as bd
from bayesdistill import runtime as devices
from bayesdistill.inference import sampling as fit_module


def test_use_cpu_cores_sets_the_flag_once(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setenv(devices.ENV, "3")
    assert devices.use_cpu_cores() == 3
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=3"
    assert devices.use_cpu_cores() == 1  # already set: left alone
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1")
    monkeypatch.setenv(devices.ENV, "1")  # opted out
    assert devices.use_cpu_cores() == 1 and os.environ["XLA_FLAGS"] == "--xla_cpu_foo=1"
    monkeypatch.setenv(devices.ENV, "lots")  # not a number: nothing changes
    assert devices.use_cpu_cores() == 1 and os.environ["XLA_FLAGS"] == "--xla_cpu_foo=1"
    monkeypatch.delenv(devices.ENV)
    assert devices.use_cpu_cores() == min(devices._cores(), devices.MAX_DEVICES)


def test_auto_splits_chains_over_cpu_devices():
    resolve = fit_module.resolve_chain_method
    assert resolve("sequential", 4) == (1, False, "sequential")
    assert resolve("vectorized", 4) == (1, True, "vectorized")
    assert resolve("auto", 1) == (1, True, "vectorized")
    devices, vectorize, label = resolve("auto", 4)
    n = jax.local_device_count()
    if jax.default_backend() == "cpu" and n > 1:
        expect = max(d for d in (1, 2, 4) if d <= n)
        assert (devices, vectorize) == (expect, False) and label.startswith(f"{expect} CPU devices")
    elif jax.default_backend() == "cpu":
        assert (devices, vectorize, label) == (1, False, "sequential")
    else:
        assert (devices, label) == (1, "vectorized")
    # sweeps x chains of a batched call are split the same way
    assert resolve("parallel", 6)[0] == max(d for d in range(1, min(n, 6) + 1) if 6 % d == 0)


@pytest.mark.skipif(jax.local_device_count() < 2, reason="one JAX device: no chains to split")
def test_split_chains_fit_is_reproducible():
    sweep = synthetic_sweep("chinchilla", seed=0)
    kw = {"chains": 2, "draws": 60, "warmup": 60, "seed": 3, "progress_bar": False, "review": False,
          "retry": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        a, b = bd.fit(sweep, **kw), bd.fit(sweep, **kw)
    assert a.config["chain_method"] == "2 CPU devices x 1 sequential chains"
    assert a.n_draws == 120 and a.idata.posterior.sizes["chain"] == 2
    for k in a.param_names:
        np.testing.assert_array_equal(a.draws()[k], b.draws()[k])
    # the chains differ from each other (each device ran its own chain)
    e = a.idata.posterior["E"].values
    assert not np.array_equal(e[0], e[1])
