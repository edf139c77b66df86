"""Calibration protocol for the question sweeps are run to answer: what happens one compute level up?

One place for the splits and the scores that ``benchmarks/bench_isoflop.py``, the tests and
``bayesdistill.fit(discrepancy="compute")`` share:

- :func:`compute_levels` bins a sweep's runs into IsoFLOP levels: by a budget column where the
  sweep has one, else by C = 6 N D in bins of ``LEVEL_WIDTH`` decades (half a decade: "3C")
  anchored at the largest run; scanning from the top, a level with fewer than ``min_runs`` runs is
  merged into the one below (the bottom one into the one above), so every level can be scored;
- :func:`leave_largest_out` fits every level but the largest and predicts the largest;
  :func:`rollout_splits` fits levels ``0..k`` and predicts ``k+1`` for every ``k`` with at least
  ``min_fit_runs`` runs to fit (OLMo-core's rollout validation);
- :func:`score` gives, at the held-out runs, the coverage of the 50% and 90% predictive intervals
  of :meth:`Posterior.predict`, the median relative error of the posterior median, the median
  relative width of both intervals and the mean log predictive density of the held-out log
  losses (a proper score: calibrated *and* sharp);
- :func:`optimal_regret` acts on the posterior's compute-optimal size at each IsoFLOP slice of
  the held-out runs (:func:`isoflop_slices`) and measures what that run loses against the best
  run observed there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BayesDistillError, SweepError
from .model import log10_6nd

#: decades of compute per IsoFLOP level when a sweep has no budget column (10^0.5 ~ 3.2x)
LEVEL_WIDTH = 0.5
#: fewest runs a level must hold to be scored (sparser bins are merged into the level below)
MIN_LEVEL_RUNS = 5
#: fewest runs a rollout step fits (more than the Chinchilla law's 5 coefficients + 3 noise scales)
MIN_FIT_RUNS = 12
#: IsoFLOP slices: runs whose log10 C are chained by gaps of at most this many decades ...
SLICE_GAP = 0.03
#: ... spanning at most this many decades (a 26% spread of compute), with this many model sizes
SLICE_SPAN, SLICE_SIZES = 0.1, 3


def _positive_column(df, col: str) -> np.ndarray:
    if col not in df.columns:
        raise SweepError(f"the sweep has no column {col!r} (columns: {list(df.columns)})")
    x = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(x) & (x > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SweepError(f"column {col!r} must hold positive finite numbers; row {i} has {df[col].iloc[i]!r}")
    return x


def log10_compute(df) -> np.ndarray:
    """log10 of C = 6 N D per run (in floats: 6 N D of integer columns overflows int64)."""
    if not isinstance(df, pd.DataFrame):
        raise BayesDistillError(f"expected a DataFrame of runs with columns N and D, got a {type(df).__name__}")
    return log10_6nd(_positive_column(df, "N"), _positive_column(df, "D"))


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise BayesDistillError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def compute_levels(df, *, budget: str | None = None, width: float = LEVEL_WIDTH,
                   min_runs: int = MIN_LEVEL_RUNS) -> np.ndarray:
    """IsoFLOP level of every run: 0 for the smallest budget, up to ``n_levels - 1``.

    Parameters
    ----------
    df : DataFrame
        Runs with positive ``N`` and ``D`` (and ``budget`` if named).
    budget : str, optional
        A column holding each run's IsoFLOP budget (FLOPs): its distinct values are the initial
        levels. Without it, log10(6 N D) is binned into ``width``-decade bins whose top edge is the
        largest run.
    width : float
        Decades of compute per bin (default ``LEVEL_WIDTH`` = 0.5).
    min_runs : int
        Scanning from the largest budget down, a level with fewer runs is merged into the level
        below; a sparse bottom level is merged into the one above.

    Raises
    ------
    SweepError
        A missing or non-positive ``N``, ``D`` or budget column, or fewer runs than ``min_runs``.
    BayesDistillError
        A non-positive ``width`` or ``min_runs``.
    """
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < math.inf:
        raise BayesDistillError(f"width must be a positive number of decades, got {width!r}")
    min_runs = _check_int("min_runs", min_runs, 1)
    if budget is not None:
        c = np.log10(_positive_column(df, budget))
        log10_compute(df)  # N and D must be valid too
        keys = np.unique(c, return_inverse=True)[1]
    else:
        c = log10_compute(df)
        keys = np.floor((c.max() - c) / width).astype(int)  # 0 = top bin
        keys = keys.max() - keys  # 0 = bottom bin
    if len(c) < min_runs:
        raise SweepError(f"the sweep has {len(c)} runs, fewer than min_runs={min_runs} for one level")
    counts = np.bincount(keys)
    new, level, acc = np.empty_like(counts), 0, 0
    for k in range(len(counts) - 1, -1, -1):  # from the top: accumulate bins until a level is full
        new[k] = level
        acc += counts[k]
        if acc >= min_runs:
            level, acc = level + 1, 0
    if acc:  # the bottom bins left over: merge into the lowest full level
        new[new == level] = level - 1
    top_down = new[keys]
    return top_down.max() - top_down


@dataclass(frozen=True)
class Split:
    """A calibration split: fit the runs of ``train`` (boolean mask), predict those of ``test``."""

    level: int  #: the held-out level
    n_levels: int
    train: np.ndarray
    test: np.ndarray
    log10_c_max_fit: float  #: log10 of the largest fitted compute

    def frames(self, df) -> tuple[pd.DataFrame, pd.DataFrame]:
        return df[self.train].reset_index(drop=True), df[self.test].reset_index(drop=True)


def rollout_splits(df, *, budget: str | None = None, width: float = LEVEL_WIDTH, min_runs: int = MIN_LEVEL_RUNS,
                   min_fit_runs: int = MIN_FIT_RUNS) -> list[Split]:
    """Fit levels ``0..k``, predict level ``k+1``, for every ``k`` that leaves ``min_fit_runs`` to fit.

    The last split is :func:`leave_largest_out`. Raises :class:`SweepError` when no split has
    enough runs to fit (fewer than two levels, or too few runs below the largest).
    """
    min_fit_runs = _check_int("min_fit_runs", min_fit_runs, 1)
    levels = compute_levels(df, budget=budget, width=width, min_runs=min_runs)
    c = log10_compute(df)
    n = int(levels.max()) + 1
    out = []
    for k in range(1, n):
        train, test = levels < k, levels == k
        if train.sum() >= min_fit_runs:
            out.append(Split(k, n, train, test, float(c[train].max())))
    if not out:
        raise SweepError(f"no rollout split: the sweep's {len(c)} runs form {n} compute level(s) of at least "
                         f"{min_runs} runs, and no level has {min_fit_runs} runs below it to fit")
    return out


def leave_largest_out(df, **kwargs) -> Split:
    """Fit every level but the largest, predict the largest (see :func:`rollout_splits`)."""
    return rollout_splits(df, **kwargs)[-1]


def isoflop_slices(df, *, gap: float = SLICE_GAP, span: float = SLICE_SPAN, sizes: int = SLICE_SIZES) -> list[np.ndarray]:
    """Index arrays of the runs that form IsoFLOP curves: equal compute, several model sizes.

    Runs sorted by log10 C are chained while consecutive values differ by at most ``gap``
    decades; a chain that spans at most ``span`` decades and holds at least ``sizes`` distinct N
    is a slice. Grid sweeps (one size per compute) and continuous checkpoint sweeps have none.
    """
    c = log10_compute(df)
    order = np.argsort(c, kind="stable")
    breaks = np.flatnonzero(np.diff(c[order]) > gap) + 1
    out = []
    for chain in np.split(order, breaks):
        if np.ptp(c[chain]) <= span and df["N"].iloc[chain].nunique() >= sizes:
            out.append(np.sort(chain))
    return out


# ------------------------------------------------------------------ scores
def unique_tokens(post, test) -> dict:
    """``{"U": ...}`` of the runs ``test`` for a law that reads unique tokens (``"muennighoff"``), else ``{}``."""
    law = getattr(post, "law", None)
    return {"U": test["U"].to_numpy(float)} if "U" in getattr(law, "covariates", ()) and "U" in test else {}


def held_out_log_score(post, N, D, loss, U=None) -> np.ndarray:
    """Log predictive density of each held-out log loss (mean over draws of the noise density); for a
    mixture of laws (:func:`bayesdistill.average`) the weighted mixture of its laws' densities.
    ``U``: the runs' unique tokens, for a law that reads them."""
    from scipy import stats
    from scipy.special import logsumexp

    if hasattr(post, "parts"):
        per = [np.log(w) + held_out_log_score(p, N, D, loss) for p, w in zip(post.components, post.weights) if w > 0]
        return logsumexp(np.stack(per), axis=0)

    mu = np.asarray(post.log_loss_draws(N, D) if U is None else post.log_loss_draws(N, D, U), dtype=float)
    scale = np.broadcast_to(np.asarray(post.noise_scale(N, D), dtype=float), mu.shape)
    z = (np.log(np.asarray(loss, float))[None, :] - mu) / scale
    if post.noise == "student_t":
        lp = stats.t.logpdf(z, post.draws(["nu"])["nu"][:, None]) - np.log(scale)
    else:
        lp = stats.norm.logpdf(z) - np.log(scale)
    return logsumexp(lp, axis=0) - math.log(lp.shape[0])


#: nominal levels of the reliability diagram (central predictive intervals)
RELIABILITY_LEVELS = (0.5, 0.8, 0.9, 0.95)


def _interval(pred) -> tuple:
    """The lower and upper predictive quantiles of a :meth:`Posterior.predict` table."""
    lo, hi = (c for c in pred.columns if c.startswith("pred_q"))
    return pred[lo].to_numpy(), pred[hi].to_numpy()


def score(post, test, seed: int = 1) -> dict:
    """Coverage, error, widths and log score at the held-out runs ``test`` (columns N, D, loss);
    ``covered`` counts the runs inside each central interval of :data:`RELIABILITY_LEVELS`."""
    N, D, y = (_positive_column(test, c) for c in ("N", "D", "loss"))
    kw = unique_tokens(post, test)
    preds = {prob: post.predict(N, D, prob=prob, seed=seed, **kw) for prob in RELIABILITY_LEVELS}
    inside = {prob: (y >= _interval(p)[0]) & (y <= _interval(p)[1]) for prob, p in preds.items()}
    p90, p50, inside90, inside50 = preds[0.9], preds[0.5], inside[0.9], inside[0.5]
    return {
        "n": len(y), "covered": {str(prob): int(v.sum()) for prob, v in inside.items()},
        "covered50": int(inside50.sum()), "covered90": int(inside90.sum()),
        "coverage50": float(inside50.mean()), "coverage90": float(inside90.mean()),
        "median_rel_error": float(np.median(np.abs(p90["median"] / y - 1))),
        "rel_errors": [float(v) for v in np.abs(p90["median"] / y - 1)],
        "median_rel_width50": float(np.median((p50["pred_q75"] - p50["pred_q25"]) / p50["median"])),
        "median_rel_width90": float(np.median((p90["pred_q95"] - p90["pred_q05"]) / p90["median"])),
        "log_score": float(held_out_log_score(post, N, D, y, **kw).mean()),
        "decades_beyond": float(np.median(p90["decades_beyond"])) if "decades_beyond" in p90 else float("nan"),
    }


def pool(scores: list[dict]) -> dict:
    """Pool :func:`score` results over splits: coverage over all held-out runs, median error over
    all of them, median widths and mean log score per run."""
    n = sum(s["n"] for s in scores)
    if n == 0:
        return {"n": 0}
    errs = [e for s in scores for e in s["rel_errors"]]
    return {
        "n": n, "splits": len(scores),
        "coverage50": sum(s["covered50"] for s in scores) / n,
        "coverage90": sum(s["covered90"] for s in scores) / n,
        "median_rel_error": float(np.median(errs)),
        "median_rel_width50": float(np.median([s["median_rel_width50"] for s in scores])),
        "median_rel_width90": float(np.median([s["median_rel_width90"] for s in scores])),
        "log_score": sum(s["log_score"] * s["n"] for s in scores) / n,
        "reliability": {str(prob): sum(s["covered"][str(prob)] for s in scores) / n
                        for prob in RELIABILITY_LEVELS if all("covered" in s for s in scores)},
    }


# ------------------------------------------------------------------ data
def real_sweeps() -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Every real sweep of the project by name, and the ones skipped with the reason.

    Gadre et al. per training set, Gemstones, Datablations, the Porian et al. IsoFLOP sweeps on two
    datasets and the OLMo-2 ladder (shipped); Epoch's Chinchilla points
    and the Misfitting last checkpoints (read from :func:`bayesdistill.datasets.shared_data_dir`,
    never shipped: skipped with the reason when absent).
    """
    from ..data.datasets import load_chinchilla_points, load_dataset, load_misfitting

    out, skipped = {}, {}
    try:
        out["chinchilla_points"] = load_chinchilla_points()[["N", "D", "loss"]]
    except FileNotFoundError as exc:
        skipped["chinchilla_points"] = f"skipped: {exc}"
    gadre = load_dataset("gadre_c4")
    for name in sorted(gadre["dataset"].unique()):
        out[f"gadre_c4 / {name}"] = load_dataset("gadre_c4", dataset=name)[["N", "D", "loss"]]
    out["gemstones_cool_end"] = load_dataset("gemstones_cool_end")[["N", "D", "loss"]]
    out["datablations_single_epoch"] = load_dataset("datablations_single_epoch")[["N", "D", "loss"]]
    try:
        out["misfitting_last_ckpt"] = load_misfitting()[["N", "D", "loss"]]
    except FileNotFoundError as exc:
        skipped["misfitting_last_ckpt"] = f"skipped: {exc}"
    for name in ("porian_rw_cosine", "porian_owt2_cosine", "olmo2_ladder"):
        out[name] = load_dataset(name)[["N", "D", "loss"]]
    return out, skipped
