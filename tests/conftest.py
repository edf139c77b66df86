"""Shared fixtures: synthetic sweeps from known truth and small fitted posteriors.

Fits are expensive (NUTS compiles per law and sweep shape), so every fit that
more than one test needs is made once per session here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesdistill as bd

#: Chinchilla-like truth (natural units)
CHINCHILLA_TRUTH = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37}
#: Busbridge et al. (2025) Eq. 1 truth; gamma clearly away from 1
BUSBRIDGE_TRUTH = {"E": 1.7, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37, "gamma": 0.8}

#: Kaplan et al. (2020) Eq. 1.5 with their fitted values (Table 2)
KAPLAN_TRUTH = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}

TRUTHS = {"chinchilla": CHINCHILLA_TRUTH, "busbridge": BUSBRIDGE_TRUTH, "kaplan": KAPLAN_TRUTH}
SIZES = tuple(np.geomspace(1e7, 1e9, 6))
TOKENS_PER_PARAM = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)

#: Every test fit runs its chains one after another on one device: the draws then depend only on the
#: seed, not on the core count (``chain_method="auto"`` splits chains over the CPU cores), and the
#: sampler compiles ~2x faster than vectorised chains.
#: ``retry=False``: a small fit that fails its review is not sampled again with stronger settings
#: (``bd.fit``'s default), which would compile a second sampler per setting; the retry has its own tests.
PINNED = {"chain_method": "sequential", "progress_bar": False, "retry": False}
#: small sampler settings: fine for point checks, may fail the review (FitWarning)
FAST = {"chains": 2, "draws": 200, "warmup": 200, **PINNED}
#: moderate settings for the shared fits; whether they pass the review is not asserted on them
#: (2 x 500 draws sit too close to the R-hat threshold 1.01: see ``converged_fit``)
DECENT = {"chains": 2, "draws": 500, "warmup": 300, **PINNED}
#: settings whose review passes with a wide margin on the Chinchilla sweep: over seeds 1-6, max
#: R-hat 1.001-1.003 (threshold 1.01) and min ESS 1396-2256 (threshold 400), no divergences
CONVERGED = {"chains": 4, "draws": 1000, "warmup": 500, **PINNED}


def true_loss(law: str, theta: dict, N, D) -> np.ndarray:
    """Noise-free loss of the named law at (N, D), computed in numpy."""
    N, D = np.asarray(N, float), np.asarray(D, float)
    if law == "chinchilla":
        return theta["E"] + theta["A"] * N ** -theta["alpha"] + theta["B"] * D ** -theta["beta"]
    if law == "busbridge":
        inner = theta["A"] * N ** -theta["alpha"] + theta["B"] * D ** -theta["beta"]
        return theta["E"] + inner ** theta["gamma"]
    if law == "kaplan":
        ratio = theta["alpha_N"] / theta["alpha_D"]
        return ((theta["N_c"] / N) ** ratio + theta["D_c"] / D) ** theta["alpha_D"]
    raise ValueError(f"no truth for law {law!r}")


def synthetic_sweep(
    law: str = "chinchilla",
    theta: dict | None = None,
    sizes=SIZES,
    tokens_per_param=TOKENS_PER_PARAM,
    noise: float = 0.01,
    seed: int = 0,
) -> pd.DataFrame:
    """A grid sweep (``N``, ``D``, ``loss``) drawn from a known law.

    Every model size is trained at every tokens-per-parameter ratio; the loss is
    the true law times lognormal noise ``exp(noise * z)``, ``z ~ N(0, 1)``.
    """
    theta = dict(TRUTHS[law] if theta is None else theta)
    N, tpp = np.meshgrid(np.asarray(sizes, float), np.asarray(tokens_per_param, float), indexing="ij")
    N, D = N.ravel(), (N * tpp).ravel()
    rng = np.random.default_rng(seed)
    loss = true_loss(law, theta, N, D) * np.exp(noise * rng.standard_normal(N.shape))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def base(n: int = 4) -> pd.DataFrame:
    """A valid supervised sweep of ``n`` runs."""
    return pd.DataFrame({
        "N": np.geomspace(1e7, 1e9, n),
        "D": np.geomspace(2e8, 2e10, n),
        "loss": np.linspace(3.5, 2.5, n),
    })


def distil(n: int = 3) -> pd.DataFrame:
    """A valid distillation sweep (student as N_S, D_S; teacher as N_T, D_T, L_T)."""
    return pd.DataFrame({
        "N_S": np.geomspace(1e7, 1e8, n),
        "D_S": np.geomspace(2e8, 2e9, n),
        "loss": np.linspace(3.4, 3.0, n),
        "N_T": [1e9] * n,
        "D_T": [2e10] * n,
        "L_T": [2.4] * n,
    })


def quiet_fit(*args, **kwargs):
    """``bd.fit`` with FAST settings, tolerating a failed review (tiny fits may emit FitWarning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        return bd.fit(*args, **{**FAST, **kwargs})


def recorded_fit(*args, **kwargs):
    """``bd.fit`` with DECENT settings; returns the posterior and the FitWarnings it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bd.FitWarning)
        post = bd.fit(*args, **{**DECENT, **kwargs})
    return post, [w for w in caught if issubclass(w.category, bd.FitWarning)]


@pytest.fixture(scope="session")
def chinchilla_sweep() -> pd.DataFrame:
    """6 sizes x 7 tokens-per-parameter ratios (42 runs) from CHINCHILLA_TRUTH."""
    return synthetic_sweep("chinchilla", seed=0)


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_sweep):
    """(posterior, FitWarnings) of the Chinchilla law on ``chinchilla_sweep``."""
    return recorded_fit(chinchilla_sweep, "chinchilla", seed=1)


@pytest.fixture(scope="session")
def chinchilla_post(chinchilla_fit):
    return chinchilla_fit[0]


@pytest.fixture(scope="session")
def converged_fit(chinchilla_sweep):
    """(posterior, FitWarnings) of the Chinchilla law at CONVERGED settings."""
    return recorded_fit(chinchilla_sweep, "chinchilla", seed=2, **CONVERGED)


@pytest.fixture(scope="session")
def busbridge_sweep() -> pd.DataFrame:
    """A wider grid (8 sizes up to 3e9 x 7 ratios): gamma needs range in N and D."""
    return synthetic_sweep("busbridge", sizes=np.geomspace(1e7, 3e9, 8), seed=0)


@pytest.fixture(scope="session")
def busbridge_fit(busbridge_sweep):
    # seed 2: with seed 1 this 2 x 500 fit happens to reach R-hat 1.02 (threshold 1.01) on A under the
    # default discrepancy; seeds 2-9 all pass, with and without it
    return recorded_fit(busbridge_sweep, "busbridge", seed=2)


@pytest.fixture(scope="session")
def busbridge_post(busbridge_fit):
    return busbridge_fit[0]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Group tests for pytest-xdist (``make test`` runs two workers with ``--dist loadgroup``).

    Each test module stays on one worker, so its module-scoped fits are made once; the notebooks
    are the longest tests and are spread one by one. Without xdist the marks change nothing.
    """
    for item in items:
        module = item.module.__name__ if item.module is not None else item.nodeid
        if module != "test_notebooks":
            item.add_marker(pytest.mark.xdist_group(module))


#: memory maps of a worker above which the compiled code is dropped after a test module
MAP_LIMIT = 30_000


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's in-memory compiled programs after a test module if the worker maps too much.

    Every compilation keeps its code mapped in the process, and the kernel's memory-map limit
    (``vm.max_map_count``, 65530 here) ends a process that reaches it. The samplers are compiled
    once and kept (at most ``engine.MAX_PROGRAMS``), so most modules reuse those of the modules
    before them; the other compiled array code is dropped only above ``MAP_LIMIT`` maps.
    """
    yield
    try:
        with open("/proc/self/maps") as f:
            n = sum(1 for _ in f)
    except OSError:
        return
    if n > MAP_LIMIT:
        import jax

        from bayesdistill.inference import engine

        engine.clear_programs()
        jax.clear_caches()
