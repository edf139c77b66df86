"""Issue 15: the IsoFLOP calibration protocol (bayesdistill.inference.validation), discrepancy="compute"
(intervals that widen with the decades of compute beyond the fit), the decades_beyond column and
its warning, the IsoFLOP plot."""

from __future__ import annotations

import json
import warnings

import arviz_base as azb
import numpy as np
import pandas as pd
import pytest
from conftest import CHINCHILLA_TRUTH, true_loss

import bayesdistill as bd
from bayesdistill.errors import BayesDistillError, ExtrapolationWarning, LawError, SweepError
from bayesdistill.inference.inputs import model_inputs
from bayesdistill.inference.model import misfit_sd, site_names
from bayesdistill.inference.posterior import EXTRAPOLATION_WARN_DECADES, Posterior
from bayesdistill.inference.validation import (
    compute_levels,
    isoflop_slices,
    leave_largest_out,
    log10_compute,
    pool,
    rollout_splits,
    score,
)

#: tiny sampler settings (2 chains x 200 draws, vectorised, fixed seed); no review (tiny fits may fail it)
FAST = {"chains": 2, "draws": 200, "warmup": 200, "seed": 0, "progress_bar": False, "review": False,
        "chain_method": "sequential", "retry": False}


def isoflop_sweep(seed: int = 0, curve: float = 0.006, noise: float = 0.003) -> pd.DataFrame:
    """An IsoFLOP sweep the Chinchilla law cannot describe: 7 budgets 1e17..1e20 (half a decade
    apart) x 6 sizes around the optimum, true log loss = the law + ``curve * (log10 C - 17)^2``
    (a misfit that keeps growing along log C) + ``noise``."""
    rows = []
    for c in np.arange(17.0, 20.01, 0.5):
        n_opt = np.sqrt(10 ** c / 6 / 20)
        rows += [(n_opt * f, 10 ** c / (6 * n_opt * f), c) for f in np.geomspace(0.25, 4, 6)]
    N, D, c = map(np.array, zip(*rows))
    rng = np.random.default_rng(seed)
    loss = true_loss("chinchilla", CHINCHILLA_TRUTH, N, D) * np.exp(curve * (c - 17) ** 2
                                                                     + noise * rng.standard_normal(len(N)))
    return pd.DataFrame({"N": N, "D": D, "loss": loss, "budget": 6 * N * D})


# ------------------------------------------------------------- protocol


def test_levels_bin_compute_by_half_decades_from_the_top():
    df = isoflop_sweep()
    levels = compute_levels(df)
    assert list(np.bincount(levels)) == [6] * 7  # 7 budgets half a decade apart, 6 runs each
    np.testing.assert_array_equal(levels, np.repeat(np.arange(7), 6))
    np.testing.assert_array_equal(compute_levels(df, budget="budget"), levels)
    # integer N and D whose 6ND overflows int64 are handled in floats
    big = pd.DataFrame({"N": [7_000_000_000] * 5, "D": [2_000_000_000_000] * 5, "loss": 2.0})
    assert np.allclose(log10_compute(big), np.log10(6 * 7e9 * 2e12))


def test_sparse_levels_merge_downwards():
    # half-decade bins from the top (20): 1 run, 2 runs, 3 runs, 5 runs, 2 runs. Scanning down, the
    # top three bins make the first level of at least 5 runs (6), the next bin the second (5); the
    # 2 runs left at the bottom are merged into the level above them
    c = np.array([20.0, 19.4, 19.3, 18.9, 18.8, 18.7, 18.4, 18.4, 18.3, 18.2, 18.1, 17.9, 17.8])
    N = np.full(len(c), 1e8)
    df = pd.DataFrame({"N": N, "D": 10 ** c / (6 * N), "loss": 3.0})
    np.testing.assert_array_equal(compute_levels(df), [1] * 6 + [0] * 7)
    np.testing.assert_array_equal(compute_levels(df.iloc[:11]), [1] * 6 + [0] * 5)
    np.testing.assert_array_equal(compute_levels(df, min_runs=1), [4, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 0, 0])


def test_rollout_and_leave_largest_out_splits():
    df = isoflop_sweep()
    splits = rollout_splits(df, min_fit_runs=12)
    assert [s.level for s in splits] == [2, 3, 4, 5, 6]  # level 1 would fit only 6 runs
    for s in splits:
        assert s.train.sum() == 6 * s.level and s.test.sum() == 6
        assert not (s.train & s.test).any()
        c = log10_compute(df)
        assert c[s.test].min() > c[s.train].max() == pytest.approx(s.log10_c_max_fit)
    last = leave_largest_out(df)
    assert last.level == 6 and last.train.sum() == 36
    train, test = last.frames(df)
    assert len(train) == 36 and len(test) == 6 and list(test.index) == list(range(6))


def test_isoflop_slices_need_equal_compute_and_several_sizes():
    df = isoflop_sweep()
    slices = isoflop_slices(df)
    assert [len(s) for s in slices] == [6] * 7
    grid = pd.DataFrame({"N": [1e8, 2e8, 4e8], "D": [1e9, 4e9, 1.6e10], "loss": 3.0})  # one size per compute
    assert isoflop_slices(grid) == []


def test_protocol_errors_name_the_problem():
    df = isoflop_sweep()
    with pytest.raises(SweepError, match="no column 'budget_flops'"):
        compute_levels(df, budget="budget_flops")
    with pytest.raises(SweepError, match=r"column 'N' must hold positive finite numbers; row 3"):
        compute_levels(df.assign(N=df["N"].where(df.index != 3, -1.0)))
    with pytest.raises(BayesDistillError, match="width must be a positive number of decades"):
        compute_levels(df, width=0)
    with pytest.raises(BayesDistillError, match="min_runs must be an integer >= 1"):
        compute_levels(df, min_runs=0)
    with pytest.raises(SweepError, match="fewer than min_runs=5"):
        compute_levels(df.iloc[:3])
    with pytest.raises(SweepError, match="no rollout split.*1 compute level"):
        rollout_splits(df.iloc[:6])
    with pytest.raises(BayesDistillError, match="expected a DataFrame"):
        log10_compute([1, 2, 3])


# ------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def split():
    return leave_largest_out(isoflop_sweep()).frames(isoflop_sweep())


@pytest.fixture(scope="module")
def post(split):
    return bd.fit(split[0][["N", "D", "loss"]], **FAST)


def _as_distance(p):
    return Posterior(p.idata, p.law, {k: v for k, v in p.priors.items() if k not in ("kappa", "omega")}, p.noise,
                     p.centre,
                     {**p.config, "discrepancy": "distance"})


def test_compute_is_the_default_and_learns_kappa_inside_the_fitted_runs(post):
    assert post.discrepancy == "compute" and post.has_kappa
    assert post.param_names[-3:] == ["tau", "kappa", "omega"]
    info = post.config["kappa"]
    # leave-last-level-out inside the 36 fitted runs: fit 30 (5 budgets), predict the 6 at 10^19.5
    assert info["source"] == "leave-last-level-out"
    assert info["inner_runs"] == 30 and info["held_out_runs"] == 6
    assert info["held_out_decades"] == pytest.approx(0.5, abs=0.01)
    for site in ("kappa", "omega"):
        v = post.draws([site])[site]
        assert v.shape == (post.n_draws,) and np.all(v >= 0)
        assert info[site]["q05"] <= info[site]["median"] <= info[site]["q95"]
    assert np.shape(info["loglik"]) == (25, 31)
    assert post.centre["log10_c_max"] == pytest.approx(19.5, abs=1e-9)


def test_intervals_widen_with_decades_of_compute_beyond_the_fit(post):
    dist = _as_distance(post)
    # along the compute-optimal line (20 tokens/param), 0 to 1 decade beyond the largest fitted budget
    e = np.linspace(0, 1, 5)
    C = 10 ** (19.5 + e)
    N = np.sqrt(C / 120)
    s_c, s_d = np.asarray(post.noise_scale(N, 20 * N)), np.asarray(dist.noise_scale(N, 20 * N))
    d = post.draws(["kappa", "omega"])
    sd = misfit_sd(d["kappa"][:, None], d["omega"][:, None], e[None, :])
    np.testing.assert_allclose(s_c, np.sqrt(s_d ** 2 + sd ** 2), rtol=1e-4)
    assert np.all(np.diff(s_c.mean(0)) > 0)
    # inside the fitted compute range the two are the same model
    np.testing.assert_allclose(s_c[:, 0], s_d[:, 0], rtol=1e-6)
    p, q = post.predict(N, 20 * N), dist.predict(N, 20 * N)
    np.testing.assert_allclose(p["decades_beyond"], e, atol=1e-9)
    excess = (p["pred_q95"] - p["pred_q05"] - q["pred_q95"] + q["pred_q05"]) / p["median"]
    # same seed of the noise draws: the compute band is at least the distance band, and wider at 1 decade
    assert excess.iloc[0] == pytest.approx(0.0, abs=2e-3) and excess.iloc[-1] > 0.005


def test_calibration_on_a_misspecified_isoflop_sweep(post, split):
    """The held-out budget of the synthetic sweep (6 runs, 0.5 decades beyond): ``compute``
    covers at least what ``distance`` covers with wider intervals. At 2 x 200 draws the exact
    coverage is a Monte Carlo quantity; the heavier check is the slow test below."""
    test = split[1]
    a, b = score(post, test), score(_as_distance(post), test)
    assert a["median_rel_width90"] > b["median_rel_width90"]
    assert a["coverage90"] >= b["coverage90"]
    assert a["median_rel_error"] == pytest.approx(b["median_rel_error"], abs=1e-12)
    assert a["median_rel_error"] < 0.02  # the law's extrapolation one level up: ~0.7% on this sweep
    pooled = pool([a, b])
    assert pooled["n"] == 12 and 0 <= pooled["coverage90"] <= 1


def test_save_load_keeps_kappa_and_predictions(post, tmp_path):
    loaded = bd.load(post.save(tmp_path / "compute.nc"))
    assert loaded.discrepancy == "compute" and loaded.has_kappa
    kept = {k: v for k, v in post.config["kappa"].items() if k != "loglik"}  # the grid stays in memory
    assert loaded.config["kappa"] == kept and loaded.centre == post.centre
    N = np.geomspace(1e8, 1e9, 4)
    pd.testing.assert_frame_equal(loaded.predict(N, 20 * N), post.predict(N, 20 * N))


def test_extrapolation_warning_past_one_decade(post):
    n = np.sqrt(10 ** 19.5 / 120)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        post.predict(n * np.sqrt(10 ** 0.9), 20 * n * np.sqrt(10 ** 0.9))  # 0.9 decades: no warning
    with pytest.warns(ExtrapolationWarning, match=r"1\.50 decades of compute .* beyond the largest fitted run"):
        p = post.predict(n * 10 ** 0.75, 20 * n * 10 ** 0.75)
    assert p["decades_beyond"].iloc[0] == pytest.approx(1.5) and EXTRAPOLATION_WARN_DECADES == 1.0
    assert issubclass(ExtrapolationWarning, UserWarning) and bd.ExtrapolationWarning is ExtrapolationWarning


def test_kappa_falls_back_to_its_prior_without_levels_to_leave_out():
    """One compute level (or too few runs below the largest): no inner fit, kappa keeps its prior;
    the same seed gives the same draws."""
    from bayesdistill.inference.kappa import kappa_from_prior as _kappa_from_prior
    from bayesdistill.inference.kappa import kappa_plan as _kappa_plan

    df = isoflop_sweep()
    one = df[np.isclose(np.log10(df["budget"]), 19.0)].reset_index(drop=True)
    pri = model_inputs(df[["N", "D", "loss"]], "chinchilla").priors
    why = _kappa_plan(one, pri)  # a reason instead of the inner runs' mask
    assert why == "the runs form one compute level"
    draws, info = _kappa_from_prior(pri, 0, why, 500)
    assert info["source"] == "prior: the runs form one compute level"
    pop = __import__("bayesdistill.inference.misfit", fromlist=["x"]).population()["predictive"]
    for site in ("kappa", "omega"):  # the shipped population prior's medians, within Monte Carlo error
        assert draws[site].shape == (500,)
        assert np.median(draws[site]) == pytest.approx(pop[site]["q50"], rel=0.35, abs=0.002)
    again, _ = _kappa_from_prior(pri, 0, why, 500)
    np.testing.assert_array_equal(draws["omega"], again["omega"])
    assert _kappa_plan(df.iloc[:12], pri) == "6 runs below the largest compute level, fewer than 12"
    inner = _kappa_plan(df, pri)  # several levels: the mask of the runs below the largest
    assert inner.dtype == bool and 0 < inner.sum() < len(df)


def test_kappa_priors_and_sites():
    law = bd.get_law("chinchilla")
    assert site_names(law, "student_t", "compute")[-3:] == ["tau", "kappa", "omega"]
    assert str(model_inputs(isoflop_sweep()[["N", "D", "loss"]], "chinchilla").priors["omega"]) == "population()"
    assert "kappa" not in site_names(law, "student_t", "distance")
    # the joint distillation law keeps "distance" semantics: no kappa
    joint = bd.get_law("distillation")
    assert "kappa" not in site_names(joint, "student_t", "compute")
    assert {"tau", "tau_distill"} <= set(site_names(joint, "student_t", "compute"))
    with pytest.raises(LawError, match=r"'kappa' is a noise scale and needs a prior on \[0, inf\)"):
        model_inputs(isoflop_sweep()[["N", "D", "loss"]], "chinchilla", priors={"kappa": ("normal", 0.0, 0.01)})
    with pytest.raises(LawError, match=r"'omega' is a noise scale and needs a prior on \[0, inf\)"):
        model_inputs(isoflop_sweep()[["N", "D", "loss"]], "chinchilla", priors={"omega": ("studentt", 3.0, 0.0, 0.01)})
    with pytest.raises(LawError, match="'population' is a prior on"):
        model_inputs(isoflop_sweep()[["N", "D", "loss"]], "chinchilla", priors={"sigma": ("population",)})
    with pytest.raises(LawError, match="'kappa' is not a parameter"):
        model_inputs(isoflop_sweep()[["N", "D", "loss"]], "chinchilla", priors={"kappa": ("halfnormal", 0.01)},
                     discrepancy="distance")


def test_joint_posterior_with_compute_has_no_kappa():
    draws = {k: np.full((1, 4), v) for k, v in
             {"sigma": 0.01, "tau": 0.002, "sigma_distill": 0.02, "tau_distill": 0.005}.items()}
    centre = {"loc_logN": 20.0, "scale_logN": 1.0, "loc_logD": 23.0, "scale_logD": 1.0,
              "loc_logN_S": 18.0, "scale_logN_S": 2.0, "loc_logD_S": 22.0, "scale_logD_S": 0.5, "log10_c_max": 18.0}
    p = Posterior(azb.from_dict({"posterior": draws}), bd.get_law("distillation"), {}, "normal", centre,
                  {"discrepancy": "compute"})
    assert not p.has_kappa and "kappa" not in p.param_names and "tau_distill" in p.param_names
    s = np.asarray(p.noise_scale([np.exp(20.0)], [np.exp(23.0)]))
    np.testing.assert_allclose(s, 0.01, rtol=1e-5)


@pytest.mark.slow
def test_compute_calibrates_the_next_budget_over_seeds():
    """Five noise seeds of the misspecified IsoFLOP sweep at 4 x 500 draws: pooled over the
    held-out budgets (30 runs), the 90% intervals of ``compute`` cover at least 80%."""
    scores = []
    for s in range(5):
        df = isoflop_sweep(seed=s)
        train, test = leave_largest_out(df).frames(df)
        p = bd.fit(train[["N", "D", "loss"]], chains=4, draws=500, warmup=500, seed=s, progress_bar=False,
                   review=False)
        scores.append(score(p, test))
    assert pool(scores)["coverage90"] >= 0.8, [s["coverage90"] for s in scores]


def test_cli_predict_shows_decades_beyond_and_the_warning(post, tmp_path, capsys):
    from bayesdistill.cli import main

    path = str(post.save(tmp_path / "fit.nc"))
    n = np.sqrt(10 ** 19.5 / 120)  # compute-optimal size at the largest fitted budget (20 tokens/param)
    assert main(["predict", path, "--N", f"{n:.6g}", f"{n * 10 ** 0.75:.6g}", "--tokens-per-param", "20"]) == 0
    out = capsys.readouterr().out
    header, _, first, second = out.split("\n\n")[0].splitlines()
    assert header.rstrip().endswith("decades beyond")
    assert first.split()[-1] == "0.00" and second.split()[-1] == "1.50"
    assert "warning: predicting up to 1.50 decades of compute" in out
    assert main(["predict", path, "--N", f"{n:.6g}", "--tokens-per-param", "20", "--json"]) == 0
    res = capsys.readouterr()
    assert json.loads(res.out)["predictions"][0]["decades_beyond"] == pytest.approx(0.0, abs=1e-6)
    assert "decades of compute" not in res.err  # (the tiny fit fails its review: that warning is expected)


def test_reprior_reads_the_fit_under_another_population(post, tmp_path):
    """The benchmark's leave-one-sweep-out: the fit's own likelihood grid under another population
    prior. Under the shipped one it gives the fit's own draws; under a narrower one, smaller misfits."""
    from bayesdistill.inference.misfit import population
    from bayesdistill.inference.population import fit_population, reprior

    same = reprior(post, population())
    for site in ("kappa", "omega"):
        np.testing.assert_array_equal(same.draws([site])[site], post.draws([site])[site])
    grid = np.zeros(np.shape(population()["log_density"]))
    flat = grid - 0.5 * (np.arange(grid.shape[1])[None, :] / 2.0) ** 2  # sweeps whose omega is ~0
    small = reprior(post, fit_population({f"s{i}": flat for i in range(8)}))
    assert np.median(small.draws(["omega"])["omega"]) < np.median(post.draws(["omega"])["omega"])
    with pytest.raises(BayesDistillError, match="not kept in saved files"):
        reprior(bd.load(post.save(tmp_path / "p.nc")), population())
