"""Fit a law to a sweep with NUTS and review the fit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS, init_to_median

from .data import read_sweep
from .errors import BayesDistillError, SweepError
from .laws import get_law
from .model import make_model, resolve_priors
from .posterior import Posterior
from .review import warn_if_failed


def enable_compilation_cache() -> None:
    """Use JAX's persistent compilation cache unless the user configured one or opted out.

    The cache (``$BAYESDISTILL_JAX_CACHE``, default ``~/.cache/bayesdistill/jax``;
    set it to ``0`` to disable) saves the ~5-10 s XLA compilation of the NUTS
    sampler on every later fit of a sweep of the same size.
    """
    where = os.environ.get("BAYESDISTILL_JAX_CACHE", str(Path.home() / ".cache" / "bayesdistill" / "jax"))
    if where == "0" or jax.config.jax_compilation_cache_dir:
        return
    try:
        Path(where).mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _check_settings(chains, draws, warmup, seed, target_accept):
    for name, v, lo in (("chains", chains, 1), ("draws", draws, 1), ("warmup", warmup, 0)):
        if not isinstance(v, (int, np.integer)) or v < lo:
            raise BayesDistillError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BayesDistillError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0 < target_accept < 1:
        raise BayesDistillError(f"target_accept must be in (0, 1), got {target_accept!r}")


def fit(
    sweep,
    law="chinchilla",
    *,
    priors: dict | None = None,
    noise: str = "student_t",
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed: int = 0,
    target_accept: float = 0.9,
    dense_mass: bool = True,
    chain_method: str = "vectorized",
    progress_bar: bool = True,
    review: bool = True,
) -> Posterior:
    """Fit a scaling law to a sweep with NUTS.

    Parameters
    ----------
    sweep : path, DataFrame or Sweep
        Training runs (see :func:`bayesdistill.read_sweep`).
    law : str or Law
        ``"chinchilla"``, ``"busbridge"`` or any registered :class:`Law`.
    priors : dict, optional
        Custom priors by parameter name, e.g. ``{"E": ("lognormal", 0.5, 0.3)}``.
    noise : {"student_t", "normal"}
        Distribution of log-loss scatter around the law.
    chains, draws, warmup, seed : int
        NUTS settings; the same inputs and seed give identical draws.
    target_accept : float
        NUTS target acceptance probability (raise it if divergences appear).
    dense_mass : bool
        Adapt a dense mass matrix (cheap for these few parameters).
    chain_method : {"vectorized", "sequential", "parallel"}
        How chains run ("parallel" needs several JAX devices).
    progress_bar : bool
        Show numpyro's progress bar.
    review : bool
        Warn (:class:`FitWarning`) when a convergence check fails.

    Returns
    -------
    Posterior
    """
    sweep = read_sweep(sweep)
    law = get_law(law)
    _check_settings(chains, draws, warmup, seed, target_accept)
    pri = resolve_priors(law, noise, priors)
    rows = sweep.supervised
    if len(rows) == 0:
        raise SweepError(f"law {law.name!r} is a supervised law but the sweep has no supervised runs")
    n_par = len(pri)
    if len(rows) <= n_par:
        raise SweepError(
            f"{len(rows)} supervised runs cannot pin down law {law.name!r} with {n_par} parameters "
            f"({', '.join(pri)}); give more runs than parameters"
        )
    logN = jnp.log(jnp.asarray(rows["N"].to_numpy(), dtype=jnp.float32))
    logD = jnp.log(jnp.asarray(rows["D"].to_numpy(), dtype=jnp.float32))
    y = jnp.log(jnp.asarray(rows["loss"].to_numpy(), dtype=jnp.float32))
    centre = {"N": float(logN.mean()), "D": float(logD.mean())}
    model = make_model(law, pri, noise)
    kernel = NUTS(model, target_accept_prob=target_accept, dense_mass=dense_mass,
                  init_strategy=init_to_median(num_samples=15))
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method=chain_method, progress_bar=progress_bar)
    t0 = time.perf_counter()
    enable_compilation_cache()
    mcmc.run(jax.random.PRNGKey(seed), logN, logD, {k: jnp.float32(v) for k, v in centre.items()},
             log_loss=y, extra_fields=("diverging", "energy"))
    jax.block_until_ready(mcmc.get_samples())
    seconds = time.perf_counter() - t0
    constant = {"N": rows["N"].to_numpy(), "D": rows["D"].to_numpy(),
                "run_id": rows["run_id"].to_numpy(str), "group": rows["group"].to_numpy(str)}
    idata = az.from_numpyro(mcmc, constant_data=constant, coords={"run": np.arange(len(rows))},
                            dims={"log_loss": ["run"], **{k: ["run"] for k in constant}})
    config = {"chains": chains, "draws": draws, "warmup": warmup, "seed": seed,
              "target_accept": target_accept, "dense_mass": dense_mass, "seconds": seconds,
              "source": sweep.source}
    post = Posterior(idata, law, pri, noise, centre, config)
    if review:
        warn_if_failed(post.review())
    return post
