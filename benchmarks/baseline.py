"""Baseline: the standard Chinchilla fit of Epoch AI (Besiroglu et al. 2024).

Fits ``L(N, D) = E + A / N^alpha + B / D^beta`` to the 240 Chinchilla Figure 4 points
extracted by Epoch AI, by minimising a summed Huber loss (delta = 1e-3) on log
residuals with L-BFGS-B from a 4,500-point grid of starts, then bootstrapping the
points (refitting from the best grid point) for 90% intervals. The objective and its
gradient are vectorised NumPy, so no autodiff framework is needed.

Run ``python benchmarks/baseline.py [--n-boot 4000] [--no-grid]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

HUBER_DELTA = 1e-3
PARAM_NAMES = ("E", "A", "B", "alpha", "beta")
#: Epoch AI's published fit on the same 240 points (Besiroglu et al. 2024, Table 1).
EPOCH_FIT = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.3478, "beta": 0.3658}
#: Start grid of Epoch's replication: a, b, e, alpha, beta (6*6*5*5*5 = 4500 starts).
GRID_AXES = (
    (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    (-1.0, -0.5, 0.0, 0.5, 1.0),
    (0.0, 0.5, 1.0, 1.5, 2.0),
    (0.0, 0.5, 1.0, 1.5, 2.0),
)
# Tight tolerances: the summed Huber objective is O(1e-3), so SciPy's default
# gtol = 1e-5 would stop most starts early.
LBFGS_OPTIONS = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12}


def data_path() -> Path:
    """Path of Epoch's ``svg_extracted_data.csv`` (env ``BAYESDISTILL_SHARED_DATA``)."""
    env = os.environ.get("BAYESDISTILL_SHARED_DATA")
    if env:
        root = Path(env)
    else:
        root = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return root / "epoch_chinchilla" / "svg_extracted_data.csv"


def load_points(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Load the Chinchilla points used by Epoch's main fit.

    Parameters
    ----------
    path : path-like, optional
        CSV file; defaults to :func:`data_path`.

    Returns
    -------
    pandas.DataFrame
        Columns ``N`` (model size), ``C`` (training FLOP), ``D = C / (6 N)`` and
        ``L`` (loss); the five highest-loss points dropped (240 rows).

    Raises
    ------
    FileNotFoundError
        If the CSV is absent.
    """
    path = Path(path) if path is not None else data_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"Epoch Chinchilla data not found at {path}. Set BAYESDISTILL_SHARED_DATA "
            "to the shared/data folder holding epoch_chinchilla/svg_extracted_data.csv."
        )
    raw = pd.read_csv(path)
    N = raw["Model Size"].to_numpy(float)
    C = raw["Training FLOP"].to_numpy(float)
    L = raw["loss"].to_numpy(float)
    keep = L < np.sort(L)[-5]
    out = pd.DataFrame({"N": N, "C": C, "D": C / (6.0 * N), "L": L})
    return out[keep].reset_index(drop=True)


def objective(params, logN, logD, logL, delta: float = HUBER_DELTA):
    """Return the summed Huber loss of log residuals and its analytic gradient.

    Parameters
    ----------
    params : array_like, shape (5,)
        ``(a, b, e, alpha, beta)`` with ``A = exp(a)``, ``B = exp(b)``, ``E = exp(e)``.
    logN, logD, logL : ndarray
        Logs of model size, tokens and loss.
    delta : float, optional
        Huber threshold.

    Returns
    -------
    value : float
        ``sum(huber(log Lhat - log L))`` with
        ``log Lhat = logsumexp(a - alpha log N, b - beta log D, e)``.
    grad : ndarray, shape (5,)
        Gradient with respect to ``params``.
    """
    a, b, e, alpha, beta = params
    t1 = a - alpha * logN
    t2 = b - beta * logD
    m = np.maximum(np.maximum(t1, t2), e)
    w1, w2, w3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(e - m)
    s = w1 + w2 + w3
    r = m + np.log(s) - logL
    absr = np.abs(r)
    value = np.where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta)).sum()
    g = np.clip(r, -delta, delta) / s
    g1, g2 = g * w1, g * w2
    grad = np.array([g1.sum(), g2.sum(), (g * w3).sum(), -(g1 @ logN), -(g2 @ logD)])
    return float(value), grad


def published_objective(params, logN, logD, logL, delta: float = HUBER_DELTA) -> float:
    """The objective as Epoch AI's notebook writes it: value only, no gradient.

    ``minimize(..., method="L-BFGS-B")`` then differentiates it by finite
    differences with SciPy's default tolerances (the recipe people copy).
    """
    a, b, e, alpha, beta = params
    pred = np.log(np.exp(a - alpha * logN) + np.exp(b - beta * logD) + np.exp(e))
    r = logL - pred
    return float(np.sum(np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))))


def _fit(x0, logN, logD, logL, published: bool = False):
    if published:
        with np.errstate(over="ignore", invalid="ignore"):
            res = minimize(published_objective, x0, args=(logN, logD, logL), method="L-BFGS-B")
    else:
        res = minimize(objective, x0, args=(logN, logD, logL), method="L-BFGS-B",
                       jac=True, options=LBFGS_OPTIONS)
    return res.x, float(res.fun)


def to_natural(x) -> dict:
    """Map ``(a, b, e, alpha, beta)`` to a dict of ``E, A, B, alpha, beta``."""
    a, b, e, alpha, beta = (float(v) for v in x)
    E, A, B = np.exp(e), np.exp(a), np.exp(b)
    return {"E": E, "A": A, "B": B, "alpha": alpha, "beta": beta}


def grid_fit(logN, logD, logL, grid=GRID_AXES, published: bool = False) -> dict:
    """L-BFGS-B from every start of the grid; keep the lowest objective.

    ``published=True`` runs the recipe as published (finite-difference
    gradients, SciPy's default tolerances, :func:`published_objective`);
    the default is our faster version (analytic gradient, tight tolerances).

    Returns
    -------
    dict
        ``E, A, B, alpha, beta, objective, n_starts, seconds`` and ``x`` (the raw
        ``(a, b, e, alpha, beta)`` optimum).
    """
    t0 = time.perf_counter()
    best_x, best_f, n = None, np.inf, 0
    for x0 in itertools.product(*grid):
        x, f = _fit(np.array(x0), logN, logD, logL, published)
        n += 1
        if np.isfinite(f) and f < best_f:
            best_x, best_f = x, f
    return {**to_natural(best_x), "objective": best_f, "n_starts": n,
            "seconds": time.perf_counter() - t0, "x": best_x}


def bootstrap(logN, logD, logL, best, n_boot: int = 4000, seed: int = 0, published: bool = False):
    """Refit on ``n_boot`` resamples of the points, starting from ``best`` each time.

    Parameters
    ----------
    logN, logD, logL : ndarray
        Logged data.
    best : dict or array_like
        Result of :func:`grid_fit` (uses ``best["x"]``) or a raw 5-vector start.
    n_boot : int, optional
        Number of resamples.
    seed : int, optional
        Seed of the NumPy generator.
    published : bool, optional
        Refit with the recipe as published (see :func:`grid_fit`).

    Returns
    -------
    samples : ndarray, shape (n_boot, 5)
        Columns ``E, A, B, alpha, beta``.
    seconds : float
        Wall time.
    """
    x0 = np.asarray(best["x"] if isinstance(best, dict) else best, float)
    rng = np.random.default_rng(seed)
    n = len(logL)
    out = np.empty((n_boot, 5))
    t0 = time.perf_counter()
    for i in range(n_boot):
        idx = rng.integers(0, n, n)
        x, _ = _fit(x0, logN[idx], logD[idx], logL[idx], published)
        out[i] = list(to_natural(x).values())
    return out, time.perf_counter() - t0


def run_baseline(n_boot: int = 4000, grid: bool = True, seed: int = 0, published: bool = False) -> dict:
    """Full baseline: load data, grid fit (or single start at Epoch's fit), bootstrap.

    ``published=True``: finite-difference gradients and SciPy's defaults, as
    in Epoch AI's notebook (see :func:`grid_fit`).

    Returns
    -------
    dict
        ``n_points``, ``grid_seconds``, ``bootstrap_seconds``, ``total_seconds``,
        ``point`` (dict with E, A, B, alpha, beta, a, objective, n_starts) and
        ``intervals`` (name -> (5%, 95%) for E, A, B, alpha, beta, a).
    """
    t0 = time.perf_counter()
    df = load_points()
    logN, logD, logL = (np.log(df[c].to_numpy()) for c in ("N", "D", "L"))
    if grid:
        best = grid_fit(logN, logD, logL, published=published)
    else:
        x0 = np.array([np.log(EPOCH_FIT["A"]), np.log(EPOCH_FIT["B"]),
                       np.log(EPOCH_FIT["E"]), EPOCH_FIT["alpha"], EPOCH_FIT["beta"]])
        t1 = time.perf_counter()
        x, f = _fit(x0, logN, logD, logL)
        best = {**to_natural(x), "objective": f, "n_starts": 1,
                "seconds": time.perf_counter() - t1, "x": x}
    point = {k: best[k] for k in (*PARAM_NAMES, "objective", "n_starts")}
    point["a"] = best["beta"] / (best["alpha"] + best["beta"])
    intervals = {}
    boot_seconds = 0.0
    if n_boot > 0:
        samples, boot_seconds = bootstrap(logN, logD, logL, best, n_boot, seed, published)
        a_exp = samples[:, 4] / (samples[:, 3] + samples[:, 4])
        cols = dict(zip(PARAM_NAMES, samples.T, strict=True)) | {"a": a_exp}
        intervals = {k: tuple(np.percentile(v, [5, 95])) for k, v in cols.items()}
    return {"n_points": len(df), "grid_seconds": best["seconds"],
            "bootstrap_seconds": boot_seconds, "n_boot": n_boot,
            "total_seconds": time.perf_counter() - t0,
            "point": point, "intervals": intervals}


def main(argv=None) -> dict:
    """Command-line entry point: run the baseline and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=4000,
                        help="bootstrap resamples")
    parser.add_argument("--no-grid", action="store_true",
                        help="one start at Epoch's published fit, not the grid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--published", action="store_true",
                        help="finite-difference gradients and SciPy defaults, as Epoch's notebook")
    args = parser.parse_args(argv)
    res = run_baseline(n_boot=args.n_boot, grid=not args.no_grid, seed=args.seed, published=args.published)
    p, ci = res["point"], res["intervals"]
    print(f"points: {res['n_points']}  starts: {p['n_starts']}  "
          f"objective: {p['objective']:.6g}")
    print(f"grid: {res['grid_seconds']:.1f} s  bootstrap ({res['n_boot']}): "
          f"{res['bootstrap_seconds']:.1f} s  total: {res['total_seconds']:.1f} s")
    print(f"{'param':>6} {'estimate':>11} {'5%':>11} {'95%':>11} {'Epoch':>9}")
    for k in (*PARAM_NAMES, "a"):
        lo, hi = ci.get(k, (np.nan, np.nan))
        ref = EPOCH_FIT.get(k, np.nan) if k != "a" else 0.3658 / (0.3478 + 0.3658)
        print(f"{k:>6} {p[k]:11.5g} {lo:11.5g} {hi:11.5g} {ref:9.4g}")
    return res


if __name__ == "__main__":
    main()


#: the "before" of the sampler benchmarks (issue 19): the Laplace-whitened sampler in the model's own
#: coordinates, before the sampler's coordinates (inference/coordinates.py). The earlier baseline, the
#: code before the Laplace step (1bfef0e), no longer runs on the current stack (it imports ArviZ 0.23).
SAMPLER_BASELINE_COMMIT = "51dc536"


def extract_code(commit: str, dest: str) -> str | None:
    """Write this repository's ``bayesdistill`` package (with ``data/`` and ``models/``) at ``commit`` into ``dest``.

    Set ``BAYESDISTILL_SHARED_DATA`` (:func:`shared_env`) for the unshipped sources.

    Returns None, or the reason it could not (no git, or no such commit), so that a benchmark can
    run an earlier version of the code in the same run as the current one (``PYTHONPATH=dest``).
    """
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    try:
        archive = subprocess.run(["git", "-C", str(repo), "archive", commit, "bayesdistill", "data", "models"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"code at {commit} not available: {exc}"
    return None


def shared_env(code_dir: str) -> dict:
    """The environment of a child process that runs the package found in ``code_dir``.

    ``PYTHONPATH`` points there (run the child with ``cwd=code_dir`` too: ``python -c`` puts the
    working folder first on ``sys.path``) and ``BAYESDISTILL_SHARED_DATA`` at this checkout's
    shared sources, which the copy cannot find relative to itself.
    """
    import os

    from bayesdistill.data.datasets import shared_data_dir

    return dict(os.environ, PYTHONPATH=code_dir, BAYESDISTILL_SHARED_DATA=str(shared_data_dir()))

