"""The posterior object: draws, predictions, review, summary, save and load.

A :class:`Posterior` wraps an arviz ``InferenceData`` whose ``posterior`` group
holds every coefficient in natural units under its own name, plus the noise
parameters and the sampler's internal sites (``log_A_c`` ...). It is saved as
netCDF with the law specification as JSON in the attributes (no pickle).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from . import __version__
from .errors import BayesDistillError, PosteriorFileError
from .laws import Law, law_from_spec
from .priors import Prior
from .review import Review, review_idata

ATTR = "bayesdistill_spec"


def positive_array(x, name):
    """``x`` as a 1-d float array; error naming ``name`` unless every value is positive and finite."""
    a = np.atleast_1d(np.asarray(x, dtype=float))
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise BayesDistillError(f"{name} must be positive and finite, got {x!r}")
    return a


class Posterior:
    """Posterior of a scaling law fitted to a sweep.

    Use :func:`bayesdistill.fit` to make one and :func:`bayesdistill.load`
    to read a saved one.
    """

    def __init__(self, idata, law: Law, priors: dict, noise: str, centre: dict, config: dict):
        self.idata = idata
        self.law = law
        self.priors = priors
        self.noise = noise
        self.centre = centre
        self.config = config
        self._review = None

    # ------------------------------------------------------------------ draws
    @property
    def param_names(self) -> list[str]:
        """Coefficients (natural units) and noise parameters."""
        noise = ["sigma"] + (["sigma_distill"] if self.is_distillation else [])
        return [*self.law.params, *noise, *(["nu"] if self.noise == "student_t" else [])]

    @property
    def is_distillation(self) -> bool:
        """True for a joint supervised + distillation fit."""
        return hasattr(self.law, "student_log_loss")

    @property
    def n_draws(self) -> int:
        p = self.idata.posterior
        return p.sizes["chain"] * p.sizes["draw"]

    def draws(self, names=None) -> dict[str, np.ndarray]:
        """Flattened draws (chain-major) of the named parameters (default: all)."""
        post = self.idata.posterior
        return {n: post[n].values.reshape(-1) for n in (names or self.param_names)}

    def theta(self) -> dict[str, jnp.ndarray]:
        """Coefficient draws as JAX arrays of shape (n_draws,)."""
        return {k: jnp.asarray(v) for k, v in self.draws(self.law.params).items()}

    def mean_theta(self) -> dict[str, float]:
        """Posterior means of the coefficients (the 'plug-in' point)."""
        return {k: float(v.mean()) for k, v in self.draws(self.law.params).items()}

    # ------------------------------------------------------------- checks
    def review(self) -> Review:
        """Convergence checks (R-hat, ESS, divergences, BFMI) with verdicts."""
        if self._review is None:
            self._review = review_idata(self.idata, self.param_names)
        return self._review

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Posterior mean, sd, equal-tailed interval, ESS and R-hat of every parameter."""
        d = self.draws()
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        diag = az.summary(self.idata, var_names=self.param_names, kind="diagnostics")
        rows = {
            n: {"mean": v.mean(), "sd": v.std(ddof=1) if len(v) > 1 else 0.0, "median": np.median(v),
                f"q{lo * 100:02.0f}": np.quantile(v, lo), f"q{hi * 100:02.0f}": np.quantile(v, hi)}
            for n, v in d.items()
        }
        out = pd.DataFrame(rows).T
        return out.join(diag[["ess_bulk", "ess_tail", "r_hat"]])

    # -------------------------------------------------------- predictions
    def noise_draws(self, key, shape, scale: str = "sigma"):
        """Run-to-run noise on log loss, one row per draw; ``scale`` names the noise-scale site."""
        d = self.draws([scale, "nu"] if self.noise == "student_t" else [scale])
        sigma = jnp.asarray(d[scale])[:, None]
        if self.noise == "student_t":
            eps = jax.random.t(key, jnp.asarray(d["nu"])[:, None], shape)
        else:
            eps = jax.random.normal(key, shape)
        return sigma * eps

    def log_loss_draws(self, N, D) -> jnp.ndarray:
        """Law log-loss for every draw at points (N, D): array (n_draws, n_points)."""
        th = {k: v[:, None] for k, v in self.theta().items()}
        return self.law.log_loss(th, jnp.log(jnp.asarray(N))[None, :], jnp.log(jnp.asarray(D))[None, :])

    def predict(self, N, D, *, seed: int = 0, prob: float = 0.9) -> pd.DataFrame:
        """Predicted loss at (N, D) with uncertainty.

        Parameters
        ----------
        N, D : float or array-like
            Non-embedding parameters and training tokens (broadcast together).
        seed : int
            Seed of the noise draws for the predictive quantiles.
        prob : float
            Central interval mass (0.9 gives 5% and 95% quantiles).

        Returns
        -------
        pandas.DataFrame
            ``N, D, mean, median, q05, q95`` (the law's loss over the posterior)
            and ``pred_q05, pred_q95`` (a new run's loss, noise included).
        """
        N, D = np.broadcast_arrays(positive_array(N, "N"), positive_array(D, "D"))
        mu = self.log_loss_draws(N, D)
        pred = mu + self.noise_draws(jax.random.PRNGKey(seed), mu.shape)
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        L, P = np.asarray(jnp.exp(mu)), np.asarray(jnp.exp(pred))
        tag = f"{lo * 100:02.0f}", f"{hi * 100:02.0f}"
        return pd.DataFrame({
            "N": N, "D": D, "mean": L.mean(0), "median": np.median(L, 0),
            f"q{tag[0]}": np.quantile(L, lo, 0), f"q{tag[1]}": np.quantile(L, hi, 0),
            f"pred_q{tag[0]}": np.quantile(P, lo, 0), f"pred_q{tag[1]}": np.quantile(P, hi, 0),
        })

    def predict_student(self, N_S, D_S, N_T=None, D_T=None, L_T=None, *, seed: int = 0) -> pd.DataFrame:
        """Distilled student loss (distillation fits); see :func:`bayesdistill.students.predict_student`."""
        from .students import predict_student

        return predict_student(self, N_S, D_S, N_T, D_T, L_T, seed=seed)

    def student_vs_supervised(self, N_S, D_S, N_T=None, D_T=None, L_T=None) -> pd.DataFrame:
        """Distilled vs supervised student and P(distillation wins); see :mod:`bayesdistill.students`."""
        from .students import student_vs_supervised

        return student_vs_supervised(self, N_S, D_S, N_T, D_T, L_T)

    def capacity_gap(self, N_S, D_S, N_T_grid=None, tokens_per_param_T: float = 20.0):
        """Student loss against teacher size and the best teacher per draw; see :mod:`bayesdistill.students`."""
        from .students import capacity_gap

        return capacity_gap(self, N_S, D_S, N_T_grid, tokens_per_param_T)

    # ------------------------------------------------------------ the data
    @property
    def data(self) -> pd.DataFrame:
        """The runs the posterior was fitted to."""
        c = self.idata.constant_data
        df = pd.DataFrame({k: c[k].values for k in c.data_vars if c[k].dims == ("run",)})
        df["loss"] = np.exp(self.idata.observed_data["log_loss"].values)
        return df

    # ------------------------------------------------------------ persistence
    def spec(self) -> dict:
        return {
            "format": 1,
            "version": __version__,
            "law": self.law.spec(),
            "priors": {k: v.to_dict() for k, v in self.priors.items()},
            "noise": self.noise,
            "centre": self.centre,
            "config": self.config,
        }

    def save(self, path) -> Path:
        """Write the posterior to a netCDF file, atomically (old file intact on failure)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.idata.posterior.attrs[ATTR] = json.dumps(self.spec())
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            self.idata.to_netcdf(tmp, engine="h5netcdf")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    def __repr__(self) -> str:
        p = self.idata.posterior
        return (f"Posterior(law={self.law.name!r}, noise={self.noise!r}, runs={self.idata.observed_data.sizes.get('run', '?')}, "
                f"chains={p.sizes['chain']}, draws={p.sizes['draw']}, review={'ok' if self.review().ok else 'FAILED'})")


def load(path) -> Posterior:
    """Read a posterior written by :meth:`Posterior.save`.

    Raises
    ------
    PosteriorFileError
        When the file is missing, truncated, corrupted, not written by
        bayesdistill, or names a law that is not registered.
    """
    path = Path(path)
    if not path.is_file():
        raise PosteriorFileError(f"posterior file not found: {path}")
    try:
        idata = az.from_netcdf(path, engine="h5netcdf")
    except Exception as exc:
        raise PosteriorFileError(
            f"{path} is not a readable posterior file (truncated or corrupted?): {type(exc).__name__}"
        ) from None
    for group in ("posterior", "observed_data", "constant_data"):
        if group not in idata.groups():
            raise PosteriorFileError(f"{path} has no {group!r} group; it was not written by bayesdistill")
    raw = idata.posterior.attrs.get(ATTR)
    if raw is None:
        raise PosteriorFileError(f"{path} has no bayesdistill specification; it was not written by bayesdistill.save")
    try:
        spec = json.loads(raw)
        law = law_from_spec(spec["law"])
        priors = {k: Prior.from_dict(v) for k, v in spec["priors"].items()}
        post = Posterior(idata, law, priors, spec["noise"], spec["centre"], spec["config"])
    except BayesDistillError as exc:
        raise PosteriorFileError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise PosteriorFileError(f"{path}: its bayesdistill specification is damaged ({exc!r})") from None
    missing = [n for n in post.param_names if n not in idata.posterior]
    if missing:
        raise PosteriorFileError(f"{path}: posterior lacks the parameters {missing}")
    return post
