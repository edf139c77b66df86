"""Tests for the bundled sweeps in ``data/`` and :mod:`bayesdistill.data.datasets`."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bayesdistill.data import datasets as ds
from bayesdistill.errors import BayesDistillError

EXPECTED_ROWS = {"gadre_c4": 104, "gemstones_cool_end": 199, "datablations_single_epoch": 29,
                 "porian_rw_cosine": 88, "porian_owt2_cosine": 88, "olmo2_ladder": 25}
#: the files data/make_data.py rebuilds from ../shared/data (the others: data/make_corpus.py, from the
#: fetched repositories named in data/README.md)
MAKE_DATA = ("gadre_c4", "gemstones_cool_end", "datablations_single_epoch")
STANDARD_COLUMNS = ["N", "D", "loss", "run_id", "group"]


def _make_data_module():
    spec = importlib.util.spec_from_file_location("make_data", ds.DATA_DIR / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shared_sources_present() -> bool:
    root = ds.shared_data_dir()
    return all((root / sub).is_dir() for sub in ("gadre_overtraining", "gemstones", "datablations"))


@pytest.mark.parametrize("name", sorted(EXPECTED_ROWS))
def test_dataset_loads_with_sane_values(name):
    df = ds.load_dataset(name)
    assert list(df.columns[:5]) == STANDARD_COLUMNS
    assert len(df) == EXPECTED_ROWS[name]
    for col in ("N", "D", "loss"):
        values = df[col].to_numpy(dtype=float)
        assert np.all(np.isfinite(values)) and np.all(values > 0), col
    assert df["loss"].between(0.5, 10.0, inclusive="neither").all()
    assert df["run_id"].is_unique
    assert df["group"].notna().all()


def test_list_datasets_matches_files():
    table = ds.list_datasets()
    assert set(table["name"]) == set(EXPECTED_ROWS)
    assert dict(zip(table["name"], table["rows"])) == EXPECTED_ROWS
    assert set(table["licence"]) == {"MIT", "Apache-2.0"}


def test_gadre_filter_by_training_dataset():
    counts = {d: len(ds.load_dataset("gadre_c4", dataset=d))
              for d in ("c4_original", "rpj", "rw_original")}
    assert counts == {"c4_original": 34, "rpj": 35, "rw_original": 35}
    with pytest.raises(BayesDistillError, match="rpj"):
        ds.load_dataset("gadre_c4", dataset="pile")
    with pytest.raises(BayesDistillError):
        ds.load_dataset("gemstones_cool_end", dataset="c4_original")


def test_datablations_rows_are_single_epoch():
    df = ds.load_dataset("datablations_single_epoch")
    assert (df["D"] == df["U"]).all()


def test_unknown_name_raises():
    with pytest.raises(BayesDistillError, match="gemstones_cool_end"):
        ds.load_dataset("chinchilla")


def test_missing_file_raises(monkeypatch, tmp_path):
    monkeypatch.setattr(ds, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="make_data"):
        ds.load_dataset("gadre_c4")


@pytest.mark.skipif(not _shared_sources_present(),
                    reason="raw sources (../shared/data or $BAYESDISTILL_SHARED_DATA) not available")
@pytest.mark.parametrize("name", MAKE_DATA)
def test_shipped_csv_equals_make_data_output(name):
    make_data = _make_data_module()
    expected = make_data.to_csv_text(make_data.BUILDERS[name](ds.shared_data_dir()))
    shipped = (ds.DATA_DIR / make_data.OUTPUTS[name]).read_bytes()
    assert shipped == expected.encode("utf-8")


def test_chinchilla_points():
    try:
        df = ds.load_chinchilla_points()
    except FileNotFoundError as err:
        pytest.skip(f"Epoch Chinchilla data not available: {err}")
    assert list(df.columns) == ["N", "D", "loss", "C"]
    assert len(df) == 240
    assert len(ds.load_chinchilla_points(drop_highest=0)) == 245
    np.testing.assert_allclose(df["C"], 6 * df["N"] * df["D"], rtol=1e-12)


def test_chinchilla_missing_folder_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESDISTILL_SHARED_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="epoch_chinchilla"):
        ds.load_chinchilla_points()
