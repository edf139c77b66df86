"""The sampler's coordinates (:mod:`bayesdistill.inference.coordinates`): ``log E`` replaced by the log
loss at the sweep's centre is an exact change of variables (round trip, Jacobian), it is used for the
laws with an asymptote and only for them, and it straightens the curved E-A-alpha ridge."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import synthetic_sweep

import bayesdistill as bd
from bayesdistill.errors import LawError
from bayesdistill.inference.coordinates import asymptote_coordinates, site_index
from bayesdistill.inference.inputs import model_inputs
from bayesdistill.inference.laplace import flat_model, sampler_coordinates
from bayesdistill.laws.base import Law, get_law


def _coords(law="chinchilla", priors=None):
    mi = model_inputs(synthetic_sweep(seed=0), law, priors=priors, discrepancy="distance")
    fm = flat_model(mi.model, mi.args, mi.kwargs, jax.random.PRNGKey(0))
    return mi, fm, sampler_coordinates(fm, mi.gap, mi.args)


def test_the_map_round_trips_and_its_jacobian_is_the_determinant():
    mi, fm, c = _coords()
    i = site_index(fm.init, "E")
    assert i is not None
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = fm.x0 + jnp.asarray(rng.normal(0, 0.5, fm.x0.shape), fm.x0.dtype)
        y = c.to_y(x)
        np.testing.assert_allclose(c.to_x(y), x, rtol=0, atol=2e-5)
        # the potential in y is the potential in x less log |det dx/dy| (a triangular map)
        jac = jax.jacfwd(c.to_x)(y)
        log_det = float(jnp.linalg.slogdet(jac)[1])
        np.testing.assert_allclose(float(c.potential(y)), float(fm.potential(x)) - log_det, rtol=1e-5, atol=1e-3)
        # only E's coordinate changes: to the log of the loss at the centre
        theta = fm.constrain(x)
        centre = mi.args[-1]
        loss_centre = jnp.exp(get_law("chinchilla").log_loss(theta, centre["N"], centre["D"]))
        np.testing.assert_allclose(float(y[i]), float(jnp.log(loss_centre)), rtol=1e-5)
        np.testing.assert_array_equal(np.delete(np.asarray(y), i), np.delete(np.asarray(x), i))


def test_below_the_gap_the_potential_is_infinite_not_nan():
    _, fm, c = _coords()
    i = site_index(fm.init, "E")
    y = c.to_y(fm.x0).at[i].add(-50.0)  # E + m below m: E would be negative
    assert float(c.potential(y)) == np.inf
    assert np.all(np.isfinite(np.asarray(jax.grad(c.potential)(c.to_y(fm.x0)))))


def test_laws_without_an_asymptote_or_with_another_support_keep_the_model_coordinates():
    assert model_inputs(synthetic_sweep(seed=0), "kaplan", discrepancy="distance").gap is None
    assert model_inputs(bd.paper_sweep(seed=0), "distillation", discrepancy="distance").gap is None
    normal_e = {"E": {"family": "normal", "params": {"loc": 1.5, "scale": 0.5}}}
    mi, fm, c = _coords(priors=normal_e)
    assert mi.gap is None
    np.testing.assert_array_equal(c.to_y(fm.x0), fm.x0)
    for name in ("chinchilla", "busbridge", "muennighoff", "distillation"):
        assert get_law(name).asymptote == "E"
    with pytest.raises(LawError, match="asymptote 'Z'"):
        Law("bad", ("E",), lambda th, n, d: n, {"E": get_law("chinchilla").priors["E"]}, asymptote="Z")


def test_without_an_index_the_map_is_the_identity():
    c = asymptote_coordinates(lambda x: jnp.sum(x ** 2), None, lambda x: 1.0)
    x = jnp.arange(3.0)
    assert c.to_y(x) is x and c.to_x(x) is x and float(c.potential(x)) == 5.0


def test_a_curved_ridge_is_straightened():
    """On a sweep whose sizes span 1.3 decades (the Misfitting sweep's regime) the Laplace
    approximation in the sampler's coordinates fits the posterior better than in the model's: the
    importance weights of N(mode, H^-1) are less dispersed."""
    N = np.repeat(np.geomspace(6e7, 1.2e9, 6), 6)
    D = np.tile(np.geomspace(1e8, 2e10, 6), 6)
    rng = np.random.default_rng(1)
    loss = (1.8 + 60 * N ** -0.19 + 2.6e6 * D ** -0.72) * np.exp(rng.normal(0, 0.003, N.size))
    import pandas as pd

    mi = model_inputs(pd.DataFrame({"N": N, "D": D, "loss": loss}), "chinchilla", noise="normal", discrepancy="none")
    fm = flat_model(mi.model, mi.args, mi.kwargs, jax.random.PRNGKey(0))
    from bayesdistill.inference.laplace import curvature_root, grad_and_hessian, minimise

    x_mode, h, _ = minimise(fm.potential, fm.x0)
    c = sampler_coordinates(fm, mi.gap, mi.args)
    y_mode, _, _ = minimise(c.potential, c.to_y(x_mode))
    eps = jax.random.normal(jax.random.PRNGKey(2), (2000, fm.x0.shape[0]))

    def weight_sd(pot, mode):
        root = curvature_root(grad_and_hessian(pot, mode)[1])
        z = mode + eps @ root.T
        lw = -jax.vmap(pot)(z) + 0.5 * jnp.sum(eps ** 2, axis=1)
        lw = np.asarray(lw)[np.isfinite(np.asarray(lw))]
        return float(np.std(lw))

    assert weight_sd(c.potential, y_mode) < 0.7 * weight_sd(fm.potential, x_mode)
