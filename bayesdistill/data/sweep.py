"""Sweeps: validated tables of training runs.

A *sweep* is the user's table of finished training runs. Supervised runs have
columns ``N`` (non-embedding parameters), ``D`` (training tokens) and ``loss``
(validation cross-entropy, nats per token). Distillation runs have the student
as ``N_S``, ``D_S`` (or ``N``, ``D``), ``loss`` (student cross-entropy) and the
teacher as ``N_T``, ``D_T`` and/or ``L_T``. Optional columns: ``kind``
(``supervised`` or ``distillation``), ``run_id``, ``group`` (rows from one
training run, e.g. checkpoints), ``C`` (FLOPs), ``U`` (unique training tokens,
``U <= D``: the run saw its data ``D / U`` times; read by the data-constrained
laws ``"muennighoff"`` and ``"muennighoff_full"``, ignored by the others; an
empty cell means ``U = D``, every token seen once).

Every problem is reported with the column, the row and what is wrong.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SweepError, SweepWarning
from .reading import read_file

#: plausible range of a per-token cross-entropy in nats
LOSS_RANGE = (0.05, 15.0)
KINDS = ("supervised", "distillation")
NUMERIC = ("N", "D", "loss", "N_T", "D_T", "L_T", "C", "U")


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


class _Origin:
    """Where rows came from, for messages: the source and, for text files, each row's line."""

    def __init__(self, source: str, from_file: bool, lines=None):
        self.source, self.from_file, self.lines = source, from_file, lines

    def where(self, row: int, df: pd.DataFrame) -> str:
        label = f"row {row}"
        if self.from_file:
            name = Path(self.source).name
            if self.lines is not None and row < len(self.lines):
                label += f" (line {self.lines[row]} of {name})"
            else:
                label += f" of {name}"
        if "run_id" in df.columns and _present(df["run_id"].iloc[row]):
            label += f" [run_id {_show(df['run_id'].iloc[row])}]"
        return label


def _present(v) -> bool:
    """False for a missing scalar (None, NaN, NA); True otherwise (lists, strings ...)."""
    try:
        return not bool(pd.isna(v))
    except (TypeError, ValueError):  # array-like cells
        return True


def _show(v) -> str:
    """A cell value for a message: plain Python repr, no ``np.float64(...)`` wrappers."""
    if isinstance(v, np.generic):
        v = v.item()
    return repr(v)


def _to_float(df: pd.DataFrame, col: str, origin: _Origin) -> pd.Series:
    """Column ``col`` as floats; names the first cell that is not a number (booleans and dates are not)."""
    s = df[col]
    kind = s.dtype.kind
    if isinstance(s.dtype, pd.CategoricalDtype):
        s, kind = s.astype(object), "O"
    what = {"b": "booleans (True/False), not numbers", "M": "dates, not numbers",
            "m": "time spans, not numbers", "c": "complex numbers, not real numbers"}.get(kind)
    if what:
        i = int(np.flatnonzero(s.notna())[0]) if s.notna().any() else 0
        raise SweepError(f"column {col!r} holds {what} (first at {origin.where(i, df)}: {_show(s.iloc[i])})")
    if kind == "O":
        for i, v in enumerate(s):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (str, numbers.Number, np.number)) and _present(v):
                raise SweepError(f"column {col!r}, {origin.where(i, df)}: {_show(v)} is not a number "
                                 f"(a {type(v).__name__})")
            if isinstance(v, (complex, np.complexfloating)):
                raise SweepError(f"column {col!r}, {origin.where(i, df)}: {_show(v)} is not a real number")
    try:
        values = pd.to_numeric(s, errors="coerce")
    except TypeError:
        raise SweepError(f"column {col!r} of dtype {s.dtype} does not hold numbers") from None
    bad = values.isna() & s.notna()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SweepError(f"column {col!r}, {origin.where(i, df)}: {_show(s.iloc[i])} is not a number")
    return values.astype(float)


def read_sweep(data, columns: dict[str, str] | None = None) -> Sweep:
    """Read and validate a sweep of training runs.

    Parameters
    ----------
    data : str, pathlib.Path, pandas.DataFrame or Sweep
        A CSV / TSV / parquet / JSON-lines file, or a DataFrame. Text files
        are UTF-8 (a byte-order mark is fine), with a header line; ``.csv``
        is separated by commas, ``.tsv`` by tabs; ``.jsonl`` holds one JSON
        object per line. Errors in text files name the line.
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
    df, source, origin = _load(data)
    df = _standard_columns(df, columns, source)
    given = list(df.columns)
    df, kind_given = _kinds(df, origin)
    df = _require_columns(df, given)
    df = _check_values(df, origin, kind_given)
    return Sweep(_ids_and_order(df), source)


def _load(data) -> tuple[pd.DataFrame, str, _Origin]:
    """Step 1: the table (a copy), where it came from, and how to name its rows in errors."""
    from_file = isinstance(data, (str, Path))
    lines = None
    if from_file:
        source = str(data)
        df, lines = read_file(Path(data))
    elif isinstance(data, pd.DataFrame):
        source = "DataFrame"
        df = data.copy()
    else:
        raise SweepError(
            f"read_sweep expects a file path or a pandas DataFrame, got {type(data).__name__}"
        )
    return df, source, _Origin(source, from_file, lines)


def _standard_columns(df: pd.DataFrame, columns, source: str) -> pd.DataFrame:
    """Step 2: strip the column names, apply ``columns=``, refuse duplicates and empty tables."""
    df.columns = [str(c).strip() for c in df.columns]
    if columns is not None and not isinstance(columns, Mapping):
        raise SweepError(
            f"columns= must be a dict from your column names to the standard ones, e.g. "
            f"{{'Model Size': 'N'}}; got a {type(columns).__name__}"
        )
    if columns:
        columns = {str(k).strip(): v for k, v in columns.items()}
        for k, v in columns.items():
            if not isinstance(v, str) or not v.strip():
                raise SweepError(f"columns= maps {k!r} to {v!r}; map it to a column name such as 'N', 'D' or 'loss'")
        columns = {k: v.strip() for k, v in columns.items()}
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

    return df


def _kinds(df: pd.DataFrame, origin: _Origin) -> tuple[pd.DataFrame, bool]:
    """Step 3: which rows are distillation runs (``kind``), with N_S / D_S folded into N / D."""
    kind_given = "kind" in df.columns
    if kind_given:
        kind = df["kind"].astype(str).str.strip().str.lower()
        for i, k in enumerate(kind):
            if k not in KINDS:
                v = df["kind"].iloc[i]
                what = "value is missing" if not _present(v) else f"{_show(v)} is not one of {list(KINDS)}"
                raise SweepError(
                    f"column 'kind', {origin.where(i, df)}: {what}; give 'supervised' or 'distillation'"
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
                        f"{origin.where(i, df)} gives both {plain!r} and {student!r}; "
                        f"use {plain!r} for supervised runs and {student!r} for distillation runs"
                    )
                df[plain] = df[plain].where(df[plain].notna(), df[student])
            else:
                df[plain] = df[student]
            df = df.drop(columns=student)

    return df, kind_given


def _require_columns(df: pd.DataFrame, given: list) -> pd.DataFrame:
    """Step 4: N, D and loss are present, and distillation runs have teacher columns."""
    required = ["N", "D", "loss"]
    for col in required:
        if col not in df.columns:
            near = [c for c in given if c.lower() == col.lower()]
            hint = f" ({near[0]!r} differs only in case)" if near else ""
            raise SweepError(
                f"missing column {col!r}; found {given}{hint}. "
                f"Map your names with columns={{'your name': {col!r}}}"
            )
    is_distil = (df["kind"] == "distillation").to_numpy()
    if is_distil.any() and "L_T" not in df.columns and not {"N_T", "D_T"} <= set(df.columns):
        raise SweepError(
            "distillation runs need the teacher: columns 'N_T' and 'D_T' (teacher size and "
            f"tokens) and/or 'L_T' (teacher loss); found {given}"
        )
    for col in ("N_T", "D_T", "L_T"):
        if col not in df.columns:
            df[col] = np.nan

    return df


def _check_values(df: pd.DataFrame, origin: _Origin, kind_given: bool) -> pd.DataFrame:
    """Step 5: numbers parsed and checked (positive, plausible losses, teachers where needed)."""
    is_distil = (df["kind"] == "distillation").to_numpy()
    for col in [c for c in NUMERIC if c in df.columns]:
        df[col] = _to_float(df, col, origin)

    for col in ("N", "D", "loss"):
        _check_positive(df, col, np.ones(len(df), bool), origin)
    for col in ("N_T", "D_T", "L_T"):
        present = is_distil & df[col].notna().to_numpy()
        _check_positive(df, col, present, origin, allow_missing=True)
    if "C" in df.columns:
        _check_positive(df, "C", df["C"].notna().to_numpy(), origin, allow_missing=True)
    if "U" in df.columns:
        _check_unique_tokens(df, origin)
    for i in np.flatnonzero(is_distil):
        has_lt = pd.notna(df["L_T"].iloc[i])
        has_nd = pd.notna(df["N_T"].iloc[i]) and pd.notna(df["D_T"].iloc[i])
        if not (has_lt or has_nd):
            raise SweepError(
                f"{origin.where(int(i), df)} is a distillation run without a teacher: "
                "give 'L_T' or both 'N_T' and 'D_T'"
                + ("" if kind_given else " (without a 'kind' column every row of a table with teacher "
                   "columns is a distillation run; add kind='supervised' for supervised rows)")
            )
    teacher_cols = df.loc[~is_distil, ["N_T", "D_T", "L_T"]].notna().to_numpy()
    if teacher_cols.any():
        i = int(np.flatnonzero(~is_distil)[np.flatnonzero(teacher_cols.any(axis=1))[0]])
        raise SweepError(
            f"{origin.where(i, df)} is a supervised run but has teacher columns; "
            "set kind='distillation' for it or leave N_T, D_T, L_T empty"
        )
    for col in ("loss", "L_T"):
        v = df[col].to_numpy()
        out = np.flatnonzero(~np.isnan(v) & ((v < LOSS_RANGE[0]) | (v > LOSS_RANGE[1])))
        if len(out):
            i = int(out[0])
            raise SweepError(
                f"column {col!r}, {origin.where(i, df)}: {v[i]:g} is outside the "
                f"plausible range {LOSS_RANGE} of a cross-entropy in nats per token "
                "(perplexity? bits? give log-perplexity in nats)"
            )
    for col in ("N", "N_T"):
        v = df[col].to_numpy()
        small = np.flatnonzero(~np.isnan(v) & (v < 1e4))
        if len(small):
            warnings.warn(
                f"column {col!r}: {len(small)} values below 1e4 (first at "
                f"{origin.where(int(small[0]), df)}: {v[small[0]]:g}); "
                "is the model size given in millions or billions? bayesdistill expects parameters",
                SweepWarning,
                stacklevel=3,  # the caller of read_sweep
            )
    return df


def _ids_and_order(df: pd.DataFrame) -> pd.DataFrame:
    """Step 6: every run gets an id and a group; the standard columns come first."""
    # a missing id becomes run{i} and a missing group the run's own id: never one shared "nan"
    auto = pd.Series([f"run{i}" for i in range(len(df))])
    ids = df["run_id"] if "run_id" in df.columns else auto
    df["run_id"] = [str(v) if _present(v) else a for v, a in zip(ids, auto)]
    groups = df["group"] if "group" in df.columns else df["run_id"]
    df["group"] = [str(v) if _present(v) else r for v, r in zip(groups, df["run_id"])]
    front = ["kind", "N", "D", "loss", "N_T", "D_T", "L_T", "run_id", "group"]
    df = df[front + [c for c in df.columns if c not in front]]
    return df




#: relative slack of ``U <= D`` (counts written with rounding, e.g. billions to a few digits)
U_SLACK = 1e-9


def _check_unique_tokens(df, origin):
    """``U`` (unique tokens): positive, finite, at most ``D``; an empty cell becomes ``D`` (one epoch)."""
    _check_positive(df, "U", df["U"].notna().to_numpy(), origin, allow_missing=True)
    u, d = df["U"].to_numpy(), df["D"].to_numpy()
    over = np.flatnonzero(~np.isnan(u) & (u > d * (1 + U_SLACK)))
    if len(over):
        i = int(over[0])
        raise SweepError(
            f"column 'U', {origin.where(i, df)}: {u[i]:g} unique tokens exceed the run's D = {d[i]:g} "
            "training tokens; U is the number of distinct tokens, at most D (repetitions D/U - 1 >= 0)"
        )
    df["U"] = np.where(np.isnan(u), d, np.minimum(u, d))


def _check_positive(df, col, mask, origin, allow_missing=False):
    v = df[col].to_numpy()
    for i in np.flatnonzero(mask):
        x = v[i]
        if np.isnan(x):
            if allow_missing:
                continue
            raise SweepError(f"column {col!r}, {origin.where(int(i), df)}: value is missing (NaN)")
        if not np.isfinite(x):
            raise SweepError(f"column {col!r}, {origin.where(int(i), df)}: value {x} is not finite")
        if x <= 0:
            raise SweepError(f"column {col!r}, {origin.where(int(i), df)}: value {x:g} is not positive")
