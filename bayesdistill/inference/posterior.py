"""The posterior object: draws, predictions, review, summary, save and load.

A :class:`Posterior` wraps an ``xarray.DataTree`` (ArviZ 1.x's container, the
successor of ``InferenceData``, with the same groups) whose ``posterior`` group
holds every coefficient in natural units under its own name, plus the noise
parameters and the sampler's internal sites (``log_A_c`` ...). It is saved as
netCDF with the law specification as JSON in the attributes (no pickle); files
written by earlier releases (ArviZ 0.23 ``InferenceData``) read back the same.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from .._checks import positive_array, unique_tokens_array
from .._files import write_atomically
from .._version import __version__
from ..errors import BayesDistillError, ExtrapolationWarning, PosteriorFileError
from ..laws.base import Law, law_from_spec
from ..laws.distillation import is_distillation
from ..laws.priors import Prior
from .model import (
    DISCREPANCY_SITES,
    DISTANCE_KINDS,
    MISFIT_SITES,
    decades_beyond,
    distance_sq,
    log10_6nd,
    misfit_sd,
    noise_scale,
)
from .review import Review, diagnostics, review_idata

ATTR = "bayesdistill_spec"
#: SHA-256 of the spec and every stored value, written by ``save`` and checked by ``load``
DIGEST_ATTR = "bayesdistill_sha256"
#: :meth:`Posterior.predict` warns (:class:`ExtrapolationWarning`) beyond this many decades of compute
#: past the largest fitted run: one decade is as far as the leave-largest-budget-out benchmark checks
EXTRAPOLATION_WARN_DECADES = 1.0


def _digest(idata, spec_json: str) -> str:
    """SHA-256 of the spec and of every data variable of every group, in a form that survives netCDF
    (the same value for a file written from ArviZ 0.23's ``InferenceData`` and from a ``DataTree``)."""
    h = hashlib.sha256(spec_json.encode())
    for group in sorted(idata.children):
        ds = idata[group].dataset
        for name in sorted(ds.data_vars):
            v = np.asarray(ds[name].values)
            h.update(f"|{group}/{name}{v.shape}".encode())
            if v.dtype.kind in "USO":  # strings come back as objects
                h.update("\x1f".join(map(str, v.ravel())).encode())
            else:
                h.update(np.ascontiguousarray(v.astype(np.uint8) if v.dtype.kind == "b" else v).tobytes())
    return h.hexdigest()


def check_prob_seed(prob, seed):
    """A clear error unless ``prob`` is in (0, 1) and ``seed`` a non-negative integer."""
    if isinstance(prob, bool) or not isinstance(prob, (int, float, np.floating)) or not 0 < prob < 1:
        raise BayesDistillError(f"prob must be a number in (0, 1), got {prob!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise BayesDistillError(f"seed must be an integer in [0, 2**32), got {seed!r}")


class Posterior:
    """Posterior of a scaling law fitted to a sweep.

    Use :func:`bayesdistill.fit` to make one and :func:`bayesdistill.load`
    to read a saved one.
    """

    def __init__(self, idata: xr.DataTree, law: Law, priors: dict, noise: str, centre: dict, config: dict):
        #: the draws, sample statistics, per-run log likelihood and data: an ``xarray.DataTree`` with
        #: ArviZ's groups (``posterior``, ``sample_stats``, ``log_likelihood``, ``observed_data``,
        #: ``constant_data``); ``post.idata.posterior["E"]`` is a DataArray, as before
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
        tau = [DISCREPANCY_SITES[s] for s in noise] if self.discrepancy in DISTANCE_KINDS else []
        kappa = [s for s in MISFIT_SITES if s in self.idata.posterior] if self.has_kappa else []
        if self.group_names:  # a grouped fit: the coefficients are per group (see group()), these are shared
            from .pooling import hyper_sites

            return [*noise, *(["nu"] if self.noise == "student_t" else []), *tau, *kappa,
                    *hyper_sites(self.law, self.config["groups"]["pool"])]
        return [*self.law.params, *noise, *(["nu"] if self.noise == "student_t" else []), *tau, *kappa]

    # ------------------------------------------------------------- groups
    @property
    def group_names(self) -> list[str]:
        """The groups of a grouped fit (``bd.fit(..., groups=column)``); empty for an ordinary fit."""
        return list(self.config.get("groups", {}).get("names", []))

    def group(self, name: str) -> Posterior:
        """One group of a grouped fit as an ordinary Posterior (predict, compute_optimal, save, report ...);
        see :func:`bayesdistill.inference.pooling.group_view`."""
        from .pooling import group_view

        return group_view(self, name)

    @property
    def discrepancy(self) -> str:
        """``"compute"``, ``"distance"`` (noise grows away from the fitted runs) or ``"none"``
        (also fits saved before the option)."""
        return self.config.get("discrepancy", "none")

    @property
    def has_kappa(self) -> bool:
        """True when predictions widen with the decades of compute beyond the fit (supervised ``"compute"``)."""
        return self.discrepancy == "compute" and not self.is_distillation

    @property
    def log10_c_max(self) -> float:
        """log10 of the largest compute C = 6 N D among the fitted supervised runs."""
        v = self.centre.get("log10_c_max")
        if v is None:  # saved before the value was stored
            data = self.data
            v = float(np.max(log10_6nd(data["N"], data["D"]))) if len(data) else float("nan")
        return float(v)

    def decades_beyond(self, N, D) -> np.ndarray:
        """Decades of compute 6 N D beyond the largest fitted supervised run (0 within the range)."""
        return decades_beyond(N, D, self.log10_c_max)

    @property
    def is_distillation(self) -> bool:
        """True for a joint supervised + distillation fit."""
        return is_distillation(self.law)

    @property
    def n_draws(self) -> int:
        p = self.idata.posterior
        return p.sizes["chain"] * p.sizes["draw"]

    def draws(self, names=None) -> dict[str, np.ndarray]:
        """Flattened draws (chain-major) of the named parameters (default: all)."""
        post = self.idata.posterior
        names = names or self.param_names
        per_group = [n for n in names if self.group_names and post[n].ndim > 2]
        if per_group:
            raise BayesDistillError(f"this is a grouped fit over {self.group_names} (column "
                                    f"{self.config['groups']['column']!r}): {per_group} differ by group; ask one "
                                    f"group, e.g. post.group({self.group_names[0]!r})")
        return {n: post[n].values.reshape(-1) for n in names}

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
            names = self.param_names + (list(self.law.params) if self.group_names else [])
            self._review = review_idata(self.idata, names)
        return self._review

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Posterior mean, sd, equal-tailed interval, ESS and R-hat of every parameter.

        ``ess_bulk``, ``ess_tail`` (of the 5% and 95% quantiles) and ``r_hat`` (rank-normalised) are
        rounded as ArviZ 0.23's ``summary`` rounded them (ESS to integers, R-hat to 2 decimals);
        :meth:`review` checks the unrounded values.
        """
        d = {k: v.astype(np.float64) for k, v in self.draws().items()}  # float32 squares of B' can overflow
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        diag = diagnostics(self.idata["posterior"].to_dataset()[self.param_names]).round(
            {"ess_bulk": 0, "ess_tail": 0, "r_hat": 2})
        rows = {
            n: {"mean": v.mean(), "sd": v.std(ddof=1) if len(v) > 1 else 0.0, "median": np.median(v),
                f"q{lo * 100:02.0f}": np.quantile(v, lo), f"q{hi * 100:02.0f}": np.quantile(v, hi)}
            for n, v in d.items()
        }
        out = pd.DataFrame(rows).T.join(diag[["ess_bulk", "ess_tail", "r_hat"]])
        if self.group_names:  # each group's coefficients ("E[rpj]"), then the shared parameters
            per = [self.group(g).summary(prob).loc[list(self.law.params)].rename(index=lambda i, g=g: f"{i}[{g}]")
                   for g in self.group_names]
            out = pd.concat([*per, out])
        return out

    # -------------------------------------------------------- predictions
    def noise_scale(self, N=None, D=None, scale: str = "sigma", misfit: bool = True) -> jnp.ndarray:
        """Noise scale of log loss per draw (rows) at points ``(N, D)`` (columns).

        ``scale`` names the noise-scale site (``"sigma"``, or ``"sigma_distill"``
        for distilled students, whose ``N, D`` are ``N_S, D_S``). Without a
        discrepancy it is ``sigma`` (shape (n_draws, 1), the points are not
        needed); with ``discrepancy="distance"`` it is ``sqrt(sigma^2 + (tau
        d)^2)`` at each point's distance ``d`` from the fitted runs, exactly as
        in the model; with ``discrepancy="compute"`` (supervised runs) the
        further ``(kappa e)^2 + omega^2 e`` at ``e`` decades of compute beyond the fit
        (:mod:`bayesdistill.inference.misfit`; ``misfit=False`` leaves it out: the ``distance`` scale).
        """
        sigma = jnp.asarray(self.draws([scale])[scale])[:, None]
        if self.discrepancy not in DISTANCE_KINDS:
            return sigma
        if N is None or D is None:
            raise BayesDistillError(f"this posterior's noise grows with the distance from the fitted runs "
                                    f"(discrepancy={self.discrepancy!r}): give the points N and D")
        tau_site = DISCREPANCY_SITES[scale]
        tau = jnp.asarray(self.draws([tau_site])[tau_site])[:, None]
        logN = jnp.log(jnp.asarray(np.asarray(N, dtype=float).reshape(-1)))[None, :]
        logD = jnp.log(jnp.asarray(np.asarray(D, dtype=float).reshape(-1)))[None, :]
        out = noise_scale(sigma, tau, distance_sq(logN, logD, self.centre, "_S" if scale == "sigma_distill" else ""))
        sites = [s for s in MISFIT_SITES if s in self.idata.posterior]
        if misfit and self.has_kappa and scale == "sigma" and sites:
            d = {k: jnp.asarray(v)[:, None] for k, v in self.draws(sites).items()}
            e = jnp.asarray(self.decades_beyond(np.asarray(N, float).reshape(-1), np.asarray(D, float).reshape(-1)))
            sd = misfit_sd(d.get("kappa", 0.0), d.get("omega", 0.0), e[None, :])
            out = jnp.sqrt(out ** 2 + sd ** 2)
        return out

    def noise_draws(self, key, shape, scale: str = "sigma", N=None, D=None):
        """Run-to-run noise on log loss, one row per draw and one column per point ``(N, D)``.

        ``scale`` names the noise-scale site; the points matter only with a
        discrepancy (see :meth:`noise_scale`).
        """
        sigma = self.noise_scale(N, D, scale)
        if self.noise == "student_t":
            eps = jax.random.t(key, jnp.asarray(self.draws(["nu"])["nu"])[:, None], shape)
        else:
            eps = jax.random.normal(key, shape)
        return sigma * eps

    def log_loss_draws(self, N, D, U=None) -> jnp.ndarray:
        """Law log-loss for every draw at points (N, D): array (n_draws, n_points).

        ``U``: unique tokens at each point, for a law that reads them (``law.covariates``; None: U = D).
        """
        th = {k: v[:, None] for k, v in self.theta().items()}
        extra = () if U is None else (jnp.log(jnp.asarray(U))[None, :],)
        return self.law.log_loss(th, jnp.log(jnp.asarray(N))[None, :], jnp.log(jnp.asarray(D))[None, :], *extra)

    def predict(self, N, D, *, U=None, seed: int = 0, prob: float = 0.9) -> pd.DataFrame:
        """Predicted loss at (N, D) with uncertainty.

        Parameters
        ----------
        N, D : float or array-like
            Non-embedding parameters and training tokens (broadcast together).
        U : float or array-like, optional
            Unique tokens (``U <= D``), for a data-constrained law (``"muennighoff"``); default
            ``U = D`` (every token seen once). Returned as a column when given.
        seed : int
            Seed of the noise draws for the predictive quantiles.
        prob : float
            Central interval mass (0.9 gives 5% and 95% quantiles).

        Returns
        -------
        pandas.DataFrame
            ``N, D, mean, median, q05, q95`` (the law's loss over the posterior),
            ``pred_q05, pred_q95`` (a new run's loss, noise included: with
            ``discrepancy="distance"`` the noise grows with the distance of
            ``(N, D)`` from the fitted runs, with ``"compute"`` also with the
            decades of compute beyond them, see :meth:`noise_scale`) and
            ``decades_beyond``: decades of compute 6 N D beyond the largest
            fitted run (0 within the fitted range).

        Warns
        -----
        ExtrapolationWarning
            When a point lies more than ``EXTRAPOLATION_WARN_DECADES`` (1)
            decade of compute beyond the largest fitted run: the
            leave-largest-budget-out benchmark checks intervals up to there.
        """
        check_prob_seed(prob, seed)
        N, D = positive_array(N, "N"), positive_array(D, "D")
        try:
            N, D = np.broadcast_arrays(N, D)
        except ValueError:
            raise BayesDistillError(f"N ({len(N)} values) and D ({len(D)} values) do not broadcast: give equal "
                                    "numbers of values or a single value for one of them") from None
        U = None if U is None else unique_tokens_array(U, D, getattr(self, "law", None))
        mu = self.log_loss_draws(N, D) if U is None else self.log_loss_draws(N, D, U)
        pred = mu + self.noise_draws(jax.random.PRNGKey(seed), mu.shape, N=N, D=D)
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        L, P = np.asarray(jnp.exp(mu)), np.asarray(jnp.exp(pred))
        tag = f"{lo * 100:02.0f}", f"{hi * 100:02.0f}"
        beyond = self.decades_beyond(N, D)
        if np.any(beyond > EXTRAPOLATION_WARN_DECADES):
            warnings.warn(ExtrapolationWarning(
                f"predicting up to {beyond.max():.2f} decades of compute (6ND) beyond the largest fitted run "
                f"(10^{self.log10_c_max:.2f} FLOPs); intervals are checked up to {EXTRAPOLATION_WARN_DECADES:g} "
                "decade (benchmarks/bench_isoflop.py): treat them as optimistic"), stacklevel=2)
        return pd.DataFrame({
            "N": N, "D": D, **({} if U is None else {"U": U}), "mean": L.mean(0), "median": np.median(L, 0),
            f"q{tag[0]}": np.quantile(L, lo, 0), f"q{tag[1]}": np.quantile(L, hi, 0),
            f"pred_q{tag[0]}": np.quantile(P, lo, 0), f"pred_q{tag[1]}": np.quantile(P, hi, 0),
            "decades_beyond": beyond,
        })

    def bands(self, N, D, *, U=None, seed: int = 0) -> pd.DataFrame:
        """:meth:`predict`'s 90% quantiles at many points at once, for plots.

        The same law quantiles (``median, q05, q95``) and predictive quantiles
        (``pred_q05, pred_q95``: the noise of :meth:`noise_scale`, discrepancy
        included) as :meth:`predict`, but the noise on log loss is drawn with
        NumPy (seeded by ``seed``): JAX's Student-t sampler costs seconds per
        call on a CPU, which adds up over the hundreds of points of a plot. No
        input checks and no extrapolation warning (the plots choose the points). ``U``: unique tokens,
        as in :meth:`predict`.
        """
        if self.noise not in ("student_t", "normal"):  # a noise model this helper does not know
            return self.predict(N, D, U=U, seed=seed)
        N, D = np.broadcast_arrays(np.atleast_1d(np.asarray(N, float)), np.atleast_1d(np.asarray(D, float)))
        U = None if U is None else np.broadcast_to(np.asarray(U, float), D.shape)
        mu = np.asarray(self.log_loss_draws(N, D) if U is None else self.log_loss_draws(N, D, U), dtype=float)
        rng = np.random.default_rng(seed)
        if self.noise == "student_t":
            eps = rng.standard_t(self.draws(["nu"])["nu"][:, None], size=mu.shape)
        else:
            eps = rng.standard_normal(mu.shape)
        log_pred = mu + np.asarray(self.noise_scale(N, D)) * eps
        # quantiles on the log scale, then exp (monotone): heavy-tailed draws cannot overflow exp
        q05, med, q95 = np.exp(np.quantile(mu, [0.05, 0.5, 0.95], axis=0))
        p05, p95 = np.exp(np.quantile(log_pred, [0.05, 0.95], axis=0))
        return pd.DataFrame({"N": N, "D": D, **({} if U is None else {"U": U}), "median": med, "q05": q05, "q95": q95,
                             "pred_q05": p05, "pred_q95": p95})

    def predict_student(self, N_S, D_S, N_T=None, D_T=None, L_T=None, *, seed: int = 0) -> pd.DataFrame:
        """Distilled student loss (distillation fits); see :func:`bayesdistill.inference.students.predict_student`."""
        from .students import predict_student

        return predict_student(self, N_S, D_S, N_T, D_T, L_T, seed=seed)

    def student_vs_supervised(self, N_S, D_S, N_T=None, D_T=None, L_T=None) -> pd.DataFrame:
        """Distilled vs supervised student and P(distillation wins); see :mod:`bayesdistill.inference.students`."""
        from .students import student_vs_supervised

        return student_vs_supervised(self, N_S, D_S, N_T, D_T, L_T)

    def identification(self, **kwargs) -> pd.DataFrame:
        """Prior vs posterior width of each coefficient: which the data identify; see :mod:`bayesdistill.inference.identify`."""
        from .identify import identification

        return identification(self, **kwargs)

    def capacity_gap(self, N_S, D_S, N_T_grid=None, tokens_per_param_T: float = 20.0):
        """Student loss against teacher size and the best teacher per draw; see :mod:`bayesdistill.inference.students`."""
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
        """What :meth:`save` stores beside the draws. The misfit's likelihood grid
        (``config["kappa"]["loglik"]``, for :func:`bayesdistill.inference.population.reprior`) stays in memory."""
        config = self.config
        if isinstance(config.get("kappa"), dict) and "loglik" in config["kappa"]:
            config = {**config, "kappa": {k: v for k, v in config["kappa"].items() if k != "loglik"}}
        return {
            "format": 1,
            "version": __version__,
            "law": self.law.spec(),
            "priors": {k: v.to_dict() for k, v in self.priors.items()},
            "noise": self.noise,
            "centre": self.centre,
            "config": config,
        }

    def save(self, path) -> Path:
        """Write the posterior to a netCDF file, atomically (old file intact on failure)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        spec = json.dumps(self.spec())
        self.idata["posterior"].attrs[ATTR] = spec
        self.idata["posterior"].attrs[DIGEST_ATTR] = _digest(self.idata, spec)
        write_atomically(path, lambda tmp: self.idata.to_netcdf(tmp, engine="h5netcdf"))
        return path

    def __repr__(self) -> str:
        p = self.idata.posterior
        runs = sum(self.idata.observed_data.sizes.get(d, 0) for d in ("run", "drun"))
        groups = f", groups={self.group_names}" if self.group_names else ""
        return (f"Posterior(law={self.law.name!r}, noise={self.noise!r}, runs={runs}{groups}, "
                f"chains={p.sizes['chain']}, draws={p.sizes['draw']}, review={'ok' if self.review().ok else 'FAILED'})")


def _read_netcdf(path: Path):
    """``(DataTree, None)``, or ``(None, error name)`` when xarray cannot read the file.

    Reads files written from a ``DataTree`` and from ArviZ 0.23's ``InferenceData`` (the same netCDF
    groups). Eager: every value is read now, so a corrupted data chunk fails here (lazily it would fail on
    first use with a bare h5py error) and the file is closed. A half-opened h5netcdf ``File`` of a
    corrupted file raises again from its ``__del__`` when the exception is released, at the end of
    the ``except`` clause (printed as "Exception ignored in ..."); that noise is dropped.
    """
    hook = sys.unraisablehook

    def quiet(unraisable):
        if not getattr(unraisable.object, "__module__", "").startswith("h5netcdf"):
            hook(unraisable)

    sys.unraisablehook = quiet
    try:
        try:
            with xr.open_datatree(path, engine="h5netcdf") as tree:
                return tree.load().copy(), None
        except Exception as exc:
            error = type(exc).__name__
        return None, error
    finally:
        sys.unraisablehook = hook


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
    idata, error = _read_netcdf(path)
    if error:
        raise PosteriorFileError(f"{path} is not a readable posterior file (truncated or corrupted?): {error}")
    for group in ("posterior", "observed_data", "constant_data"):
        if group not in idata.children:
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
    stored = idata.posterior.attrs.get(DIGEST_ATTR)  # absent in files of older versions
    if stored is not None and stored != _digest(idata, raw):
        raise PosteriorFileError(f"{path} is corrupted: its contents do not match the checksum written "
                                 "when it was saved (damaged on disk or in transfer, or edited)")
    return post
