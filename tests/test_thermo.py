"""Thermodynamic integration (the evidence benchmark's reference) against closed-form log Z."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from test_evidence import V0, exact_regression, regression

from bayesdistill.inference import evidence as ev
from bayesdistill.inference.thermo import ladder, thermodynamic_evidence


def _conjugate(seed=0, n=40):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = X @ np.array([1.0, -0.5, 0.25]) + 0.7 * rng.standard_normal(n)
    target = ev.Target(regression(V0), (jnp.asarray(X, jnp.float32),), {"y": jnp.asarray(y, jnp.float32)})
    return target, exact_regression(X, y, V0)[0]


def test_ladder_runs_from_prior_to_posterior():
    b = ladder(8, 5.0)
    assert b[0] == 0.0 and b[-1] == 1.0 and np.all(np.diff(b) > 0) and len(b) == 9


SMALL = {"warmup": 300, "draws": 600}


@pytest.fixture(scope="module")
def runs():
    target, exact = _conjugate()
    return {"target": target, "exact": exact, "fine": thermodynamic_evidence(target, rungs=16, seed=0, **SMALL),
            "coarse": thermodynamic_evidence(target, rungs=4, seed=0, **SMALL)}


def test_thermodynamic_integration_recovers_the_exact_evidence(runs):
    """Within 3 of its own standard errors and 0.2 nats, with an error that is neither zero nor vast."""
    res, exact = runs["fine"], runs["exact"]
    assert res.method == "stepping-stone" and len(res.info["mean_loglik"]) == 17
    assert 0 < res.se < 0.3, res.info
    assert abs(res.log_z - exact) <= max(3 * res.se, 0.05), (res.log_z, exact, res.se)
    assert abs(res.log_z - exact) <= 0.2
    # E_beta[log L] rises from the prior to the posterior; TI on the same draws agrees within its errors
    assert res.info["mean_loglik"][-1] > res.info["mean_loglik"][0]
    ti_se = (res.info["ti_mc_se"] ** 2 + res.info["ti_discretisation"] ** 2) ** 0.5
    assert abs(res.info["ti"] - exact) <= max(3 * ti_se, 0.05), (res.info["ti"], exact, ti_se)


def test_too_few_rungs_show_in_the_error(runs):
    """A coarse ladder's errors are reported, not hidden: TI's discretisation error and the
    stepping-stone error both exceed the fine ladder's."""
    assert runs["coarse"].info["ti_discretisation"] > runs["fine"].info["ti_discretisation"]
    assert runs["coarse"].se > runs["fine"].se


def test_same_seed_same_number(runs):
    again = thermodynamic_evidence(runs["target"], rungs=4, seed=0, **SMALL)
    assert again.log_z == runs["coarse"].log_z and again.se == runs["coarse"].se


