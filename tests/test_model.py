"""The sampler's reparameterisations are exact: the prior is the one the priors state."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from numpyro.infer import Predictive

import bayesdistill as bd
from bayesdistill.model import resolve_priors, sample_coefficients

CENTRE = {"N": 20.0, "D": 23.0, "N_S": 20.5, "D_S": 22.0}


@pytest.mark.parametrize("law", ["chinchilla", "busbridge", "distillation", "distillation_tied",
                                 "distillation_nobpl"])
def test_reparameterised_prior_has_the_stated_marginals(law):
    spec = bd.get_law(law)
    pri = resolve_priors(spec, "student_t", None)
    draws = Predictive(lambda: sample_coefficients(spec, pri, CENTRE), num_samples=20000)(jax.random.PRNGKey(0))
    z = np.array([-1.6449, 0.0, 1.6449])
    for name in spec.params:
        p = pri[name].params
        assert pri[name].family == "lognormal"
        got = np.quantile(np.log(np.asarray(draws[name])), [0.05, 0.5, 0.95])
        np.testing.assert_allclose(got, p["loc"] + p["scale"] * z, atol=0.06 * max(1.0, p["scale"]),
                                   err_msg=name)


def test_reparameterisation_keeps_the_prior_dependence_free():
    # alpha and A are independent a priori: the shear and the gamma scaling must not correlate them
    spec = bd.get_law("distillation")
    pri = resolve_priors(spec, "student_t", None)
    d = Predictive(lambda: sample_coefficients(spec, pri, CENTRE), num_samples=20000)(jax.random.PRNGKey(1))
    for a, b in (("A", "alpha"), ("A_prime", "alpha_prime"), ("c1", "f1"), ("c1", "d1"), ("B_prime", "gamma_prime")):
        r = np.corrcoef(np.log(np.asarray(d[a])), np.log(np.asarray(d[b])))[0, 1]
        assert abs(r) < 0.05, (a, b, r)
