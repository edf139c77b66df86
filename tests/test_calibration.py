"""The discrepancy (``bd.fit(discrepancy="distance")``, the default): noise that grows with the
distance from the fitted runs. Its calibration on a misspecified synthetic sweep, predictions,
persistence, priors and the sites of both models."""

from __future__ import annotations

import arviz_base as azb
import jax
import numpy as np
import pandas as pd
import pytest
from conftest import CHINCHILLA_TRUTH, true_loss
from numpyro.handlers import seed, trace
from numpyro.infer import Predictive

import bayesdistill as bd
from bayesdistill import LawError
from bayesdistill.errors import BayesDistillError
from bayesdistill.inference.inputs import model_inputs
from bayesdistill.inference.model import resolve_priors, site_names
from bayesdistill.inference.posterior import Posterior

# these tests extrapolate on purpose (up to 4 standard deviations of the sweep out): the far-extrapolation
# warning of Posterior.predict is tested in test_isoflop.py
pytestmark = pytest.mark.filterwarnings("ignore::bayesdistill.errors.ExtrapolationWarning")

#: small sampler settings, no review (tiny fits may fail it)
FAST = {"chains": 2, "draws": 150, "warmup": 150, "seed": 0, "progress_bar": False, "review": False,
        "chain_method": "sequential", "retry": False}


def wiggly_sweep(noise: float = 0.005, seed_: int = 0) -> pd.DataFrame:
    """A sweep the Chinchilla law cannot describe: the true log loss departs from the law by a
    wiggle whose amplitude grows with the distance from the middle of the sweep (1% per unit),
    so the law's misfit keeps growing beyond the fitted runs. 8 sizes x 6 ratios, 0.5% noise."""
    N, tpp = np.meshgrid(np.geomspace(1e7, 3e9, 8), [5.0, 10, 20, 40, 80, 160], indexing="ij")
    N, D = N.ravel(), (N * tpp).ravel()
    zN, zD = (np.log(N) - np.log(2e8)) / 1.3, (np.log(D) - np.log(6e9)) / 1.6
    wiggle = 0.01 * np.hypot(zN, zD) * np.sin(3 * zN + 2 * zD)
    rng = np.random.default_rng(seed_)
    loss = true_loss("chinchilla", CHINCHILLA_TRUTH, N, D) * np.exp(wiggle + noise * rng.standard_normal(N.shape))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


@pytest.fixture(scope="module")
def split():
    df = wiggly_sweep()
    C = 6 * df["N"] * df["D"]
    held = C > np.quantile(C, 0.75)  # fit the cheaper 36 runs, predict the 12 most expensive
    return df[~held].reset_index(drop=True), df[held].reset_index(drop=True)


@pytest.fixture(scope="module")
def fits(split):
    # 4 x 1000 draws: at 2 x 500 the 5% / 95% predictive quantiles of the constant-noise fit move
    # enough with the seed to take one more of the 12 held-out runs (10/12 on one run, 9/12 on most;
    # at 4 x 4000, 9/12 with seeds 0 and 1)
    return {kind: bd.fit(split[0], discrepancy=kind, **{**FAST, "chains": 4, "draws": 1000, "warmup": 1000})
            for kind in ("none", "distance")}


def _coverage(post, test):
    p = post.predict(test["N"], test["D"])
    return float(np.mean((test["loss"] >= p["pred_q05"]) & (test["loss"] <= p["pred_q95"])))


# ------------------------------------------------------------- calibration


def test_discrepancy_calibrates_extrapolation_of_a_misspecified_law(fits, split):
    test = split[1]
    cov = {k: _coverage(p, test) for k, p in fits.items()}
    # one constant noise scale: 90% intervals that miss a quarter of the larger runs;
    # noise growing with the distance: all of them inside
    assert cov["none"] <= 0.8 and cov["distance"] >= 11 / 12, cov
    tau = fits["distance"].draws(["tau"])["tau"]
    assert np.median(tau) > 0.004  # learnt from the fitted runs: their misfit grows towards the edges
    # the point predictions barely change (the discrepancy is noise, not a shift of the law)
    med = {k: p.predict(test["N"], test["D"])["median"] for k, p in fits.items()}
    assert np.max(np.abs(med["distance"] / med["none"] - 1)) < 0.02


def test_default_is_distance(fits, split):
    post = fits["distance"]
    assert post.discrepancy == "distance" and post.config["discrepancy"] == "distance"
    assert fits["none"].discrepancy == "none"
    assert post.param_names[-1] == "tau" and "tau" not in fits["none"].param_names
    assert site_names(bd.get_law("chinchilla"), "student_t", "distance")[-1] == "tau"
    # fit's default builds the distance model
    assert "tau" in model_inputs(split[0], "chinchilla").priors


# ------------------------------------------------------------- predictions


def test_noise_scale_grows_with_distance(fits):
    post = fits["distance"]
    c = post.centre
    # points on a ray from the centre of the fitted runs, 0 to 4 standard deviations out
    t = np.linspace(0, 4, 9)
    N = np.exp(c["loc_logN"] + t * c["scale_logN"] / np.sqrt(2))
    D = np.exp(c["loc_logD"] + t * c["scale_logD"] / np.sqrt(2))
    scale = np.asarray(post.noise_scale(N, D))
    sigma, tau = (post.draws([k])[k] for k in ("sigma", "tau"))
    assert scale.shape == (post.n_draws, 9)
    np.testing.assert_allclose(scale[:, 0], sigma, rtol=1e-5)  # at the centre: sigma
    np.testing.assert_allclose(scale, np.sqrt(sigma[:, None] ** 2 + (tau[:, None] * t) ** 2), rtol=1e-4)
    assert np.all(np.diff(scale, axis=1) >= 0)
    # so do the predictive intervals, beyond what the law's own uncertainty adds
    pd_, pn = post.predict(N, D), fits["none"].predict(N, D)
    extra = ((pd_["pred_q95"] - pd_["pred_q05"]) - (pd_["q95"] - pd_["q05"])) / pd_["median"]
    # (quantiles of a few hundred draws: monotone in trend, not step by step)
    assert extra.iloc[-1] > 2 * extra.iloc[0] and np.corrcoef(t, extra)[0, 1] > 0.9
    rel = lambda p: (p["pred_q95"] - p["pred_q05"]) / p["median"]  # noqa: E731
    assert rel(pd_).iloc[-1] > 1.5 * rel(pn).iloc[-1]


def test_noise_scale_needs_the_points_with_a_discrepancy(fits):
    with pytest.raises(BayesDistillError, match="give the points N and D"):
        fits["distance"].noise_scale()
    sigma = fits["none"].draws(["sigma"])["sigma"]
    np.testing.assert_array_equal(np.asarray(fits["none"].noise_scale())[:, 0], sigma.astype(np.float32))


def test_posterior_saved_before_the_option_has_constant_noise(fits):
    old = fits["none"]
    config = {k: v for k, v in old.config.items() if k != "discrepancy"}
    legacy = Posterior(old.idata, old.law, old.priors, old.noise, {"N": old.centre["N"], "D": old.centre["D"]},
                       config)
    assert legacy.discrepancy == "none" and "tau" not in legacy.param_names
    pd.testing.assert_frame_equal(legacy.predict([1e8, 1e10], [2e9, 2e11]), old.predict([1e8, 1e10], [2e9, 2e11]))


def test_save_load_keeps_predictions_identical(fits, tmp_path):
    post = fits["distance"]
    loaded = bd.load(post.save(tmp_path / "fit.nc"))
    assert loaded.discrepancy == "distance" and loaded.centre == post.centre
    assert loaded.param_names == post.param_names and loaded.priors == post.priors
    N = np.geomspace(1e7, 3e10, 7)
    pd.testing.assert_frame_equal(loaded.predict(N, 20 * N), post.predict(N, 20 * N))
    pd.testing.assert_frame_equal(loaded.predict(N, 20 * N, prob=0.5), post.predict(N, 20 * N, prob=0.5))


# ----------------------------------------------------------------- priors


def test_discrepancy_priors_by_site_name():
    law = bd.get_law("chinchilla")
    out = resolve_priors(law, "student_t", {"tau": ("halfnormal", 0.003)}, "distance")
    assert out["tau"] == bd.Prior("halfnormal", {"scale": 0.003})
    assert resolve_priors(law, "normal", None, "distance")["tau"].family == "halfnormal"
    assert "tau" not in resolve_priors(law, "student_t", None, "none")
    with pytest.raises(LawError, match=r"'tau' is not a parameter of law 'chinchilla'.*valid names"):
        resolve_priors(law, "student_t", {"tau": ("halfnormal", 0.003)}, "none")
    with pytest.raises(LawError, match="'tau_distill' is not a parameter"):
        resolve_priors(law, "student_t", {"tau_distill": ("halfnormal", 0.003)}, "distance")
    with pytest.raises(LawError, match=r"'tau' is a noise scale and needs a prior on \[0, inf\)"):
        resolve_priors(law, "student_t", {"tau": ("normal", 0.0, 0.01)}, "distance")
    with pytest.raises(LawError, match="unknown discrepancy 'gp'"):
        resolve_priors(law, "student_t", None, "gp")
    joint = bd.get_law("distillation")
    assert {"tau", "tau_distill"} <= set(site_names(joint, "student_t", "distance"))
    assert resolve_priors(joint, "student_t", {"tau_distill": ("exponential", 200.0)},
                          "distance")["tau_distill"].family == "exponential"


def test_fit_rejects_a_bad_discrepancy_before_sampling(split):
    with pytest.raises(LawError, match="unknown discrepancy"):
        bd.fit(split[0], discrepancy="gp", **FAST)
    with pytest.raises(LawError, match="'tau' is not a parameter"):
        bd.fit(split[0], discrepancy="none", priors={"tau": ("halfnormal", 0.01)}, **FAST)


def _sites(model, *args, **kwargs):
    return trace(seed(model, 0)).get_trace(*args, **kwargs)


def test_model_sites_and_scales(split):
    mi = model_inputs(split[0], "chinchilla", priors={"tau": ("gamma", 2.0, 200.0)})
    tr = _sites(mi.model, *mi.args, **mi.kwargs)
    assert tr["tau"]["type"] == "sample"  # a gamma prior: sampled as it is
    mi = model_inputs(split[0], "chinchilla")
    tr = _sites(mi.model, *mi.args, **mi.kwargs)
    # default half-normal sigma and tau: sampled in polar coordinates (angle, log total scale)
    assert tr["sigma_angle"]["type"] == tr["log_sigma_total"]["type"] == "sample"
    assert tr["tau"]["type"] == tr["sigma"]["type"] == "deterministic"
    mi_cauchy = model_inputs(split[0], "chinchilla", priors={"tau": ("halfcauchy", 0.01)})
    tr_c = _sites(mi_cauchy.model, *mi_cauchy.args, **mi_cauchy.kwargs)
    # other families: tau sampled as |t| (no boundary at tau = 0), sigma as it is
    assert tr_c["tau_signed"]["type"] == "sample" and tr_c["sigma"]["type"] == "sample"
    assert float(tr_c["tau"]["value"]) == abs(float(tr_c["tau_signed"]["value"]))
    logN, logD, centre = mi.args
    scale = tr["log_loss"]["fn"].base_dist.scale if hasattr(tr["log_loss"]["fn"], "base_dist") \
        else tr["log_loss"]["fn"].scale
    d2 = ((logN - centre["loc_logN"]) / centre["scale_logN"]) ** 2 + ((logD - centre["loc_logD"]) / centre["scale_logD"]) ** 2
    want = np.sqrt(float(tr["sigma"]["value"]) ** 2 + float(tr["tau"]["value"]) ** 2 * np.asarray(d2))
    np.testing.assert_allclose(np.asarray(scale), want, rtol=1e-5)
    none = model_inputs(split[0], "chinchilla", discrepancy="none")
    assert "tau" not in _sites(none.model, *none.args, **none.kwargs)


def test_polar_noise_scales_keep_the_stated_priors(split):
    """The polar reparameterisation is exact: sigma ~ HalfNormal(0.05), tau ~ HalfNormal(0.01), independent."""
    from scipy import stats

    mi = model_inputs(split[0], "chinchilla", priors={"sigma": ("halfnormal", 0.03)})
    draws = Predictive(mi.model, num_samples=20000)(jax.random.PRNGKey(1), *mi.args)
    sigma, tau = np.asarray(draws["sigma"]), np.asarray(draws["tau"])
    assert stats.kstest(sigma, stats.halfnorm(scale=0.03).cdf).pvalue > 1e-3
    assert stats.kstest(tau, stats.halfnorm(scale=0.01).cdf).pvalue > 1e-3
    assert abs(np.corrcoef(sigma, tau)[0, 1]) < 0.03
    assert abs(np.corrcoef(sigma ** 2, tau ** 2)[0, 1]) < 0.03


def test_joint_model_student_runs_have_their_own_discrepancy():
    sweep = bd.paper_sweep(seed=0)
    sweep = pd.concat([sweep[sweep["kind"] == "supervised"].iloc[:30],
                       sweep[sweep["kind"] == "distillation"].iloc[::20]], ignore_index=True)
    mi = model_inputs(sweep, "distillation")
    assert {"loc_logN_S", "scale_logN_S", "loc_logD_S", "scale_logD_S"} <= set(mi.centre)

    @jax.jit  # tracing the joint model op by op takes ~10 s; compiled, ~1 s
    def values(key):
        tr = trace(seed(mi.model, key)).get_trace(*mi.args, **mi.kwargs)
        fn = tr["log_loss_student"]["fn"]
        return {"scale": getattr(fn, "base_dist", fn).scale,
                **{k: v["value"] for k, v in tr.items() if k in ("sigma", "tau", "sigma_distill", "tau_distill")}}

    v = values(jax.random.PRNGKey(0))
    assert set(v) == {"scale", "sigma", "tau", "sigma_distill", "tau_distill"}
    sup, dis, centre = mi.args
    d2 = sum(((np.asarray(dis[f"log{k}_S"]) - centre[f"loc_log{k}_S"]) / centre[f"scale_log{k}_S"]) ** 2
             for k in "ND")
    want = np.sqrt(float(v["sigma_distill"]) ** 2 + float(v["tau_distill"]) ** 2 * d2)
    np.testing.assert_allclose(np.asarray(v["scale"]), want, rtol=1e-5)


def test_student_noise_uses_the_student_geometry():
    """``noise_scale(scale="sigma_distill")`` measures distance in the student runs' own coordinates."""
    draws = {"sigma": np.full((1, 4), 0.01), "tau": np.full((1, 4), 0.002),
             "sigma_distill": np.full((1, 4), 0.02), "tau_distill": np.full((1, 4), 0.005)}
    idata = azb.from_dict({"posterior": draws})
    centre = {"loc_logN": 20.0, "scale_logN": 1.0, "loc_logD": 23.0, "scale_logD": 1.0,
              "loc_logN_S": 18.0, "scale_logN_S": 2.0, "loc_logD_S": 22.0, "scale_logD_S": 0.5}
    post = Posterior(idata, bd.get_law("distillation"), {}, "normal", centre, {"discrepancy": "distance"})
    N, D = np.exp([18.0, 22.0]), np.exp([22.5, 22.0])
    s = np.asarray(post.noise_scale(N, D, scale="sigma_distill"))
    d2 = ((np.log(N) - 18.0) / 2.0) ** 2 + ((np.log(D) - 22.0) / 0.5) ** 2
    np.testing.assert_allclose(s, np.broadcast_to(np.sqrt(0.02 ** 2 + 0.005 ** 2 * d2), (4, 2)), rtol=1e-5)
    s = np.asarray(post.noise_scale(N, D))
    d2 = ((np.log(N) - 20.0) / 1.0) ** 2 + ((np.log(D) - 23.0) / 1.0) ** 2
    np.testing.assert_allclose(s, np.broadcast_to(np.sqrt(0.01 ** 2 + 0.002 ** 2 * d2), (4, 2)), rtol=1e-5)
