"""Reading a sweep's file: CSV / TSV / parquet / JSON lines into a DataFrame, with line numbers.

:func:`read_file` is step 1 of :func:`bayesdistill.data.sweep.read_sweep` for paths; the line
number of every data row travels with the table, so that the checks can name it.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import pandas as pd

from ..errors import SweepError

#: separators by file suffix, and their names in error messages
DELIMITERS = {".csv": ",", ".txt": ",", ".tsv": "\t"}
DELIMITER_NAMES = {",": "commas", "\t": "tabs", ";": "semicolons", "|": "pipes"}


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SweepError(f"could not read sweep file {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark (Excel's 'CSV UTF-8') is dropped
    except UnicodeDecodeError as exc:
        raise SweepError(
            f"sweep file {path} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None


def _read_delimited(path: Path, sep: str) -> tuple[pd.DataFrame, list[int] | None]:
    """A CSV/TSV file and the line of each row; rejects what pandas would silently misread."""
    text = _read_text(path)
    records = []  # (first line, fields) of each non-blank record, header included
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    prev = 0
    try:
        for fields in reader:
            if not (len(fields) <= 1 and "".join(fields).strip() == ""):
                records.append((prev + 1, fields))
            prev = reader.line_num
    except csv.Error as exc:
        raise SweepError(f"could not read sweep file {path}: line {reader.line_num}: {exc}") from None
    if not records:
        raise SweepError(f"sweep file {path} is empty")
    header = [h.strip() for h in records[0][1]]
    if len(header) == 1:
        found = [DELIMITER_NAMES[d] for d in DELIMITER_NAMES if d != sep and d in header[0]]
        if found:
            raise SweepError(
                f"the header of {path.name} is one column {header[0]!r}: the file seems separated by "
                f"{found[0]}, but {path.suffix} files are read as separated by {DELIMITER_NAMES[sep]}"
                + ("; save it with commas, or as .tsv if it uses tabs" if sep == "," else "")
            )
    seen = set()
    for h in header:
        if h and h in seen:  # unnamed (empty) columns, e.g. from trailing delimiters, may repeat
            raise SweepError(f"column {h!r} appears more than once in the header of {path.name}")
        seen.add(h)
    for line, fields in records[1:]:
        extra = fields[len(header):]
        if any(f.strip() for f in extra):
            raise SweepError(
                f"line {line} of {path.name} has {len(fields)} fields but the header has {len(header)} "
                f"columns ({header}); is a value or a delimiter too many?"
            )
    with warnings.catch_warnings():
        # index_col=False: never take the first column as the index when rows end with a delimiter
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        df = pd.read_csv(io.StringIO(text), sep=sep, index_col=False)
    lines = [line for line, _ in records[1:]]
    return df, lines if len(lines) == len(df) else None


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """A JSON-lines file, one object per line (blank lines skipped), and the line of each row."""
    records, lines = [], []
    for k, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SweepError(f"line {k} of {path.name} is not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(rec, dict):
            raise SweepError(
                f"line {k} of {path.name} is a JSON {type(rec).__name__}, not an object; "
                'write one run per line as {"N": ..., "D": ..., "loss": ...}'
            )
        records.append(rec)
        lines.append(k)
    if not records:
        raise SweepError(f"sweep file {path} is empty")
    return pd.DataFrame.from_records(records), lines


def read_file(path: Path) -> tuple[pd.DataFrame, list[int] | None]:
    """The table in ``path`` and the line of each row (None where rows have no lines)."""
    if not path.exists():
        raise SweepError(f"sweep file not found: {path}")
    if path.is_dir():
        raise SweepError(f"{path} is a directory; give the sweep file inside it")
    suffix = path.suffix.lower()
    if suffix in DELIMITERS:
        return _read_delimited(path, DELIMITERS[suffix])
    if suffix == ".jsonl":
        return _read_jsonl(path)
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path), None
        if suffix == ".json":
            return pd.read_json(path), None
    except ValueError as exc:
        if suffix == ".json" and "Trailing data" in str(exc):
            raise SweepError(f"could not read sweep file {path}: {exc}; one object per line is a .jsonl file") from None
        raise SweepError(f"could not read sweep file {path}: {exc}") from None
    except Exception as exc:  # parser errors from pandas / pyarrow
        raise SweepError(f"could not read sweep file {path}: {exc}") from None
    raise SweepError(
        f"sweep file {path} has unsupported extension {suffix!r}; use .csv, .tsv, .parquet or .jsonl"
    )
