"""Files saved by earlier releases still load, review and predict as they did (tests/fixtures/README.md).

``expected.json`` holds what the release that wrote the files computed from them (ArviZ 0.23,
jax 0.10): the fixture ``gadre_c4_chinchilla.nc`` and the shipped ``models/distillation_replica.nc``
must give the same review, summary and predictions on today's stack.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesdistill as bd
from bayesdistill.errors import ExtrapolationWarning
from bayesdistill.inference.comparison import _loo
from bayesdistill.inference.shipped import DEFAULT_POSTERIOR

HERE = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((HERE / "expected.json").read_text())
FILES = {"fixture": HERE / "gadre_c4_chinchilla.nc", "shipped": DEFAULT_POSTERIOR}
#: float32 draws and float64 statistics: the same computation agrees to rounding
RTOL = 1e-6


@pytest.fixture(scope="module", params=sorted(FILES))
def saved(request):
    return request.param, bd.load(FILES[request.param]), EXPECTED[request.param]


def test_review_is_the_same(saved):
    _, post, want = saved
    got = post.review().to_dict()
    assert got["ok"] == want["review"]["ok"]
    assert got["mean_leapfrog_steps"] == pytest.approx(want["review"]["mean_leapfrog_steps"], rel=RTOL, nan_ok=True)
    for g, w in zip(got["checks"], want["review"]["checks"], strict=True):
        assert (g["name"], g["threshold"], g["passed"]) == (w["name"], w["threshold"], w["passed"])
        assert g["value"] == pytest.approx(w["value"], rel=RTOL, nan_ok=True), g["name"]


def test_summary_is_the_same(saved):
    _, post, want = saved
    got = post.summary()
    expected = pd.DataFrame(want["summary"])
    assert list(got.columns) == list(expected.columns)
    assert list(got.index) == list(expected.index)
    pd.testing.assert_frame_equal(got.astype(float), expected.loc[got.index].astype(float), rtol=RTOL)


def test_predict_is_the_same(saved):
    which, post, want = saved
    N, D = np.array(EXPECTED["points"]).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)  # the shipped fit's runs end below the 7B point
        got = post.predict(N, D, seed=EXPECTED["seed"])
    pd.testing.assert_frame_equal(got, pd.DataFrame(want["predict"]), rtol=RTOL, check_dtype=False)
    if which == "shipped":
        got = post.predict_student(**EXPECTED["student"], seed=EXPECTED["seed"])
        pd.testing.assert_frame_equal(got, pd.DataFrame(want["predict_student"]), rtol=RTOL,
                                      check_dtype=False)


def test_loo_is_the_same():
    """PSIS-LOO of the fixture: the same elpd, p and Pareto k; the standard error now uses the sample variance
    of the pointwise elpd (ddof=1; ArviZ 0.23 used ddof=0), so it is sqrt(n / (n - 1)) times the old one."""
    post, want = bd.load(FILES["fixture"]), EXPECTED["fixture"]["loo"]
    res, bad = _loo(post)
    n = len(want["pareto_k"])
    assert float(res.elpd) == pytest.approx(want["elpd"], rel=RTOL, nan_ok=True)
    assert float(res.p) == pytest.approx(want["p"], rel=RTOL, nan_ok=True)
    np.testing.assert_allclose(np.asarray(res.pareto_k), want["pareto_k"], rtol=RTOL, atol=1e-9)
    assert bad == want["pareto_k_bad"]
    assert float(res.se) == pytest.approx(want["se"] * np.sqrt(n / (n - 1)), rel=RTOL, nan_ok=True)


def test_saved_again_reads_back_the_same(saved, tmp_path):
    """A file of the old release, saved again on today's stack, loads with the same draws and numbers."""
    _, post, want = saved
    again = bd.load(post.save(tmp_path / "again.nc"))
    for group in post.idata.children:
        for name, v in post.idata[group].dataset.data_vars.items():
            np.testing.assert_array_equal(again.idata[group][name].values, v.values)
    assert str(again.review()) == str(post.review())
    pd.testing.assert_frame_equal(again.summary(), post.summary())
