"""Regenerate the shipped sweep CSVs in ``data/`` from the raw source files.

Usage (from the repository root)::

    python data/make_data.py [SHARED_DATA_DIR] [--out OUT_DIR]

``SHARED_DATA_DIR`` defaults to ``$BAYESDISTILL_SHARED_DATA`` if set, else to
``../shared/data`` relative to the repository root. ``OUT_DIR`` defaults to the
folder holding this script. Only the standard library and pandas are used; all
numbers are parsed with Python's exact float/int parsers and written back with
shortest round-trip formatting, so no precision is lost or invented.

Sources and licences are documented in ``data/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import pandas as pd

GEMSTONES_VOCAB = 50304  # padded vocabulary; the authors' --no_embeds subtracts vocab*width
OUTPUTS = {
    "gadre_c4": "gadre_c4.csv",
    "gemstones_cool_end": "gemstones_cool_end.csv",
    "datablations_single_epoch": "datablations_single_epoch.csv",
}


def default_shared_dir() -> Path:
    """``$BAYESDISTILL_SHARED_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("BAYESDISTILL_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _as_int(x: float) -> int:
    """Convert an integer-valued number to ``int``; refuse to round anything else."""
    if isinstance(x, int):
        return x
    if not float(x).is_integer():
        raise ValueError(f"expected an integer-valued count, got {x!r}")
    return int(x)


def build_gadre(shared: Path) -> pd.DataFrame:
    """All 104 Gadre et al. (2024) runs, loss = final C4-eval loss (``c4_val``)."""
    rows = []
    for path in sorted((shared / "gadre_overtraining" / "models").glob("*.json")):
        run = json.loads(path.read_text())
        hp = run["hyperparameters"]
        c4 = [r for r in run["results"] if "c4_val" in r["val_data"][0].split("/")]
        if len(c4) != 1:
            raise ValueError(f"{path.name}: expected one c4_val result, got {len(c4)}")
        config = Path(hp["model"]).name.removesuffix(".json")
        rows.append({
            "N": _as_int(hp["params_no_embed"]),
            "D": _as_int(hp["tokens"]),
            "loss": c4[0]["loss"],
            "run_id": run["name"],
            "group": f"{run['dataset_name']}/{config}",
            "dataset": run["dataset_name"],
            "model_config": config,
            "N_total": _as_int(hp["params"]),
            "tokens_per_param_M": 20 * hp["chinchilla_multiplier"],
            "loss_tokens_lower95": c4[0]["loss_tokens_lower_95"],
            "loss_tokens_upper95": c4[0]["loss_tokens_upper_95"],
            "eval_tokens": _as_int(c4[0]["tokens"]),
        })
    df = pd.DataFrame(rows)
    return df.sort_values(["dataset", "N", "D", "run_id"], ignore_index=True)


def build_gemstones(shared: Path) -> pd.DataFrame:
    """Gemstones cooled-down branches (``wandb_df_for_fitting_cool_end.jsonl``)."""
    path = shared / "gemstones" / "wandb_df_for_fitting_cool_end.jsonl"
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        rows.append({
            "N": _as_int(r["params_active_precise"]) - GEMSTONES_VOCAB * _as_int(r["width"]),
            "D": _as_int(r["tokens"]),
            "loss": r["final_loss"],
            "run_id": f"{r['run_name']}/cool_end/step{_as_int(r['step'])}",
            "group": r["run_name"],
            "N_total": _as_int(r["params_active_precise"]),
            "width": _as_int(r["width"]),
            "depth": _as_int(r["depth"]),
            "step": _as_int(r["step"]),
        })
    df = pd.DataFrame(rows)
    return df.sort_values(["N", "group", "D"], ignore_index=True)


def build_datablations(shared: Path) -> pd.DataFrame:
    """Single-epoch (D == U) rows of the Muennighoff et al. (2023) C4 runs."""
    path = shared / "datablations" / "datablations_c4_val_losses_from_parametric_fit_nb.csv"
    rows = []
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            n, d, u = (_as_int(float(r[k])) for k in ("N_params", "D_tokens", "U_unique_tokens"))
            if abs(d / u - 1.0) >= 1e-9:
                continue
            rows.append({
                "N": n,
                "D": d,
                "loss": float(r["val_loss"]),
                "run_id": r["name"],
                "group": f"N={n}",
                "U": u,
            })
    df = pd.DataFrame(rows)
    return df.sort_values(["N", "D", "run_id"], ignore_index=True)


BUILDERS = {
    "gadre_c4": build_gadre,
    "gemstones_cool_end": build_gemstones,
    "datablations_single_epoch": build_datablations,
}


def to_csv_text(df: pd.DataFrame) -> str:
    """Serialise exactly as the shipped files are written."""
    if df["run_id"].duplicated().any():
        raise ValueError("run_id is not unique")
    return df.to_csv(index=False, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", nargs="?", type=Path, default=None,
                        help="folder holding gadre_overtraining/, gemstones/, datablations/")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    shared = args.shared if args.shared is not None else default_shared_dir()
    if not shared.is_dir():
        parser.error(f"shared data folder not found: {shared}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        df = build(shared)
        (args.out / OUTPUTS[name]).write_text(to_csv_text(df), encoding="utf-8", newline="\n")
        print(f"wrote {args.out / OUTPUTS[name]}: {len(df)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
