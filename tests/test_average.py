"""Decisions under law uncertainty: ``bd.average`` (issue 21)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

import bayesdistill as bd
from bayesdistill.errors import BayesDistillError


@pytest.fixture(scope="module")
def pair(chinchilla_sweep, chinchilla_post):
    """The session's Chinchilla fit and a Busbridge fit of the same sweep."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        bus = bd.fit(chinchilla_sweep, "busbridge", seed=1, **FAST)
    return {"chinchilla": chinchilla_post, "busbridge": bus}


N = np.array([3e8, 1e10])  # inside the sweep, and ten times its largest model
D = 20 * N


def test_one_weight_is_that_posterior(pair):
    one = bd.average(pair, weights=[1.0, 0.0])
    assert one.n_draws == pair["chinchilla"].n_draws and one.names == ["chinchilla", "busbridge"]
    pd.testing.assert_frame_equal(one.predict(N, D), pair["chinchilla"].predict(N, D))
    a, b = bd.compute_optimal(one, [1e21]), bd.compute_optimal(pair["chinchilla"], [1e21])
    np.testing.assert_array_equal(a.N, b.N)


def test_a_mixture_carries_both_laws(pair):
    mix = bd.average(pair, weights=[1, 1])
    counts = mix.summary_dict()["draws"]
    assert abs(counts["chinchilla"] - counts["busbridge"]) <= 1 and mix.n_draws == sum(counts.values())
    law = {k: np.asarray(p.log_loss_draws(N, D)) for k, p in pair.items()}
    m = np.asarray(mix.log_loss_draws(N, D))
    assert m.shape == (mix.n_draws, 2)
    # every mixture draw is a draw of one of the laws, and the mixture's quantiles bracket both medians
    lo, hi = np.quantile(m, [0.05, 0.95], axis=0)
    for v in law.values():
        assert np.all(lo <= np.median(v, 0) + 1e-6) and np.all(np.median(v, 0) <= hi + 1e-6)
    opt = bd.compute_optimal(mix, [1e21, 1e22])
    assert opt.N.shape == (mix.n_draws, 2) and np.all(np.isfinite(opt.N))
    bands = mix.bands(N, D)
    assert np.all(bands["pred_q05"] <= bands["median"]) and np.all(bands["median"] <= bands["pred_q95"])


def test_stacking_weights_sum_to_one(pair):
    mix = bd.average(pair)  # stacking by default
    assert mix.method == "stacking" and mix.weights.sum() == pytest.approx(1.0)
    assert np.all((mix.weights >= 0) & (mix.weights <= 1))
    table = mix.weights_table()
    assert list(table.index) == ["chinchilla", "busbridge"] and table["draws"].sum() == mix.n_draws
    assert "weights by stacking" in repr(mix)


def test_bad_input_says_what_is_wrong(pair, busbridge_post):
    with pytest.raises(BayesDistillError, match="at least one posterior"):
        bd.average([])
    with pytest.raises(BayesDistillError, match="2 non-negative numbers"):
        bd.average(pair, weights=[1, -1])
    with pytest.raises(BayesDistillError, match="2 non-negative numbers"):
        bd.average(pair, weights=[1, 2, 3])
    with pytest.raises(BayesDistillError, match="not one of"):
        bd.average(pair, weights="bma")
    with pytest.raises(BayesDistillError, match="not a Posterior"):
        bd.average([pair["chinchilla"], "fit.nc"])
    with pytest.raises(BayesDistillError, match="distillation"):
        bd.average([bd.default_posterior()])
    with pytest.raises(BayesDistillError, match="other runs than item 0"):
        bd.average([pair["chinchilla"], busbridge_post])  # fitted to another sweep


def test_scores_of_a_mixture(pair, chinchilla_sweep):
    """The IsoFLOP scores take a mixture: its log score is the weighted mixture of the laws' densities."""
    from bayesdistill.inference.validation import held_out_log_score, score

    test = chinchilla_sweep.iloc[:5]
    N, D, y = (test[c].to_numpy(float) for c in ("N", "D", "loss"))
    one = bd.average(pair, weights=[1, 0])
    np.testing.assert_allclose(held_out_log_score(one, N, D, y), held_out_log_score(pair["chinchilla"], N, D, y))
    half = bd.average(pair, weights=[1, 1])
    each = [np.exp(held_out_log_score(p, N, D, y)) for p in pair.values()]
    np.testing.assert_allclose(np.exp(held_out_log_score(half, N, D, y)), 0.5 * (each[0] + each[1]), rtol=1e-6)
    s = score(half, test)
    assert s["n"] == 5 and 0 <= s["coverage90"] <= 1
