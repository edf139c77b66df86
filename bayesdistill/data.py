"""Sweeps: validated tables of training runs.

A *sweep* is the user's table of finished training runs. Supervised runs have
columns ``N`` (non-embedding parameters), ``D`` (training tokens) and ``loss``
(validation cross-entropy, nats per token). Distillation runs have the student
as ``N_S``, ``D_S`` (or ``N``, ``D``), ``loss`` (student cross-entropy) and the
teacher as ``N_T``, ``D_T`` and/or ``L_T``. Optional columns: ``kind``
(``supervised`` or ``distillation``), ``run_id``, ``group`` (rows from one
training run, e.g. checkpoints), ``C`` (FLOPs).

Every problem is reported with the column, the row and what is wrong.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SweepError, SweepWarning

#: plausible range of a per-token cross-entropy in nats
LOSS_RANGE = (0.05, 15.0)
KINDS = ("supervised", "distillation")
NUMERIC = ("N", "D", "loss", "N_T", "D_T", "L_T", "C")


@dataclass(frozen=True)
class Sweep:
    """A validated sweep.

    Attributes
    ----------
    df : pandas.DataFrame
        Standard columns ``kind, N, D, loss, N_T, D_T, L_T, run_id, group``
        (teacher columns are NaN for supervised rows; for distillation rows
        ``N``, ``D`` are the student's size and distillation tokens), plus
        any extra columns the input had.
    source : str
        Where the sweep came from (file path or ``"DataFrame"``).
    """

    df: pd.DataFrame = field(repr=False)
    source: str = "DataFrame"

    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        counts = self.df["kind"].value_counts().to_dict()
        parts = ", ".join(f"{v} {k}" for k, v in counts.items())
        return f"Sweep({parts} runs from {self.source})"

    @property
    def supervised(self) -> pd.DataFrame:
        """Rows of supervised runs."""
        return self.df[self.df["kind"] == "supervised"]

    @property
    def distillation(self) -> pd.DataFrame:
        """Rows of distillation runs."""
        return self.df[self.df["kind"] == "distillation"]

    def subset(self, mask) -> Sweep:
        """A new sweep with the rows where ``mask`` is true."""
        return Sweep(self.df[np.asarray(mask, dtype=bool)].reset_index(drop=True), self.source)


def _where(row: int, source: str, from_file: bool, df: pd.DataFrame) -> str:
    label = f"row {row}"
    if from_file:
        label += f" (line {row + 2} of {Path(source).name})"
    if "run_id" in df.columns and pd.notna(df["run_id"].iloc[row]):
        label += f" [run_id {df['run_id'].iloc[row]!r}]"
    return label


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise SweepError(f"sweep file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
        if suffix == ".tsv":
            return pd.read_csv(path, sep="\t")
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=suffix == ".jsonl")
    except pd.errors.EmptyDataError:
        raise SweepError(f"sweep file {path} is empty") from None
    except Exception as exc:  # parser errors from pandas / pyarrow
        raise SweepError(f"could not read sweep file {path}: {exc}") from None
    raise SweepError(
        f"sweep file {path} has unsupported extension {suffix!r}; use .csv, .tsv, .parquet or .jsonl"
    )


def read_sweep(data, columns: dict[str, str] | None = None) -> Sweep:
    """Read and validate a sweep of training runs.

    Parameters
    ----------
    data : str, pathlib.Path, pandas.DataFrame or Sweep
        A CSV / TSV / parquet / JSON-lines file, or a DataFrame.
    columns : dict, optional
        Map from your column names to the standard ones, e.g.
        ``{"Model Size": "N", "Tokens": "D"}``.

    Returns
    -------
    Sweep

    Raises
    ------
    SweepError
        With the column and row of the first problem found.

    Examples
    --------
    >>> import pandas as pd, bayesdistill as bd
    >>> bd.read_sweep(pd.DataFrame({"N": [1e8, 4e8], "D": [2e9, 8e9], "loss": [3.1, 2.8]}))
    Sweep(2 supervised runs from DataFrame)
    """
    if isinstance(data, Sweep):
        return data
    from_file = isinstance(data, (str, Path))
    if from_file:
        source = str(data)
        df = _read_file(Path(data))
    elif isinstance(data, pd.DataFrame):
        source = "DataFrame"
        df = data.copy()
    else:
        raise SweepError(
            f"read_sweep expects a file path or a pandas DataFrame, got {type(data).__name__}"
        )
    df.columns = [str(c).strip() for c in df.columns]
    if columns:
        unknown = [k for k in columns if k not in df.columns]
        if unknown:
            raise SweepError(
                f"columns= maps {unknown} but the sweep has no such column; found {list(df.columns)}"
            )
        df = df.rename(columns=columns)
    dupes = df.columns[df.columns.duplicated()].tolist()
    if dupes:
        raise SweepError(f"column {dupes[0]!r} appears more than once (after applying columns=)")
    if len(df) == 0:
        raise SweepError(f"sweep from {source} has no rows")
    df = df.reset_index(drop=True)

    # which rows are distillation runs
    if "kind" in df.columns:
        kind = df["kind"].astype(str).str.strip().str.lower()
        for i, k in enumerate(kind):
            if k not in KINDS:
                raise SweepError(
                    f"column 'kind', {_where(i, source, from_file, df)}: {df['kind'].iloc[i]!r} "
                    f"is not one of {list(KINDS)}"
                )
        df["kind"] = kind
    else:
        distil = any(c in df.columns for c in ("N_S", "D_S", "N_T", "D_T", "L_T"))
        df["kind"] = "distillation" if distil else "supervised"
    for student, plain in (("N_S", "N"), ("D_S", "D")):
        if student in df.columns:
            if plain in df.columns:
                both = df[plain].notna() & df[student].notna()
                if both.any():
                    i = int(np.flatnonzero(both)[0])
                    raise SweepError(
                        f"{_where(i, source, from_file, df)} gives both {plain!r} and {student!r}; "
                        f"use {plain!r} for supervised runs and {student!r} for distillation runs"
                    )
                df[plain] = df[plain].where(df[plain].notna(), df[student])
            else:
                df[plain] = df[student]
            df = df.drop(columns=student)

    required = ["N", "D", "loss"]
    for col in required:
        if col not in df.columns:
            raise SweepError(
                f"missing column {col!r}; found {list(df.columns)}. "
                f"Map your names with columns={{'your name': {col!r}}}"
            )
    is_distil = (df["kind"] == "distillation").to_numpy()
    if is_distil.any() and "L_T" not in df.columns and not {"N_T", "D_T"} <= set(df.columns):
        raise SweepError(
            "distillation runs need the teacher: columns 'N_T' and 'D_T' (teacher size and "
            f"tokens) and/or 'L_T' (teacher loss); found {list(df.columns)}"
        )
    for col in ("N_T", "D_T", "L_T"):
        if col not in df.columns:
            df[col] = np.nan

    for col in [c for c in NUMERIC if c in df.columns]:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SweepError(
                f"column {col!r}, {_where(i, source, from_file, df)}: "
                f"{df[col].iloc[i]!r} is not a number"
            )
        df[col] = values.astype(float)

    for col in ("N", "D", "loss"):
        _check_positive(df, col, np.ones(len(df), bool), source, from_file)
    for col in ("N_T", "D_T", "L_T"):
        present = is_distil & df[col].notna().to_numpy()
        _check_positive(df, col, present, source, from_file, allow_missing=True)
    for i in np.flatnonzero(is_distil):
        has_lt = pd.notna(df["L_T"].iloc[i])
        has_nd = pd.notna(df["N_T"].iloc[i]) and pd.notna(df["D_T"].iloc[i])
        if not (has_lt or has_nd):
            raise SweepError(
                f"{_where(int(i), source, from_file, df)} is a distillation run without a teacher: "
                "give 'L_T' or both 'N_T' and 'D_T'"
            )
    teacher_cols = df.loc[~is_distil, ["N_T", "D_T", "L_T"]].notna().to_numpy()
    if teacher_cols.any():
        i = int(np.flatnonzero(~is_distil)[np.flatnonzero(teacher_cols.any(axis=1))[0]])
        raise SweepError(
            f"{_where(i, source, from_file, df)} is a supervised run but has teacher columns; "
            "set kind='distillation' for it or leave N_T, D_T, L_T empty"
        )
    for col in ("loss", "L_T"):
        v = df[col].to_numpy()
        out = np.flatnonzero(~np.isnan(v) & ((v < LOSS_RANGE[0]) | (v > LOSS_RANGE[1])))
        if len(out):
            i = int(out[0])
            raise SweepError(
                f"column {col!r}, {_where(i, source, from_file, df)}: {v[i]:g} is outside the "
                f"plausible range {LOSS_RANGE} of a cross-entropy in nats per token "
                "(perplexity? bits? give log-perplexity in nats)"
            )
    for col in ("N", "N_T"):
        v = df[col].to_numpy()
        small = np.flatnonzero(~np.isnan(v) & (v < 1e4))
        if len(small):
            warnings.warn(
                f"column {col!r}: {len(small)} values below 1e4 (first at "
                f"{_where(int(small[0]), source, from_file, df)}: {v[small[0]]:g}); "
                "is the model size given in millions or billions? bayesdistill expects parameters",
                SweepWarning,
                stacklevel=2,
            )
    if "run_id" not in df.columns:
        df["run_id"] = [f"run{i}" for i in range(len(df))]
    df["run_id"] = df["run_id"].astype(str)
    if "group" not in df.columns:
        df["group"] = df["run_id"]
    df["group"] = df["group"].astype(str)
    front = ["kind", "N", "D", "loss", "N_T", "D_T", "L_T", "run_id", "group"]
    df = df[front + [c for c in df.columns if c not in front]]
    return Sweep(df, source)


def _check_positive(df, col, mask, source, from_file, allow_missing=False):
    v = df[col].to_numpy()
    for i in np.flatnonzero(mask):
        x = v[i]
        if np.isnan(x):
            if allow_missing:
                continue
            raise SweepError(f"column {col!r}, {_where(int(i), source, from_file, df)}: value is missing (NaN)")
        if not np.isfinite(x):
            raise SweepError(f"column {col!r}, {_where(int(i), source, from_file, df)}: value {x} is not finite")
        if x <= 0:
            raise SweepError(f"column {col!r}, {_where(int(i), source, from_file, df)}: value {x:g} is not positive")
