"""The law's misfit beyond the fitted compute: ``kappa`` and ``omega``, and their population prior.

With ``discrepancy="compute"`` a run ``e`` decades of compute (C = 6 N D) beyond the largest fitted
run gets, on top of the ``distance`` model's noise scale ``s``, a misfit ``delta`` of standard
deviation ``sqrt((kappa e)^2 + omega^2 e)``: a random drift (``kappa`` per decade) plus a random
walk in log C (``omega`` per square-root decade, a Wiener process started at the fitted edge). The
walk grows fastest just past the edge, as misfits measured on real ladders do: the law fitted to
the budgets below misses the next budget, a tenth of a decade up, by as much as ~1%, while
predictions two decades out are off by a few percent, not twenty.

Learning (:func:`loglik_grid`). The misfit is *systematic*: the runs of one held-out level share it
(``delta_i = a_i z`` with one ``z ~ N(0, 1)`` per level, ``a_i = sqrt((kappa e_i)^2 + omega^2 e_i)``),
so a level is one observation of the misfit, not ``n``. The likelihood of ``(kappa, omega)`` on a
grid is the inner posterior predictive density of the held-out level, with ``z`` integrated out by
adaptive Gauss-Hermite quadrature (Student-t noise on each run).

The prior (:func:`log_prior_grid`). By default ``kappa`` and ``omega`` get the *population* prior
(family ``"population"``): a hierarchical fit across the public sweeps
(:func:`bayesdistill.inference.population.fit_population`), each sweep's evidence the prequential
likelihood of its IsoFLOP rollout (fit levels ``0..k``, predict ``k+1``, for every ``k``), ``kappa_s ~ HalfNormal(h_kappa)``,
``omega_s ~ HalfNormal(h_omega)``, log-uniform hyperpriors; the prior of a new sweep is the
population predictive (the half-normals mixed over the hyperposterior). It ships in
``models/misfit_prior.json`` with the sweeps it came from; ``make misfit-prior`` refits it. A
sweep's own leave-last-level-out evidence (:mod:`.kappa`) then updates it. A user's ``Prior`` on
either site replaces that site's population marginal.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from .._files import shipped_file
from ..errors import BayesDistillError
from .model import MISFIT_SITES, misfit_sd

#: grids (quadratic spacing: fine near 0, where the mass of small misfits lies)
KAPPA_GRID = 0.3 * np.linspace(0.0, 1.0, 25) ** 2
OMEGA_GRID = 0.15 * np.linspace(0.0, 1.0, 31) ** 2
#: Gauss-Hermite nodes of the level-shared misfit integral
QUADRATURE_NODES = 7
#: most inner-posterior draws the likelihood averages over (resampled by weight beyond)
MAX_DRAWS = 200
#: the shipped population prior
POPULATION_FILE = shipped_file("models", "misfit_prior.json")


def node_widths(grid) -> np.ndarray:
    """Trapezoid widths of a grid's nodes (the cell each node stands for)."""
    g = np.asarray(grid, float)
    d = np.diff(g)
    return np.concatenate([[d[0] / 2], (d[1:] + d[:-1]) / 2, [d[-1] / 2]])


def log_node_area() -> np.ndarray:
    """Log area of each grid node's cell (``KAPPA_GRID x OMEGA_GRID``)."""
    return np.log(node_widths(KAPPA_GRID))[:, None] + np.log(node_widths(OMEGA_GRID))[None, :]


# ------------------------------------------------------------------ likelihood
def _t_logpdf(r, v, nu):
    from scipy.special import gammaln

    if nu is None:
        return -0.5 * (r * r / v + np.log(2 * np.pi * v))
    return (gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi * v)
            - (nu + 1) / 2 * np.log1p(r * r / (v * nu)))


def loglik_grid(log_y, mu, scale, nu, e, weights=None, seed: int = 0) -> np.ndarray:
    """Log likelihood of ``(kappa, omega)`` on ``KAPPA_GRID x OMEGA_GRID`` from a held-out level.

    ``log_y`` (n,) are the held-out runs' log losses, ``e`` (n,) their decades of compute beyond
    the inner fit; ``mu``, ``scale`` (S, n) are the inner posterior's law log loss and noise scale
    per draw, ``nu`` (S,) its Student-t degrees of freedom (None: Gaussian) and ``weights`` (S,)
    the draws' importance weights (None: equal). The runs share one misfit draw ``z`` (module
    docstring), integrated by adaptive Gauss-Hermite quadrature around its conditional mode; the
    draws are averaged (more than :data:`MAX_DRAWS` are first resampled by weight, seeded).
    """
    from scipy.special import logsumexp

    log_y, e = np.asarray(log_y, float), np.asarray(e, float)
    mu = np.asarray(mu, float)
    scale = np.broadcast_to(np.asarray(scale, float), mu.shape)
    S = mu.shape[0]
    lb = np.full(S, -np.log(S)) if weights is None else np.log(np.maximum(np.asarray(weights, float), 1e-300))
    lb = lb - logsumexp(lb)
    if S > MAX_DRAWS:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 20]))
        idx = rng.choice(S, size=MAX_DRAWS, p=np.exp(lb))
        mu, scale, lb = mu[idx], scale[idx], np.full(MAX_DRAWS, -np.log(MAX_DRAWS))
        nu = None if nu is None else np.asarray(nu, float)[idx]
    nu_b = None if nu is None else np.asarray(nu, float)[:, None, None]     # (S, 1, 1)
    r, v = (log_y[None, :] - mu)[:, None, :], (scale ** 2)[:, None, :]     # (S, 1, n)
    x, wq = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    lwq = np.log(wq / wq.sum())
    out = np.empty((len(KAPPA_GRID), len(OMEGA_GRID)))
    for i, k in enumerate(KAPPA_GRID):
        a = misfit_sd(k, OMEGA_GRID[:, None], e[None, :])[None, :, :]      # (1, W, n)
        prec = 1.0 + np.sum(a * a / v, axis=-1)                            # (S, W): the z posterior, Gaussian
        zhat = np.sum(a * r / v, axis=-1) / prec
        sz = 1.0 / np.sqrt(prec)
        terms = []
        for xq, lw in zip(x, lwq):
            z = zhat + sz * xq                                              # (S, W)
            lp = _t_logpdf(r - a * z[..., None], v, nu_b).sum(-1)           # (S, W)
            # importance ratio N(z; 0, 1) / N(z; zhat, sz^2) of the shifted rule
            terms.append(lp - 0.5 * z * z + 0.5 * xq * xq + np.log(sz) + lw)
        lint = logsumexp(np.stack(terms), axis=0)                          # (S, W)
        out[i] = logsumexp(lint + lb[:, None], axis=0)
    return out


def level_evidence(post, test, weights=None, seed: int | None = None) -> np.ndarray:
    """:func:`loglik_grid` from held-out runs ``test`` (columns N, D, loss) beyond ``post``'s fitted runs.

    ``post`` is read as its ``distance`` posterior (any misfit draws it holds are ignored); ``e`` is
    :meth:`Posterior.decades_beyond`; ``weights`` are its draws' importance weights (None: equal);
    ``seed`` defaults to the fit's.
    """
    N, D = test["N"].to_numpy(float), test["D"].to_numpy(float)
    U = test["U"].to_numpy(float) if "U" in test and "U" in post.law.covariates else None  # unique tokens
    mu = np.asarray(post.log_loss_draws(N, D) if U is None else post.log_loss_draws(N, D, U=U), float)
    scale = np.broadcast_to(np.asarray(post.noise_scale(N, D, misfit=False), float), mu.shape)
    nu = np.asarray(post.draws(["nu"])["nu"]) if post.noise == "student_t" else None
    seed = int(post.config.get("seed", 0)) if seed is None else seed
    return loglik_grid(np.log(test["loss"].to_numpy(float)), mu, scale, nu, post.decades_beyond(N, D),
                       weights=weights, seed=seed)


# ------------------------------------------------------------------ priors
@lru_cache(maxsize=4)
def _population_cached(path: str, mtime: float) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            spec = json.load(fh)
        ld = np.asarray(spec["log_density"], float)
        grids = (np.asarray(spec["kappa_grid"], float), np.asarray(spec["omega_grid"], float))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BayesDistillError(f"cannot read the misfit population prior {path}: {exc}; rebuild it with "
                                "'make misfit-prior'") from exc
    if ld.shape != (len(KAPPA_GRID), len(OMEGA_GRID)) or not (
            np.allclose(grids[0], KAPPA_GRID) and np.allclose(grids[1], OMEGA_GRID)):
        raise BayesDistillError(f"the misfit population prior {path} was made on other grids than this "
                                "version's; rebuild it with 'make misfit-prior'")
    return {**spec, "log_density": ld}


def population(path=None) -> dict:
    """The shipped population prior of ``(kappa, omega)`` (``models/misfit_prior.json``)."""
    from pathlib import Path

    p = Path(path or POPULATION_FILE)
    if not p.is_file():
        raise BayesDistillError(f"the misfit population prior {p} is missing; it ships with a clone of the "
                                "repository (rebuild it with 'make misfit-prior') or give kappa and omega "
                                "priors of your own")
    return _population_cached(str(p), p.stat().st_mtime)


def _log_marginal(ld, axis_kept: int) -> np.ndarray:
    from scipy.special import logsumexp

    other = np.log(node_widths(OMEGA_GRID if axis_kept == 0 else KAPPA_GRID))
    return logsumexp(ld + (other[None, :] if axis_kept == 0 else other[:, None]), axis=1 - axis_kept)


def log_prior_grid(priors: dict, pop: dict | None = None) -> np.ndarray:
    """Log prior density of ``(kappa, omega)`` on the grid from the sites' priors.

    Family ``"population"`` on both: the population's joint density (``pop``, default the shipped
    one); on one: its marginal; any other prior: its own density (just inside 0 for half
    distributions). A site missing from ``priors`` is held at 0 (a fit saved before ``omega``).
    """
    import jax.numpy as jnp

    kinds = [priors.get(s) for s in MISFIT_SITES]
    if any(p is not None and p.family == "population" for p in kinds):
        pop = pop if pop is not None else population()
        ld = np.asarray(pop["log_density"], float)
    if all(p is not None and p.family == "population" for p in kinds):
        return ld
    parts = []
    for axis, (site, grid) in enumerate(zip(MISFIT_SITES, (KAPPA_GRID, OMEGA_GRID))):
        p = priors.get(site)
        if p is None:
            parts.append(np.where(grid == 0.0, 0.0, -np.inf))
        elif p.family == "population":
            parts.append(_log_marginal(ld, axis))
        else:
            parts.append(np.asarray(p.to_numpyro().log_prob(jnp.asarray(np.maximum(grid, 1e-9))), float))
    return parts[0][:, None] + parts[1][None, :]


def log_mass(log_density) -> np.ndarray:
    """Normalised log mass of each grid node (density times the node's cell)."""
    from scipy.special import logsumexp

    m = np.asarray(log_density, float) + log_node_area()
    return m - logsumexp(m)


def sample_misfit(log_post_mass, n: int, rng) -> dict[str, np.ndarray]:
    """``n`` draws of ``kappa`` and ``omega``: a node by its mass, then uniform within its cell."""
    p = np.exp(np.asarray(log_post_mass, float)).ravel()
    cell = rng.choice(p.size, size=n, p=p / p.sum())
    out = {}
    for site, grid, idx in zip(MISFIT_SITES, (KAPPA_GRID, OMEGA_GRID), np.unravel_index(cell, log_post_mass.shape)):
        lo = np.concatenate([[grid[0]], (grid[1:] + grid[:-1]) / 2])
        hi = np.concatenate([(grid[1:] + grid[:-1]) / 2, [grid[-1]]])
        out[site] = rng.uniform(lo[idx], hi[idx])
    return out


def misfit_draws(loglik, priors: dict, n: int, seed: int, pop: dict | None = None) -> tuple[dict, dict]:
    """Draws of ``kappa`` and ``omega`` from the grid posterior (``loglik`` None: the prior) and a summary."""
    lp = log_prior_grid(priors, pop)
    if loglik is not None:
        lp = lp + np.asarray(loglik, float)
    mass = log_mass(lp)
    draws = sample_misfit(mass, n, np.random.default_rng(np.random.SeedSequence([seed, 15])))
    held = [s for s in MISFIT_SITES if s not in priors]
    for s in held:
        draws[s] = np.zeros(n)
    info = {}
    for s, v in draws.items():
        info[s] = {"median": float(np.median(v)), "q05": float(np.quantile(v, 0.05)),
                   "q95": float(np.quantile(v, 0.95))}
    return draws, info
