"""Bundled public scaling-law sweeps (see ``data/README.md`` for provenance and licences)."""

from __future__ import annotations

import os
from pathlib import Path

from .._files import shipped_file
from ..errors import InputError

#: the folder holding the bundled CSVs: the repository's ``data/``, or its copy inside an installed wheel
DATA_DIR = shipped_file("data", "gadre_c4.csv").parent

_DATASETS = {  # name -> (file, description, licence)
    "gadre_c4": ("gadre_c4.csv", "Gadre et al. 2024 open_lm over-training sweep: "
                 "104 runs, C4-eval loss", "MIT"),
    "gemstones_cool_end": ("gemstones_cool_end.csv", "McLeish et al. 2025 Gemstones: "
                           "20 runs x cooled-down branches, Dolma val loss", "MIT"),
    "datablations_single_epoch": ("datablations_single_epoch.csv", "Muennighoff et al. 2023 "
                                  "datablations: single-epoch (D == U) C4 runs", "Apache-2.0"),
    "porian_rw_cosine": ("porian_rw_cosine.csv", "Porian et al. 2024 IsoFLOP sweep, RefinedWeb, cosine "
                         "decay ending at each of 12 budgets: 88 runs, validation loss", "MIT"),
    "porian_owt2_cosine": ("porian_owt2_cosine.csv", "Porian et al. 2024 IsoFLOP sweep, OpenWebText2, cosine "
                           "decay ending at each of 12 budgets: 88 runs, validation loss", "MIT"),
    "olmo2_ladder": ("olmo2_ladder.csv", "AI2 OLMo-2 model ladder (Bhagia et al. 2024): 5 sizes x "
                     "0.5-10x Chinchilla tokens, 25 runs, C4 validation loss", "Apache-2.0"),
}


def dataset_records() -> list[dict]:
    """The bundled datasets as plain records (what :func:`list_datasets` tabulates; no pandas)."""
    records = []
    for name, (file, description, licence) in _DATASETS.items():
        path = DATA_DIR / file
        rows = None
        if path.is_file():
            with path.open() as fh:
                rows = sum(1 for _ in fh) - 1
        records.append({"name": name, "file": file, "rows": rows,
                        "description": description, "licence": licence})
    return records


def list_datasets():
    """List the bundled datasets.

    Returns
    -------
    pandas.DataFrame
        One row per dataset with columns ``name``, ``file``, ``rows`` (data rows
        in the CSV, ``None`` if the file is missing), ``description`` and ``licence``.
    """
    import pandas as pd

    return pd.DataFrame(dataset_records())


def load_dataset(name: str, *, dataset: str | None = None):
    """Load one bundled sweep as a DataFrame.

    Parameters
    ----------
    name : str
        One of ``"gadre_c4"``, ``"gemstones_cool_end"``, ``"datablations_single_epoch"``,
        ``"porian_rw_cosine"``, ``"porian_owt2_cosine"``, ``"olmo2_ladder"`` (see ``data/README.md``).
    dataset : str, optional
        Only for ``"gadre_c4"``: keep the rows of this training dataset
        (``"c4_original"``, ``"rpj"`` or ``"rw_original"``).

    Returns
    -------
    pandas.DataFrame
        Columns ``N``, ``D``, ``loss`` (nats/token), ``run_id``, ``group`` and extras.

    Raises
    ------
    ValueError
        Unknown ``name`` or ``dataset``, or ``dataset`` given for another sweep.
    FileNotFoundError
        The CSV is missing from ``DATA_DIR``.
    """
    import pandas as pd

    if name not in _DATASETS:
        raise InputError(f"unknown dataset {name!r}; valid names: {sorted(_DATASETS)}")
    if dataset is not None and name != "gadre_c4":
        raise InputError(f"`dataset` filtering is only supported for 'gadre_c4', not {name!r}")
    path = DATA_DIR / _DATASETS[name][0]
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled data file {path} is missing; regenerate it with `python data/make_data.py` "
            "(or `python data/make_corpus.py` for the Porian and OLMo ladders)")
    df = pd.read_csv(path)
    if dataset is not None:
        valid = sorted(df["dataset"].unique())
        if dataset not in valid:
            raise InputError(f"unknown training dataset {dataset!r}; valid values: {valid}")
        df = df[df["dataset"] == dataset].reset_index(drop=True)
    return df


def shared_data_dir() -> Path:
    """Folder with the raw sources: ``$BAYESDISTILL_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("BAYESDISTILL_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def load_chinchilla_points(drop_highest: int = 5):
    """Load Epoch AI's extraction of Chinchilla Fig. 4 (not redistributed; no licence).

    Parameters
    ----------
    drop_highest : int, default 5
        Keep ``loss < sorted(loss)[-drop_highest]`` (Epoch's filter, 240 rows); 0 keeps all 245.

    Returns
    -------
    pandas.DataFrame
        Columns ``N`` (all parameters), ``D = C / (6 N)``, ``loss`` and ``C`` (FLOP).

    Raises
    ------
    FileNotFoundError
        ``epoch_chinchilla/svg_extracted_data.csv`` is not under :func:`shared_data_dir`.
    """
    import pandas as pd

    if drop_highest < 0:
        raise InputError("drop_highest must be >= 0")
    path = shared_data_dir() / "epoch_chinchilla" / "svg_extracted_data.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; set BAYESDISTILL_SHARED_DATA to the folder holding epoch_chinchilla/")
    raw = pd.read_csv(path)
    df = pd.DataFrame({"N": raw["Model Size"], "C": raw["Training FLOP"], "loss": raw["loss"]})
    df["D"] = df["C"] / (6 * df["N"])
    if drop_highest > 0:
        df = df[df["loss"] < sorted(df["loss"])[-drop_highest]]
    return df[["N", "D", "loss", "C"]].reset_index(drop=True)


def load_misfitting(best_lr: bool = True):
    """Load the last checkpoints of the Misfitting open_lm sweeps (Li et al. 2025; NO licence).

    Read from ``misfitting/scaling_results_last_ckpt_only.csv`` under :func:`shared_data_dir`
    (see ``SOURCE.md`` there): the file carries no licence, so it is never shipped and only
    read here, for internal validation.

    Parameters
    ----------
    best_lr : bool, default True
        Keep, for every (N, D), the run of the learning rate with the lowest loss (the usual
        practice; the file repeats 80 (N, D) pairs at several learning rates). False keeps all
        261 runs.

    Returns
    -------
    pandas.DataFrame
        Columns ``N`` (total parameters, embeddings included, as in the file's ``N``), ``D``,
        ``loss`` (C4 eval, nats/token), ``peak_lr``, ``model``, sorted by N, D and loss.

    Raises
    ------
    FileNotFoundError
        The file is not under :func:`shared_data_dir`.
    """
    import pandas as pd

    path = shared_data_dir() / "misfitting" / "scaling_results_last_ckpt_only.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; set BAYESDISTILL_SHARED_DATA to the folder holding misfitting/")
    raw = pd.read_csv(path)
    df = raw[["N", "D", "loss", "peak_lr", "model"]].astype({"N": float, "D": float})
    df = df.sort_values(["N", "D", "loss"], kind="stable").reset_index(drop=True)
    if best_lr:
        df = df.drop_duplicates(["N", "D"], keep="first").reset_index(drop=True)
    return df
