"""Reliability suite (issue 6): a catalogue of malformed inputs, each with its specific error;
corrupted and truncated posterior files; interrupted writes; identical numbers for identical
seeds; and the simulation-based-calibration benchmark run end to end on a few sweeps.

``tests/test_data.py`` tests the basic error paths of ``read_sweep`` (missing columns, NaN, inf,
zero, the loss range ...); the catalogue here adds what files and DataFrames look like in the
wild: other delimiters, encodings, duplicate headers, ragged rows, booleans and dates, broken
JSON lines, mistyped parquet columns, mistaken column maps.

Every fit here uses the same tiny settings on the same 20-run design as the SBC test, so that
JAX compiles the sampler once for the whole file.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from decimal import Decimal
from pathlib import Path

import arviz_base as azb
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import base, distil

import bayesdistill as bd
from bayesdistill.errors import BayesDistillError, LawError, PosteriorFileError, SweepError
from bayesdistill.inference.posterior import Posterior

pytest.importorskip("pyarrow")

# the benchmarks package lives at the repository root, which `pytest` (unlike `python -m pytest`)
# does not put on sys.path
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

#: tiny NUTS settings shared by every fit of this file (one chain: tracing a vectorized
#: sampler for several chains costs more than the sampling here)
TINY = {"chains": 1, "draws": 40, "warmup": 40, "progress_bar": False, "retry": False}


# ------------------------------------------------------------- input builders
# each builder takes tmp_path and returns (data, columns=)


def text(name: str, content: str):
    return lambda tmp: ((tmp / name).write_text(content, encoding="utf-8") and tmp / name, None)


def raw(name: str, content: bytes):
    return lambda tmp: ((tmp / name).write_bytes(content) and tmp / name, None)


def frame(make, columns=None):
    return lambda tmp: (make(), columns)


def parquet(name: str, make):
    def build(tmp):
        make().to_parquet(tmp / name)
        return tmp / name, None
    return build


def truncated_parquet(tmp):
    path = tmp / "cut.parquet"
    base().to_parquet(path)
    path.write_bytes(path.read_bytes()[:300])
    return path, None


def folder(name: str):
    def build(tmp):
        (tmp / name).mkdir()
        return tmp / name, None
    return build


def with_cell(df, col, row, value):
    df = df.astype({col: object})
    df.at[row, col] = value
    return df


HEADER = "N,D,loss\n"

#: (id, builder, fragments the SweepError message must contain)
MALFORMED = [
    # --- delimited text files
    ("csv-semicolon-delimiter", text("semi.csv", "N;D;loss\n1e7;2e8;3.5\n"),
     ["header of semi.csv", "'N;D;loss'", "separated by semicolons", "commas"]),
    ("csv-holding-tabs", text("tabs.csv", "N\tD\tloss\n1e7\t2e8\t3.5\n"),
     ["header of tabs.csv", "separated by tabs", "as .tsv"]),
    ("tsv-holding-commas", text("commas.tsv", HEADER + "1e7,2e8,3.5\n"),
     ["header of commas.tsv", "separated by commas", "separated by tabs"]),
    ("csv-duplicate-header", text("dup.csv", "N,D,loss,loss\n1e7,2e8,3.5,3.4\n"),
     ["column 'loss' appears more than once in the header of dup.csv"]),
    ("csv-number-with-suffix", text("abc.csv", HEADER + "1e8,2e9,3.1\n1e9abc,2e10,2.8\n"),
     ["column 'N'", "row 1", "line 3 of abc.csv", "'1e9abc'", "not a number"]),
    ("csv-boolean-text", text("flag.csv", HEADER + "1e8,2e9,3.1\n1e9,2e10,True\n"),
     ["column 'loss'", "row 1", "line 3 of flag.csv", "'True'", "not a number"]),
    ("csv-all-booleans", text("bools.csv", HEADER + "1e8,2e9,True\n1e9,2e10,False\n"),
     ["column 'loss' holds booleans", "row 0 (line 2 of bools.csv)"]),
    ("csv-value-too-many", text("ragged.csv", HEADER + "1e8,2e9,3.1\n1e9,2e10,2.8,7\n"),
     ["line 3 of ragged.csv has 4 fields", "header has 3 columns", "too many"]),
    ("csv-every-row-one-value-too-many", text("shift.csv", HEADER + "1e8,2e9,3.1,0.2\n1e9,2e10,2.8,0.3\n"),
     ["line 2 of shift.csv has 4 fields"]),  # pandas would silently shift the columns
    ("csv-value-too-few", text("short.csv", HEADER + "1e8,2e9,3.1\n1e9,2e10\n"),
     ["column 'loss'", "row 1", "line 3 of short.csv", "missing"]),
    ("csv-line-numbers-count-blank-lines", text("gaps.csv", HEADER + "\n1e8,2e9,3.1\n\n\n1e9,-2e10,2.8\n"),
     ["column 'D'", "row 1", "line 6 of gaps.csv", "-2e+10 is not positive"]),
    ("csv-text-inf", text("inf.csv", HEADER + "1e8,inf,3.1\n"),
     ["column 'D'", "row 0 (line 2 of inf.csv)", "not finite"]),
    ("csv-loss-in-percent", text("pct.csv", HEADER + "1e8,2e9,31.0\n"),
     ["column 'loss'", "line 2 of pct.csv", "31", "plausible range", "nats"]),
    ("csv-all-loss-empty", text("noloss.csv", HEADER + "1e8,2e9,\n1e9,2e10,\n"),
     ["column 'loss'", "row 0 (line 2 of noloss.csv)", "missing"]),
    ("csv-header-in-wrong-case", text("case.csv", "n,d,Loss\n1e8,2e9,3.1\n"),
     ["missing column 'N'", "'n' differs only in case", "columns="]),
    ("csv-latin1-encoded", raw("latin.csv", "N,D,loss,note\n1e8,2e9,3.1,caf\xe9\n".encode("latin-1")),
     ["latin.csv is not UTF-8", "byte 0xe9", "save it as UTF-8"]),
    ("csv-utf16-encoded", raw("wide.csv", (HEADER + "1e8,2e9,3.1\n").encode("utf-16")),
     ["wide.csv is not UTF-8", "byte 0xff at offset 0"]),
    ("csv-whitespace-only", text("blank.csv", "  \n\t\n\n"), ["blank.csv is empty"]),
    ("csv-path-is-a-directory", folder("runs.csv"), ["runs.csv is a directory"]),
    ("directory", folder("results"), ["results is a directory", "sweep file inside it"]),
    ("unsupported-extension-npy", raw("sweep.npy", b"\x93NUMPY"), ["unsupported extension '.npy'"]),
    # --- JSON lines
    ("jsonl-broken-line", text("cut.jsonl", '{"N": 1e8, "D": 2e9, "loss": 3.1}\n{"N": 1e9, "D": 2e10, "lo\n'),
     ["line 2 of cut.jsonl is not valid JSON"]),
    ("jsonl-array-line", text("arr.jsonl", '[{"N": 1e8, "D": 2e9, "loss": 3.1}]\n'),
     ["line 1 of arr.jsonl is a JSON list, not an object"]),
    ("jsonl-boolean-value", text("b.jsonl", '{"N": 1e8, "D": 2e9, "loss": 3.1}\n{"N": true, "D": 2e10, "loss": 2.8}\n'),
     ["column 'N'", "row 1 (line 2 of b.jsonl)", "True is not a number", "bool"]),
    ("jsonl-nested-value", text("n.jsonl", '{"N": 1e8, "D": [2e9], "loss": 3.1}\n'),
     ["column 'D'", "row 0 (line 1 of n.jsonl)", "[2000000000.0] is not a number"]),
    ("jsonl-line-numbers-skip-blank-lines", text("g.jsonl", '{"N": 1e8, "D": 2e9, "loss": 3.1}\n\n'
                                                  '{"N": 1e9, "D": 2e10, "loss": 0}\n'),
     ["column 'loss'", "row 1 (line 3 of g.jsonl)", "not positive"]),
    ("jsonl-teacher-loss-text", text("t.jsonl", '{"N_S": 1e8, "D_S": 2e9, "loss": 3.1, "L_T": "2.4 nats"}\n'),
     ["column 'L_T'", "row 0 (line 1 of t.jsonl)", "'2.4 nats' is not a number"]),
    ("json-lines-in-json-file", text("lines.json", '{"N": 1e8, "D": 2e9, "loss": 3.1}\n'
                                     '{"N": 1e9, "D": 2e10, "loss": 2.8}\n'),
     ["could not read sweep file", "lines.json", "one object per line is a .jsonl file"]),
    ("jsonl-empty", text("none.jsonl", "\n\n"), ["none.jsonl is empty"]),
    # --- parquet
    ("parquet-boolean-column", parquet("flags.parquet", lambda: base().assign(loss=[True, False, True, True])),
     ["column 'loss' holds booleans", "row 0 of flags.parquet"]),
    ("parquet-datetime-column", parquet("when.parquet", lambda: base().assign(N=pd.Timestamp("2024-05-01"))),
     ["column 'N' holds dates", "row 0 of when.parquet"]),
    ("parquet-text-column", parquet("text.parquet", lambda: base().astype({"D": str}).assign(D=["2e8", "2e9", "lots", "2e10"])),
     ["column 'D'", "row 2 of text.parquet", "'lots' is not a number"]),
    ("parquet-truncated", truncated_parquet, ["could not read sweep file", "cut.parquet"]),
    # --- DataFrames
    ("df-boolean-column", frame(lambda: base().assign(loss=True)), ["column 'loss' holds booleans"]),
    ("df-datetime-column", frame(lambda: base().assign(D=pd.Timestamp("2024-05-01"))), ["column 'D' holds dates"]),
    ("df-timedelta-column", frame(lambda: base().assign(D=pd.to_timedelta([1, 2, 3, 4], unit="s"))),
     ["column 'D' holds time spans"]),
    ("df-complex-column", frame(lambda: base().assign(N=base()["N"] + 1j)),
     ["column 'N' holds complex numbers", "row 0"]),
    ("df-boolean-cell-among-numbers", frame(lambda: with_cell(base(), "N", 2, True)),
     ["column 'N'", "row 2", "True is not a number (a bool)"]),
    ("df-mixed-types", frame(lambda: pd.DataFrame({"N": [1e8, "4e8", 9e8], "D": [2e9, 8e9, 2e10], "loss": [3.1, 2.9, "2,7"]})),
     ["column 'loss'", "row 2", "'2,7' is not a number"]),
    ("df-list-cell", frame(lambda: with_cell(base(), "D", 1, [2e9, 3e9])),
     ["column 'D'", "row 1", "is not a number (a list)"]),
    ("df-negative-tokens", frame(lambda: base().assign(D=-base()["D"])), ["column 'D'", "row 0", "not positive"]),
    ("df-loss-in-bits-of-perplexity", frame(lambda: base().assign(loss=[21.0, 18.0, 16.5, 15.2])),
     ["column 'loss'", "row 0", "plausible range", "bits?"]),
    ("df-kind-unknown", frame(lambda: base().assign(kind=["supervised", "teacher", "supervised", "supervised"])),
     ["column 'kind'", "row 1", "'teacher' is not one of"]),
    ("df-kind-missing-value", frame(lambda: base().assign(kind=["supervised", np.nan, "supervised", "supervised"])),
     ["column 'kind'", "row 1", "value is missing", "give 'supervised' or 'distillation'"]),
    ("df-kind-numeric", frame(lambda: base().assign(kind=1)),
     ["column 'kind'", "row 0: 1 is not one of"]),
    ("df-teacher-size-without-tokens", frame(lambda: distil().drop(columns="L_T").assign(D_T=[2e10, np.nan, 2e10])),
     ["row 1 is a distillation run without a teacher", "add kind='supervised'"]),
    ("df-teacher-loss-infinite", frame(lambda: distil().assign(L_T=[2.4, np.inf, 2.4])),
     ["column 'L_T'", "row 1", "not finite"]),
    ("df-flops-negative", frame(lambda: base().assign(C=[1e18, -1e19, 1e20, 1e21])),
     ["column 'C'", "row 1", "not positive"]),
    ("df-flops-text", frame(lambda: base().assign(C=["1e18", "1e19", "lots", "1e21"])),
     ["column 'C'", "row 2", "'lots' is not a number"]),
    ("df-columns-not-a-dict", frame(base, [("N", "N")]), ["columns= must be a dict", "got a list"]),
    ("df-columns-maps-to-a-number", frame(lambda: base().rename(columns={"loss": "val"}), {"val": 3}),
     ["columns= maps 'val' to 3"]),
    ("df-columns-maps-to-wrong-case", frame(lambda: base().rename(columns={"loss": "val"}), {"val": "Loss"}),
     ["missing column 'loss'", "'Loss' differs only in case"]),
    ("df-columns-maps-from-unknown", frame(base, {"tokens": "D"}),
     ["columns= maps ['tokens']", "no such column", "found ['N', 'D', 'loss']"]),
    ("df-missing-column-lists-only-given-columns", frame(lambda: base().drop(columns="D")),
     ["missing column 'D'; found ['N', 'loss']."]),
    ("series-instead-of-dataframe", frame(lambda: base()["N"]), ["file path or a pandas DataFrame", "got Series"]),
]


@pytest.mark.parametrize("build, fragments", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_sweep(tmp_path, build, fragments):
    data, columns = build(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stray warning from pandas, numpy or pyarrow either
        with pytest.raises(SweepError) as info:
            bd.read_sweep(data, columns=columns)
    msg = str(info.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    assert "np.float64" not in msg and "np.int64" not in msg  # values are shown as the user wrote them


def test_catalogue_is_large_and_ids_unique():
    ids = [c[0] for c in MALFORMED]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)


# ------------------------------------------- unusual but valid files are read right

ACCEPTED = [
    ("utf8-byte-order-mark", "\ufeffN,D,loss\n1e8,2e9,3.1\n1e9,2e10,2.8\n"),
    ("trailing-delimiter-on-every-line", "N,D,loss,\n1e8,2e9,3.1,\n1e9,2e10,2.8,\n"),
    ("trailing-delimiter-on-rows-only", "N,D,loss\n1e8,2e9,3.1,\n1e9,2e10,2.8,\n"),
    ("blank-lines-and-crlf", "N,D,loss\r\n\r\n1e8,2e9,3.1\r\n\r\n1e9,2e10,2.8\r\n\r\n"),
    ("quoted-values", 'N,D,loss\n"1e8","2e9","3.1"\n"1e9","2e10","2.8"\n'),
]


@pytest.mark.parametrize("content", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_unusual_but_valid_csv(tmp_path, content):
    path = tmp_path / "ok.csv"
    path.write_bytes(content.encode("utf-8"))
    df = bd.read_sweep(path).df
    np.testing.assert_array_equal(df["N"], [1e8, 1e9])
    np.testing.assert_array_equal(df["D"], [2e9, 2e10])
    np.testing.assert_array_equal(df["loss"], [3.1, 2.8])


@pytest.mark.parametrize("N", [
    pd.array([100_000_000, 1_000_000_000], dtype="Int64"),
    pd.Categorical(["1e8", "1e9"]),
    pd.Series([Decimal("1e8"), Decimal("1e9")], dtype=object),
    pd.Series(["1e8", " 1e9 "], dtype=object),
    pd.Series([np.float32(1e8), np.int64(1_000_000_000)], dtype=object),
], ids=["nullable-int", "categorical-text", "decimal", "numeric-text", "numpy-scalars"])
def test_unusual_but_valid_dataframe_columns(N):
    df = pd.DataFrame({"N": N, "D": [2e9, 2e10], "loss": [3.1, 2.8]})
    np.testing.assert_array_equal(bd.read_sweep(df).df["N"], [1e8, 1e9])


def test_multiline_quoted_note_keeps_line_numbers(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('N,D,loss,note\n1e8,2e9,3.1,"two\nlines"\n1e9,2e10,40\n')
    with pytest.raises(SweepError, match=re.escape("row 1 (line 4 of notes.csv)")):
        bd.read_sweep(path)


def test_missing_run_ids_and_groups_are_not_merged():
    # a missing run_id or group used to become the string 'nan', shared by every such row
    df = base().assign(run_id=["a", None, np.nan, "d"], group=["g", "g", None, np.nan])
    sweep = bd.read_sweep(df).df
    assert list(sweep["run_id"]) == ["a", "run1", "run2", "d"]
    assert list(sweep["group"]) == ["g", "g", "run2", "d"]


# ------------------------------------------------------------ fit arguments


@pytest.fixture(scope="module")
def design_sweep() -> pd.DataFrame:
    """The 20-run design of the SBC benchmark with Chinchilla-like losses (deterministic)."""
    from benchmarks.bench_sbc import design

    N, D = design()
    loss = 1.8 + 480 * N ** -0.35 + 2000 * D ** -0.37
    return pd.DataFrame({"N": N, "D": D, "loss": loss * np.exp(0.01 * np.random.default_rng(0).standard_normal(len(N)))})


FIT_ARGS = [
    ("law-not-a-name", {"law": 123}, LawError, "unknown law 123"),
    ("law-none", {"law": None}, LawError, "unknown law None"),
    ("law-distillation-on-supervised-sweep", {"law": "distillation"}, SweepError, "needs distillation runs"),
    ("noise-none", {"noise": None}, LawError, "unknown noise None"),
    ("noise-cauchy", {"noise": "cauchy"}, LawError, "choose from ['student_t', 'normal']"),
    ("prior-for-unknown-site", {"priors": {"E0": ("lognormal", 0.0, 1.0)}}, LawError, "'E0' is not a parameter"),
    ("prior-normal-on-log-scale-coefficient", {"priors": {"A": ("normal", 0.0, 1.0)}}, LawError,
     "'A' is sampled on the log scale"),
    ("draws-as-text", {"draws": "500"}, BayesDistillError, "draws must be an integer >= 1, got '500'"),
    ("warmup-float", {"warmup": 10.5}, BayesDistillError, "warmup must be an integer >= 0"),
    ("target-accept-nan", {"target_accept": float("nan")}, BayesDistillError, "target_accept must be in (0, 1)"),
    ("target-accept-one", {"target_accept": 1.0}, BayesDistillError, "target_accept must be in (0, 1)"),
]


@pytest.mark.parametrize("kwargs, error, fragment", [c[1:] for c in FIT_ARGS], ids=[c[0] for c in FIT_ARGS])
def test_bad_fit_arguments(design_sweep, kwargs, error, fragment):
    with pytest.raises(error) as info:
        bd.fit(design_sweep, **{**TINY, **kwargs})
    assert fragment in str(info.value)


def test_fit_of_a_malformed_file_raises_the_sweep_error(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("N;D;loss\n1e7;2e8;3.5\n")
    with pytest.raises(SweepError, match="separated by semicolons"):
        bd.fit(path, **TINY)


# Arguments that once escaped as raw errors from inside numpy/numpyro/jax (the third field says
# which); each must now give one clear BayesDistillError.
FIT_ARG_BUGS = [
    ("priors-as-list", {"priors": [("E", ("lognormal", 0.4, 0.6))]}, "AttributeError from resolve_priors"),
    ("warmup-numpy-float", {"warmup": np.float64(40)}, "ValueError from numpyro: num_warmup must be a nonnegative integer"),
    ("seed-too-large", {"seed": 2**70}, "OverflowError from jax.random.PRNGKey"),
    ("target-accept-text", {"target_accept": "0.9"}, "TypeError: '<' between int and str"),
    ("chain-method-unknown", {"chain_method": "threads"}, "ValueError from numpyro"),
]


def test_numpy_integer_settings_are_accepted(design_sweep):
    post = bd.fit(design_sweep, **{**TINY, "review": False, "warmup": np.int64(20), "seed": np.int32(3)})
    assert post.config["warmup"] == 20 and isinstance(post.config["seed"], int)


@pytest.mark.parametrize("kwargs", [c[1] for c in FIT_ARG_BUGS], ids=[c[0] for c in FIT_ARG_BUGS])
def test_fit_argument_errors(design_sweep, kwargs):
    try:
        bd.fit(design_sweep, **{**TINY, "review": False, **kwargs})
    except BayesDistillError:
        return  # the wanted behaviour: one clear error class
    except Exception as exc:  # noqa: BLE001 - the bug: a raw error from inside numpy/numpyro/jax
        raise AssertionError(f"{type(exc).__name__}: {exc}") from None
    raise AssertionError("accepted silently")


# ------------------------------------------------- predict / predict_student


def fake_posterior(law_name: str, n: int = 8) -> Posterior:
    """A posterior whose draws sit near known values, built without sampling (argument checks only)."""
    from bayesdistill.laws.distillation import TABLE6

    law = bd.get_law(law_name)
    rng = np.random.default_rng(0)
    values = {**TABLE6, "sigma": 0.01, "sigma_distill": 0.01, "nu": 10.0}
    names = [*law.params, "sigma", "nu"] + (["sigma_distill"] if hasattr(law, "student_log_loss") else [])
    draws = {k: values[k] * np.exp(0.01 * rng.standard_normal((1, n))) for k in names}
    idata = azb.from_dict({"posterior": draws})
    return Posterior(idata, law, dict(law.priors), "student_t", {}, {})


@pytest.fixture(scope="module")
def sup_post():
    return fake_posterior("busbridge")


@pytest.fixture(scope="module")
def joint_post():
    return fake_posterior("distillation")


PREDICT = [
    ("N-zero", (0.0, 2e10), {}, "N must be positive and finite"),
    ("N-negative-in-list", ([1e9, -1e9], 2e10), {}, "N must be positive and finite"),
    ("D-nan", (1e9, np.nan), {}, "D must be positive and finite"),
    ("D-inf", (1e9, np.inf), {}, "D must be positive and finite"),
    ("N-none", (None, 2e10), {}, "N must be positive and finite"),
]


@pytest.mark.parametrize("args, kwargs, fragment", [c[1:] for c in PREDICT], ids=[c[0] for c in PREDICT])
def test_bad_predict_arguments(sup_post, args, kwargs, fragment):
    with pytest.raises(BayesDistillError, match=re.escape(fragment)):
        sup_post.predict(*args, **kwargs)


PREDICT_STUDENT = [
    ("no-teacher", {}, "give the teacher as L_T= (its loss) or as N_T= and D_T="),
    ("teacher-size-without-tokens", {"N_T": 1e9}, "give the teacher as L_T="),
    ("teacher-loss-zero", {"L_T": 0.0}, "L_T must be positive and finite"),
    ("teacher-tokens-negative", {"N_T": 1e9, "D_T": -2e10}, "D_T must be positive and finite"),
    ("student-size-nan", {"L_T": 2.3, "N_S": np.nan}, "N_S must be positive and finite"),
    ("shapes-do-not-broadcast", {"L_T": [2.3, 2.4, 2.5], "N_S": [1e8, 2e8]}, "do not broadcast"),
]


@pytest.mark.parametrize("kwargs, fragment", [c[1:] for c in PREDICT_STUDENT], ids=[c[0] for c in PREDICT_STUDENT])
def test_bad_predict_student_arguments(joint_post, kwargs, fragment):
    kwargs = {"N_S": 1e8, "D_S": 2e9, **kwargs}
    with pytest.raises(BayesDistillError, match=re.escape(fragment)):
        joint_post.predict_student(**kwargs)


def test_predict_student_on_a_supervised_posterior(sup_post):
    with pytest.raises(BayesDistillError, match="needs? a distillation fit"):
        sup_post.predict_student(1e8, 2e9, L_T=2.3)


PREDICT_BUGS = [
    ("N-text", ("1e9 params", 2e10), {}, "ValueError from numpy"),
    ("shapes-do-not-broadcast", ([1e8, 2e8, 3e8], [1e9, 2e9]), {}, "ValueError from numpy"),
    ("N-two-dimensional", (np.full((2, 2), 1e8), 2e9), {}, "TypeError/ValueError from JAX broadcasting"),
    ("prob-above-one", (1e8, 2e9), {"prob": 1.5}, "ValueError from numpy.quantile"),
    ("seed-float", (1e8, 2e9), {"seed": 1.5}, "TypeError from jax.random.PRNGKey"),
    ("N-boolean", (True, 2e9), {}, "True is read as N = 1 parameter, silently"),
]


@pytest.mark.parametrize("args, kwargs", [c[1:3] for c in PREDICT_BUGS], ids=[c[0] for c in PREDICT_BUGS])
def test_predict_argument_errors(sup_post, args, kwargs):
    try:
        sup_post.predict(*args, **kwargs)
    except BayesDistillError:
        return
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{type(exc).__name__}: {exc}") from None
    raise AssertionError("accepted silently")


# ------------------------------------------------------------- tiny fits


@pytest.fixture(scope="module")
def seeded_fits(design_sweep):
    """Two fits with seed 3 and one with seed 4 (review failures tolerated)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        return [bd.fit(design_sweep, seed=s, **TINY) for s in (3, 3, 4)]


def test_same_seed_bit_identical_draws(seeded_fits):
    a, b, _ = seeded_fits
    for group in ("posterior", "sample_stats", "log_likelihood"):
        ga, gb = getattr(a.idata, group), getattr(b.idata, group)
        assert set(ga.data_vars) == set(gb.data_vars)
        for name in ga.data_vars:
            assert ga[name].values.tobytes() == gb[name].values.tobytes(), f"{group}.{name}"
    pd.testing.assert_frame_equal(a.predict([1e8, 1e10], [2e9, 2e11], seed=7),
                                  b.predict([1e8, 1e10], [2e9, 2e11], seed=7), check_exact=True)


def test_different_seed_different_draws(seeded_fits):
    a, _, c = seeded_fits
    for name in ("E", "A", "B", "alpha", "beta", "sigma", "nu"):
        assert not np.array_equal(a.idata.posterior[name].values, c.idata.posterior[name].values), name


def test_predict_noise_depends_on_its_seed_only(seeded_fits):
    a = seeded_fits[0]
    p1, p2 = a.predict(1e10, 2e11, seed=1), a.predict(1e10, 2e11, seed=2)
    pd.testing.assert_frame_equal(p1[["mean", "median", "q05", "q95"]], p2[["mean", "median", "q05", "q95"]])
    assert not np.array_equal(p1["pred_q95"], p2["pred_q95"])


def test_paper_sweep_and_simulate_sweep_are_seeded():
    a, b, c = bd.paper_sweep(seed=5), bd.paper_sweep(seed=5), bd.paper_sweep(seed=6)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not np.array_equal(a["loss"], c["loss"])
    design = base(6).drop(columns="loss").assign(N_T=[np.nan] * 3 + [1e9] * 3, D_T=[np.nan] * 3 + [2e10] * 3)
    s1, s2 = bd.simulate_sweep(design, seed=9), bd.simulate_sweep(design, seed=9)
    pd.testing.assert_frame_equal(s1, s2, check_exact=True)
    assert not np.array_equal(s1["loss"], bd.simulate_sweep(design, seed=10)["loss"])


# ----------------------------------------------- corrupted posterior files


@pytest.fixture(scope="module")
def saved(seeded_fits, tmp_path_factory):
    """(path, bytes) of a saved posterior."""
    path = seeded_fits[0].save(tmp_path_factory.mktemp("saved") / "fit.nc")
    return path, path.read_bytes()


def _load_error(path) -> str:
    with pytest.raises(PosteriorFileError) as info:
        bd.load(path)
    return str(info.value)


@pytest.mark.parametrize("keep", [0, 8, 100, 1000, 0.25, 0.5, 0.75, 0.99, -1],
                         ids=lambda k: f"keep-{k}")
def test_truncated_posterior_file(saved, tmp_path, keep):
    data = saved[1]
    n = keep if isinstance(keep, int) and keep >= 0 else (len(data) - 1 if keep == -1 else int(len(data) * keep))
    path = tmp_path / "cut.nc"
    path.write_bytes(data[:n])
    assert "cut.nc" in _load_error(path)


def test_flipped_bytes_never_load_silently_different_numbers(saved, seeded_fits, tmp_path):
    """Every single-byte flip either fails to load with PosteriorFileError or loads identical data."""
    data = saved[1]
    ref = seeded_fits[0].idata
    path = tmp_path / "flip.nc"
    outcomes = {"error": 0, "same": 0}
    for pos in np.linspace(0, len(data) - 1, 24).astype(int):
        b = bytearray(data)
        b[pos] ^= 0x5A
        path.write_bytes(bytes(b))
        try:
            post = bd.load(path)
        except PosteriorFileError:
            outcomes["error"] += 1
            continue
        for group in ref.children:
            for name in getattr(ref, group).data_vars:
                np.testing.assert_array_equal(getattr(post.idata, group)[name].values,
                                              getattr(ref, group)[name].values, err_msg=f"flip at {pos}")
        outcomes["same"] += 1
    assert outcomes["error"] > 0


def test_flipped_digit_in_the_specification(saved, tmp_path):
    # the spec is JSON text in the file: a changed digit still parses, so only the checksum catches it
    data = bytearray(saved[1])
    at = data.index(b'"centre": {"N": ') + len(b'"centre": {"N": ')
    assert chr(data[at]).isdigit()
    data[at] = ord("7") if data[at] != ord("7") else ord("8")
    path = tmp_path / "spec.nc"
    path.write_bytes(bytes(data))
    assert "do not match the checksum" in _load_error(path)


def test_posterior_values_edited_after_saving(saved, tmp_path):
    src = tmp_path / "src.nc"
    src.write_bytes(saved[1])
    idata = xr.load_datatree(str(src), engine="h5netcdf")
    idata.posterior["E"] = idata.posterior["E"] + 0.5
    out = tmp_path / "edited.nc"
    idata.to_netcdf(str(out), engine="h5netcdf")
    assert "corrupted" in _load_error(out)


@pytest.mark.parametrize("content, fragment", [
    (b"", "not a readable posterior file"),
    (b"CDF\x01" + bytes(64), "not a readable posterior file"),  # classic netCDF-3 header, nothing else
    (b"\x89HDF\r\n\x1a\n" + bytes(100), "not a readable posterior file"),  # an HDF5 signature, nothing else
    (json.dumps({"posterior": [1, 2]}).encode(), "not a readable posterior file"),
], ids=["empty", "netcdf3-header", "hdf5-signature", "json"])
def test_non_posterior_files(tmp_path, content, fragment):
    path = tmp_path / "x.nc"
    path.write_bytes(content)
    assert fragment in _load_error(path)


def test_netcdf_without_our_attribute(saved, tmp_path):
    src = tmp_path / "src.nc"
    src.write_bytes(saved[1])
    idata = xr.load_datatree(str(src), engine="h5netcdf")
    del idata.posterior.attrs["bayesdistill_spec"]
    out = tmp_path / "plain.nc"
    idata.to_netcdf(str(out), engine="h5netcdf")
    assert "no bayesdistill specification" in _load_error(out)


def test_loaded_posterior_holds_no_open_file(saved, tmp_path):
    path = tmp_path / "fit.nc"
    path.write_bytes(saved[1])
    post = bd.load(path)
    path.unlink()  # values were read eagerly, so nothing is read from the file afterwards
    assert np.isfinite(post.draws()["E"]).all() and len(post.data) == 20


# ----------------------------------------------------- interrupted writes


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.99])
def test_interrupted_save_leaves_the_old_file(seeded_fits, saved, tmp_path, monkeypatch, fraction):
    path = tmp_path / "fit.nc"
    path.write_bytes(saved[1])
    before = path.read_bytes()

    def crash(self, filename, *args, **kwargs):
        with open(filename, "wb") as fh:
            fh.write(before[: int(len(before) * fraction)])
        raise KeyboardInterrupt  # not even an Exception: the process is being stopped

    monkeypatch.setattr(xr.DataTree, "to_netcdf", crash)
    with pytest.raises(KeyboardInterrupt):
        seeded_fits[2].save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["fit.nc"]
    np.testing.assert_array_equal(bd.load(path).draws()["E"], seeded_fits[0].draws()["E"])


def test_interrupted_report_leaves_the_old_files(seeded_fits, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from bayesdistill import report

    old = {"report.md": b"# the previous report\n", "fit.png": b"old png bytes"}
    for name, content in old.items():
        (tmp_path / name).write_bytes(content)

    def crash(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Figure, "savefig", crash)
    with pytest.raises(OSError, match="No space left"):
        report.write_report(seeded_fits[0], tmp_path, budget=1e20)
    monkeypatch.undo()
    for name, content in old.items():
        assert (tmp_path / name).read_bytes() == content
    assert _listing(tmp_path) == sorted(old)


def test_interrupted_text_write_leaves_the_old_file(tmp_path, monkeypatch):
    from bayesdistill._files import write_atomically

    path = tmp_path / "report.md"
    path.write_text("old\n")

    def half_then_crash(tmp):
        Path(tmp).write_text("new, half writ")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_crash)
    assert path.read_text() == "old\n" and _listing(tmp_path) == ["report.md"]


# --------------------------------------------------- simulation-based calibration


def test_sbc_machinery_end_to_end(tmp_path, monkeypatch):
    from benchmarks import bench_sbc

    args = {"n_sims": 2, "seed": 1, "settings": {"chains": 1, "draws": 40, "warmup": 40}, "thin": 4,
            "progress": False, "baseline_fits": 0}
    res = bench_sbc.run(figure=tmp_path / "ranks.png", **args)
    again = bench_sbc.run(figure=None, **args)  # seeded: the same numbers
    assert again["params"] == res["params"] and again["sims"] == res["sims"]
    assert res["n_sims"] == 2 and res["n_ranks"] == 40 // 4 + 1
    assert res["prior_draws"] == 2 + sum(res["rejected"].values())
    assert {"E", "A", "B", "alpha", "beta", "sigma", "nu"} <= set(res["params"])
    for r in res["params"].values():
        assert len(r["ranks"]) == 2 and all(0 <= k < res["n_ranks"] for k in r["ranks"])
        assert sum(r["counts"]) == 2 and np.isclose(sum(r["expected"]), 2)
        assert 0 <= r["chi2_p"] <= 1
        for lv in ("cov50", "cov90"):
            assert r[lv]["coverage"] in (0.0, 0.5, 1.0) and r[lv]["verdict"] in ("ok", "borderline", "off")
    assert (tmp_path / "ranks.png").read_bytes()[:4] == b"\x89PNG"
    md = bench_sbc.markdown(res)
    assert "| nu |" in md and "redrawn" in md


def test_sbc_prior_sweeps_are_seeded_and_plausible():
    from bayesdistill.data.sweep import LOSS_RANGE
    from benchmarks import bench_sbc

    a, b = bench_sbc.prior_sweeps(5, seed=2), bench_sbc.prior_sweeps(5, seed=2)
    np.testing.assert_array_equal(a["loss"], b["loss"])
    assert a["loss"].shape == (5, 20)
    assert (a["loss"] >= LOSS_RANGE[0]).all() and (a["loss"] <= LOSS_RANGE[1]).all()
    assert set(a["theta"]) == set(a["params"]) >= {"E", "A", "B", "alpha", "beta", "sigma", "nu"}


def test_sbc_statistics():
    from benchmarks.bench_sbc import coverage_verdict, uniformity

    obs, exp, p = uniformity(list(range(101)) * 2, 101, bins=10)  # perfectly uniform ranks
    np.testing.assert_allclose(obs, exp)
    assert p == pytest.approx(1.0)
    _, _, p = uniformity([0] * 50 + [100] * 50, 101, bins=10)  # U-shaped: overconfident
    assert p < 1e-10
    assert coverage_verdict(90, 100, 0.9)[3] == "ok"
    assert coverage_verdict(80, 100, 0.9)[3] == "off"  # 3.3 SE low
    assert coverage_verdict(83, 100, 0.9)[3] == "borderline"
