"""Regenerate the IsoFLOP-ladder CSVs added for the misfit population prior (issue 20).

Usage (from the repository root)::

    python data/make_corpus.py --porian DIR --olmo DIR [--out OUT_DIR]

``--porian``: a checkout of github.com/formll/resolving-scaling-law-discrepancies at commit
``0dc60d91b8a525858a3067fc9e4a46ff5374cc6f`` (reads ``data/summary_df.pickle.xz`` and
``data/summary_df_owt2.pickle.xz``). ``--olmo``: the folder
``scripts/scaling/data/peteish-moreeval`` of github.com/allenai/OLMo at commit
``9bc064c72b1439640993e7ff28238e7b8f855aee`` (branch ``ladder-1xC``). Sources, licences and
column derivations: ``data/README.md``. Nothing is interpolated or edited here: every loss is a
number read from those files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

OUTPUTS = {"porian_rw_cosine": "porian_rw_cosine.csv", "porian_owt2_cosine": "porian_owt2_cosine.csv",
           "olmo2_ladder": "olmo2_ladder.csv"}
#: the Porian et al. configuration used: "Cosine decay" (a cosine schedule ending at each budget)
PORIAN_CONFIG = {"hparams": "base", "warmup": "short", "decay": "chinchilla", "param_count": "standard", "val": "val"}
PORIAN_VOCAB = 50432
#: OLMo-2 ladder: size -> (N as the authors' final_moredata.json gives it, d_model)
OLMO_SIZES = {"190M": (190354176, 768), "370M": (371262464, 1024), "760M": (758220288, 1536),
              "1B": (1279395840, 2048), "3B": (3169537280, 3328)}
OLMO_MULTS = ("0.5xC", "1xC-rerun", "2xC", "5xC", "10xC")
OLMO_VOCAB = 100352


def _porian_params(width: int, depth: int) -> int:
    """The repository's ``precise_param_count_open_lm`` (standard count: non-embedding + output matrix)."""
    d_ff = 256 * ((int(2 * 4 * width / 3) + 256 - 1) // 256)
    return (4 * width + 3 * d_ff) * width * depth + PORIAN_VOCAB * width


def build_porian(path: Path, dataset: str) -> pd.DataFrame:
    shapes = {}
    for w in range(16, 8193, 16):
        for dep in range(1, 129):
            shapes.setdefault(_porian_params(w, dep), []).append((w, dep))
    summary = pd.read_pickle(path)
    sel = summary[(summary["dataset"] == dataset) & pd.concat(
        [summary[k] == v for k, v in PORIAN_CONFIG.items()], axis=1).all(axis=1)]
    if len(sel) != 1:
        raise ValueError(f"{path}: expected one row of config {PORIAN_CONFIG} for {dataset!r}, got {len(sel)}")
    rows = []
    for _, d in sel.iloc[0]["data"].iterrows():
        if not isinstance(d.orig_n, pd.Series):
            continue
        for n, t, loss in zip(d.orig_n.values, d.orig_t.values, d.orig_loss.values):
            match = shapes.get(int(round(n)), [])
            if len(match) != 1:
                raise ValueError(f"{path}: N={n} matches {len(match)} model shapes")
            w, dep = match[0]
            rows.append({"N": float(n), "D": float(t), "loss": float(loss),
                         "run_id": f"{dataset}-w{w}-d{dep}-C{float(d.flops):.3g}", "group": f"w{w}-d{dep}",
                         "budget": float(d.flops), "width": w, "depth": dep, "N_nonembed": float(n - PORIAN_VOCAB * w)})
    return pd.DataFrame(rows).sort_values(["budget", "N"], kind="stable").reset_index(drop=True)


def build_olmo(folder: Path) -> pd.DataFrame:
    keys = {"loss": "eval/c4_en-validation/CrossEntropyLoss", "loss_pile": "eval/pile-validation/CrossEntropyLoss",
            "loss_dolma_cc": "eval/dolma_common-crawl-validation/CrossEntropyLoss",
            "loss_wikitext103": "eval/wikitext_103-validation/CrossEntropyLoss"}
    rows = []
    for size, (n, d_model) in OLMO_SIZES.items():
        for mult in OLMO_MULTS:
            last = pd.read_csv(folder / f"{size}-{mult}.csv").iloc[-1]  # the end of training
            xc = mult.replace("-rerun", "")
            rows.append({"N": float(n), "D": float(last["throughput/total_tokens"]),
                         **{k: float(last[c]) for k, c in keys.items()}, "run_id": f"{size}-{xc}",
                         "group": size, "N_nonembed": float(n - OLMO_VOCAB * d_model), "size": size, "xC": xc,
                         "step": int(last["_step"]), "batch_tokens": int(last["batch_size_in_tokens"])})
    df = pd.DataFrame(rows)
    return df[["N", "D", "loss", "run_id", "group", *[c for c in df.columns if c not in
                                                      ("N", "D", "loss", "run_id", "group")]]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--porian", type=Path, required=True)
    ap.add_argument("--olmo", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args(argv)
    frames = {"porian_rw_cosine": build_porian(args.porian / "data" / "summary_df.pickle.xz", "rw"),
              "porian_owt2_cosine": build_porian(args.porian / "data" / "summary_df_owt2.pickle.xz", "owt2"),
              "olmo2_ladder": build_olmo(args.olmo)}
    for name, df in frames.items():
        df = df[["N", "D", "loss", "run_id", "group", *[c for c in df.columns if c not in
                                                         ("N", "D", "loss", "run_id", "group")]]]
        if df["run_id"].duplicated().any():
            raise ValueError(f"{name}: run_id is not unique")
        (args.out / OUTPUTS[name]).write_text(df.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
        print(f"wrote {args.out / OUTPUTS[name]}: {len(df)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
