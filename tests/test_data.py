"""read_sweep: every error path with its message, the file formats, and the
input checks of ``fit`` that run before any sampling."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import base, distil, synthetic_sweep

import bayesdistill as bd
from bayesdistill.data.sweep import LOSS_RANGE
from bayesdistill.errors import BayesDistillError, LawError, SweepError, SweepWarning

STANDARD = ["kind", "N", "D", "loss", "N_T", "D_T", "L_T", "run_id", "group"]


def write_csv(df: pd.DataFrame, path) -> str:
    df.to_csv(path, index=False)
    return str(path)


def raises_sweep(data, *fragments, columns=None):
    """read_sweep(data) raises SweepError whose message contains every fragment."""
    with pytest.raises(SweepError) as info:
        bd.read_sweep(data, columns=columns)
    msg = str(info.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


# ---------------------------------------------------------------- error classes


def test_error_hierarchy():
    assert issubclass(SweepError, BayesDistillError) and issubclass(SweepError, ValueError)
    assert issubclass(LawError, BayesDistillError) and issubclass(LawError, ValueError)
    assert issubclass(bd.PosteriorFileError, BayesDistillError) and issubclass(bd.PosteriorFileError, OSError)
    assert issubclass(bd.FitWarning, UserWarning) and issubclass(SweepWarning, UserWarning)


# ------------------------------------------------------------ columns and shape


def test_missing_column_names_it_and_suggests_mapping():
    msg = raises_sweep(base().drop(columns="loss"), "missing column 'loss'", "columns=")
    assert "'N'" in msg and "'D'" in msg  # lists the columns found


@pytest.mark.parametrize("col", ["N", "D", "loss"])
def test_each_required_column_is_checked(col):
    raises_sweep(base().drop(columns=col), f"missing column {col!r}")


def test_columns_mapping_with_unknown_key():
    df = base().rename(columns={"N": "params"})
    msg = raises_sweep(df, "columns=", "'Model Size'", columns={"Model Size": "N"})
    assert "params" in msg  # the columns actually found


def test_duplicated_columns_after_mapping():
    df = base().assign(size=1e8)
    raises_sweep(df, "column 'N' appears more than once", columns={"size": "N"})


def test_empty_dataframe():
    raises_sweep(base().iloc[:0], "has no rows", "DataFrame")


def test_dataframe_without_columns():
    raises_sweep(pd.DataFrame(), "has no rows")


def test_wrong_input_type():
    raises_sweep([1, 2, 3], "file path or a pandas DataFrame", "list")


# -------------------------------------------------------------------- files


def test_empty_csv_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    raises_sweep(path, "is empty", "empty.csv")


def test_header_only_csv_has_no_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("N,D,loss\n")
    raises_sweep(path, "has no rows", "header.csv")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "sweep.xlsx"
    path.write_bytes(b"not really a spreadsheet")
    raises_sweep(path, "unsupported extension '.xlsx'", ".csv", ".parquet", ".jsonl")


def test_file_not_found(tmp_path):
    raises_sweep(tmp_path / "nope.csv", "not found", "nope.csv")


def test_unparseable_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"garbage" * 10)
    raises_sweep(path, "could not read sweep file", "broken.parquet")


# ----------------------------------------------------------------- values


def test_non_numeric_value_in_dataframe_reports_row():
    df = base().astype({"D": object})
    df.loc[2, "D"] = "2e9 tokens"
    msg = raises_sweep(df, "column 'D'", "row 2", "'2e9 tokens'", "not a number")
    assert "line" not in msg  # a DataFrame has no file lines


def test_non_numeric_value_in_csv_reports_row_and_line(tmp_path):
    df = base(5).astype({"N": object})
    df.loc[3, "N"] = "125M"
    path = write_csv(df, tmp_path / "sweep.csv")
    # row 3 is line 5 of the file: the header is line 1
    raises_sweep(path, "column 'N'", "row 3", "line 5 of sweep.csv", "'125M'", "not a number")


def test_missing_value_in_csv_reports_line(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("N,D,loss\n1e7,2e8,3.5\n1e8,,3.0\n")
    raises_sweep(path, "column 'D'", "row 1", "line 3 of gaps.csv", "missing (NaN)")


def test_run_id_is_named_in_messages():
    df = base().assign(run_id=["a", "b", "c", "d"])
    df.loc[1, "loss"] = -1.0
    raises_sweep(df, "column 'loss'", "row 1", "run_id 'b'", "not positive")


@pytest.mark.parametrize("col", ["N", "D", "loss"])
def test_nan(col):
    df = base()
    df.loc[1, col] = np.nan
    raises_sweep(df, f"column {col!r}", "row 1", "missing (NaN)")


@pytest.mark.parametrize("col", ["N", "D", "loss"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf(col, value):
    df = base()
    df.loc[2, col] = value
    raises_sweep(df, f"column {col!r}", "row 2", "not finite")


@pytest.mark.parametrize("col", ["N", "D", "loss"])
@pytest.mark.parametrize("value", [0.0, -5.0])
def test_zero_or_negative(col, value):
    df = base()
    df.loc[3, col] = value
    raises_sweep(df, f"column {col!r}", "row 3", f"value {value:g} is not positive")


@pytest.mark.parametrize("value", [15.5, 42.0, 0.04, 0.001])
def test_loss_outside_nats_range(value):
    df = base()
    df.loc[0, "loss"] = value
    raises_sweep(df, "column 'loss'", "row 0", f"{value:g}", "plausible range", "nats")


@pytest.mark.parametrize("value", LOSS_RANGE)
def test_loss_range_edges_are_accepted(value):
    df = base()
    df.loc[0, "loss"] = value
    assert bd.read_sweep(df).df["loss"].iloc[0] == value


def test_perplexity_in_csv_is_rejected_with_line(tmp_path):
    df = base()
    df.loc[1, "loss"] = 25.0  # a perplexity, not a loss
    raises_sweep(write_csv(df, tmp_path / "ppl.csv"), "row 1", "line 3 of ppl.csv", "perplexity")


def test_model_size_in_millions_warns():
    df = base().assign(N=[10.0, 30.0, 100.0, 300.0])
    with pytest.warns(SweepWarning, match="millions") as rec:
        sweep = bd.read_sweep(df)
    msg = str(rec[0].message)
    assert "column 'N'" in msg and "4 values below 1e4" in msg and "row 0" in msg
    assert len(sweep) == 4  # a warning, not an error


def test_teacher_size_in_billions_warns():
    df = distil().assign(N_T=[7.0, 7.0, 7.0])
    with pytest.warns(SweepWarning, match="column 'N_T'.*millions or billions"):
        bd.read_sweep(df)


def test_plausible_sweep_emits_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bd.read_sweep(synthetic_sweep())


# ------------------------------------------------------------ distillation


def test_invalid_kind():
    df = base().assign(kind=["supervised", "supervised", "distilled", "supervised"])
    raises_sweep(df, "column 'kind'", "row 2", "'distilled'", "supervised", "distillation")


def test_missing_kind_value_is_invalid():
    df = base().assign(kind=["supervised", None, "supervised", "supervised"])
    raises_sweep(df, "column 'kind'", "row 1")


def test_distillation_rows_without_teacher_columns():
    df = base().assign(kind="distillation")
    raises_sweep(df, "distillation runs need the teacher", "'N_T'", "'D_T'", "'L_T'")


def test_distillation_with_only_teacher_size_column():
    # N_T alone implies distillation but does not identify the teacher
    df = distil().drop(columns=["D_T", "L_T"])
    raises_sweep(df, "distillation runs need the teacher")


def test_distillation_row_without_teacher_values():
    df = distil()
    df.loc[1, ["L_T", "D_T"]] = np.nan
    raises_sweep(df, "row 1", "distillation run without a teacher", "'L_T'", "'N_T'")


def test_supervised_row_with_teacher_columns():
    df = pd.concat([base(3).assign(kind="supervised"),
                    distil(2).rename(columns={"N_S": "N", "D_S": "D"}).assign(kind="distillation")],
                   ignore_index=True)
    df.loc[1, "L_T"] = 2.3
    raises_sweep(df, "row 1", "supervised run but has teacher columns", "kind='distillation'")


@pytest.mark.parametrize("student, plain", [("N_S", "N"), ("D_S", "D")])
def test_both_plain_and_student_column_in_one_row(student, plain):
    df = distil()
    df[plain] = np.nan
    df.loc[2, plain] = df.loc[2, student]
    raises_sweep(df, "row 2", f"both {plain!r} and {student!r}")


@pytest.mark.parametrize("value", [0.0, -2.0])
def test_teacher_loss_not_positive(value):
    df = distil()
    df.loc[1, "L_T"] = value
    raises_sweep(df, "column 'L_T'", "row 1", "not positive")


def test_teacher_loss_outside_nats_range():
    df = distil()
    df.loc[2, "L_T"] = 30.0
    raises_sweep(df, "column 'L_T'", "row 2", "plausible range")


@pytest.mark.parametrize("col", ["N_T", "D_T"])
def test_teacher_size_not_positive(col):
    df = distil()
    df.loc[0, col] = -1.0
    raises_sweep(df, f"column {col!r}", "row 0", "not positive")


def test_non_numeric_teacher_loss():
    df = distil().astype({"L_T": object})
    df.loc[0, "L_T"] = "n/a"
    raises_sweep(df, "column 'L_T'", "row 0", "not a number")


# ------------------------------------------------------------------ success


def test_dataframe_sweep_has_standard_columns():
    sweep = bd.read_sweep(base().assign(note=["x"] * 4))
    assert list(sweep.df.columns) == [*STANDARD, "note"]  # extras kept at the end
    assert (sweep.df["kind"] == "supervised").all()
    assert sweep.df[["N_T", "D_T", "L_T"]].isna().all().all()
    assert list(sweep.df["run_id"]) == ["run0", "run1", "run2", "run3"]
    assert list(sweep.df["group"]) == list(sweep.df["run_id"])
    assert len(sweep) == 4 and len(sweep.supervised) == 4 and len(sweep.distillation) == 0
    assert repr(sweep) == "Sweep(4 supervised runs from DataFrame)"


def test_input_dataframe_is_not_modified():
    df = base().rename(columns={"N": "params"})
    before = df.copy()
    bd.read_sweep(df, columns={"params": "N"})
    pd.testing.assert_frame_equal(df, before)


def test_sweep_passes_through():
    sweep = bd.read_sweep(base())
    assert bd.read_sweep(sweep) is sweep


def _write(df: pd.DataFrame, path):
    suffix = path.suffix
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif suffix == ".jsonl":
        # json.dumps writes the shortest repr that round-trips every float
        path.write_text("".join(json.dumps(rec) + "\n" for rec in df.to_dict(orient="records")))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_file_formats_load_the_same_sweep(tmp_path, suffix):
    df = synthetic_sweep(seed=4).assign(run_id=lambda d: [f"r{i}" for i in range(len(d))])
    want = bd.read_sweep(df).df
    path = _write(df, tmp_path / f"sweep{suffix}")
    sweep = bd.read_sweep(path)
    assert sweep.source == str(path)
    assert list(sweep.df.columns) == list(want.columns)
    for col in ("N", "D", "loss"):
        np.testing.assert_allclose(sweep.df[col].to_numpy(), want[col].to_numpy(), rtol=1e-13)
    assert list(sweep.df["run_id"]) == list(want["run_id"])
    assert (sweep.df["kind"] == "supervised").all()


def test_path_as_string_and_column_whitespace(tmp_path):
    path = tmp_path / "spaced.csv"
    path.write_text(" N , D ,loss \n1e8,2e9,3.1\n4e8,8e9,2.8\n")
    sweep = bd.read_sweep(str(path))
    assert list(sweep.df["N"]) == [1e8, 4e8]


def test_columns_mapping():
    df = base().rename(columns={"N": "Model Size", "D": "Tokens", "loss": "val_loss"})
    sweep = bd.read_sweep(df, columns={"Model Size": "N", "Tokens": "D", "val_loss": "loss"})
    pd.testing.assert_frame_equal(sweep.df, bd.read_sweep(base()).df)


def test_student_columns_renamed_for_distillation():
    sweep = bd.read_sweep(distil())
    df = sweep.df
    assert "N_S" not in df.columns and "D_S" not in df.columns
    assert (df["kind"] == "distillation").all()
    np.testing.assert_array_equal(df["N"], distil()["N_S"])
    np.testing.assert_array_equal(df["D"], distil()["D_S"])
    np.testing.assert_array_equal(df["L_T"], [2.4] * 3)
    assert len(sweep.distillation) == 3 and len(sweep.supervised) == 0


def test_distillation_with_teacher_loss_only():
    sweep = bd.read_sweep(distil().drop(columns=["N_T", "D_T"]))
    assert (sweep.df["kind"] == "distillation").all()
    assert sweep.df[["N_T", "D_T"]].isna().all().all()


def test_mixed_kind_table(tmp_path):
    sup = base(4).assign(kind="Supervised ")  # case and whitespace are normalised
    dis = distil(3).assign(kind="distillation")
    df = pd.concat([sup, dis], ignore_index=True)  # N/D empty for distillation rows, N_S/D_S for supervised
    for data in (df, write_csv(df, tmp_path / "mixed.csv")):
        sweep = bd.read_sweep(data)
        assert list(sweep.df["kind"]) == ["supervised"] * 4 + ["distillation"] * 3
        np.testing.assert_allclose(sweep.df["N"], [*base(4)["N"], *distil(3)["N_S"]])
        np.testing.assert_allclose(sweep.df["D"], [*base(4)["D"], *distil(3)["D_S"]])
        assert sweep.supervised[["N_T", "D_T", "L_T"]].isna().all().all()
        assert len(sweep.supervised) == 4 and len(sweep.distillation) == 3
        assert repr(sweep).startswith("Sweep(4 supervised, 3 distillation runs")


def test_subset():
    sweep = bd.read_sweep(base())
    sub = sweep.subset(sweep.df["N"] > 2e7)
    assert len(sub) == 3 and list(sub.df.index) == [0, 1, 2]
    assert list(sub.df["run_id"]) == ["run1", "run2", "run3"]


# ------------------------------------------- fit input checks (no sampling)


def test_fit_with_fewer_runs_than_parameters():
    # 8 parameters: 5 coefficients, sigma, nu and tau (the default discrepancy; kappa and omega are learnt outside)
    with pytest.raises(SweepError, match=r"^5 runs cannot pin down law .chinchilla. with 8 parameters"):
        bd.fit(synthetic_sweep(sizes=[1e7, 1e8, 1e9, 3e9, 1e10], tokens_per_param=[20.0]), progress_bar=False)


def test_fit_with_as_many_runs_as_parameters():
    # 8 runs for 8 parameters (5 coefficients, sigma, nu, tau) is still not enough
    df = synthetic_sweep(sizes=np.geomspace(1e7, 1e9, 8), tokens_per_param=[20.0])
    with pytest.raises(SweepError, match="give more runs than parameters"):
        bd.fit(df, progress_bar=False)


def test_fit_distillation_only_sweep_with_supervised_law():
    with pytest.raises(SweepError, match="no supervised runs"):
        bd.fit(distil(), progress_bar=False)


def test_fit_unknown_law():
    with pytest.raises(LawError, match=r"unknown law 'hoffmann'.*'busbridge'.*'chinchilla'"):
        bd.fit(synthetic_sweep(), law="hoffmann", progress_bar=False)


def test_get_law_and_list_laws():
    assert bd.get_law("chinchilla").params == ("E", "A", "B", "alpha", "beta")
    assert bd.get_law("busbridge").params == ("E", "A", "B", "alpha", "beta", "gamma")
    assert {"chinchilla", "busbridge"} <= set(bd.list_laws())
    with pytest.raises(LawError, match="unknown law"):
        bd.get_law("nope")


def test_fit_unknown_prior_site_names_valid_sites():
    with pytest.raises(LawError) as info:
        bd.fit(synthetic_sweep(), priors={"gamma": ("lognormal", 0.0, 0.5)}, progress_bar=False)
    msg = str(info.value)
    assert "'gamma'" in msg and "chinchilla" in msg
    for site in ("E", "A", "B", "alpha", "beta", "sigma", "nu"):
        assert f"'{site}'" in msg.split("valid names")[1]


def test_fit_nu_prior_invalid_for_normal_noise():
    with pytest.raises(LawError, match=r"'nu' is not a parameter"):
        bd.fit(synthetic_sweep(), noise="normal", priors={"nu": ("gamma", 2.0, 0.1)}, progress_bar=False)


def test_fit_unknown_noise():
    with pytest.raises(LawError, match="unknown noise 'cauchy'"):
        bd.fit(synthetic_sweep(), noise="cauchy", progress_bar=False)


@pytest.mark.parametrize("prior, fragment", [
    ({"family": "cauchy", "params": {"loc": 0.0, "scale": 1.0}}, "unknown prior family 'cauchy'"),
    (("lognormal", 0.0, -1.0), "scale must be positive"),
    (("lognormal", 0.0), "takes 2 numbers"),
    (("halfnormal", 1.0, 2.0), "takes 1 numbers"),
    ({"family": "normal", "params": {"loc": 0.0}}, "missing ['scale']"),
    ({"family": "normal", "params": {"loc": 0.0, "scale": 1.0, "df": 3.0}}, "unexpected ['df']"),
    (("normal", "zero", 1.0), "must be a number"),
    (("uniform", 2.0, 1.0), "low must be below high"),
    (("gamma", 2.0, 0.0), "rate must be positive"),
    ("lognormal(0, 1)", "cannot read prior"),
])
def test_fit_bad_prior(prior, fragment):
    with pytest.raises(LawError) as info:
        bd.fit(synthetic_sweep(), priors={"E": prior}, progress_bar=False)
    assert fragment in str(info.value)


def test_prior_from_tuple_with_unknown_family_raises_law_error():
    with pytest.raises(LawError):
        bd.Prior.from_dict(("cauchy", 0.0, 1.0))


def test_prior_from_tuple_with_unknown_family_names_the_family():
    with pytest.raises(LawError, match="unknown family 'cauchy'; choose from"):
        bd.Prior.from_dict(("cauchy", 0.0, 1.0))


def test_prior_round_trip_and_widening():
    p = bd.Prior.from_dict(("lognormal", 0.4, 0.6))
    assert p == bd.Prior("lognormal", {"loc": 0.4, "scale": 0.6})
    assert bd.Prior.from_dict(p.to_dict()) == p
    assert p.widened(2.0).params == {"loc": 0.4, "scale": 1.2}
    assert bd.Prior("exponential", {"rate": 2.0}).widened(2.0).params == {"rate": 1.0}
    assert bd.Prior("uniform", {"low": 1.0, "high": 3.0}).widened(2.0).params == {"low": 0.0, "high": 4.0}
    assert str(p) == "lognormal(loc=0.4, scale=0.6)"


@pytest.mark.parametrize("family, params", [
    ("normal", (0.0, 1.0)), ("lognormal", (0.0, 1.0)), ("halfnormal", (1.0,)), ("halfcauchy", (1.0,)),
    ("exponential", (1.0,)), ("gamma", (2.0, 1.0)), ("uniform", (0.0, 1.0)), ("studentt", (3.0, 0.0, 1.0)),
    ("truncnormal", (1.0, 0.5, 0.1, 3.0)),
])
def test_every_prior_family_builds_a_numpyro_distribution(family, params):
    prior = bd.Prior.from_dict((family, *params))
    d = prior.to_numpyro()
    assert np.isfinite(float(d.log_prob(0.5)))


@pytest.mark.parametrize("settings, fragment", [
    ({"chains": 0}, "chains must be an integer >= 1"),
    ({"chains": 2.0}, "chains must be an integer"),
    ({"draws": 0}, "draws must be an integer >= 1"),
    ({"warmup": -1}, "warmup must be an integer >= 0"),
    ({"seed": -3}, "seed must be a non-negative integer"),
    ({"seed": 1.5}, "seed must be a non-negative integer"),
    ({"target_accept": 1.5}, "target_accept must be in (0, 1)"),
    ({"target_accept": 0.0}, "target_accept must be in (0, 1)"),
])
def test_fit_bad_sampler_settings(settings, fragment):
    with pytest.raises(BayesDistillError, match=re.escape(fragment)):
        bd.fit(synthetic_sweep(), progress_bar=False, **settings)


def test_fit_reads_files_and_reports_their_errors(tmp_path):
    # fit accepts a path and its errors are read_sweep's
    with pytest.raises(SweepError, match="not found"):
        bd.fit(tmp_path / "missing.csv", progress_bar=False)
