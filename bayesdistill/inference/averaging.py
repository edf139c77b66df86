"""Decisions under law uncertainty: posteriors of several laws averaged into one mixture.

``bd.average(posts, weights="stacking")`` weighs fitted posteriors of different laws (or noise
models) of one sweep and returns an :class:`AveragedPosterior`: a mixture that draws each
posterior draw from law ``k`` with probability ``w_k``. Its predictions and compute-optimal
allocations then carry the uncertainty about which law holds, which one compute level up is
often the largest uncertainty there is.

Weights:

- ``"stacking"`` (default): the weights that maximise the leave-one-out log predictive density of
  the mixture (Yao et al. 2018; ArviZ's ``compare(method="stacking")`` on PSIS-LOO). Robust when
  no candidate law is true.
- ``"evidence"``: posterior model probabilities from each fit's log marginal likelihood by bridge
  sampling (:func:`bayesdistill.inference.evidence.bridge_sampling`), equal prior odds.
- a sequence of non-negative numbers, one per posterior (normalised).

The mixture keeps ``round(w_k n)`` draws of posterior ``k`` (``n`` as large as every component's
draws allow at these weights; largest remainders, seeded choice of which draws), so a weight of 1
returns that posterior's own draws.

The posteriors must be fits of one sweep, all supervised or all distillation (joint) fits, not
grouped. A mixture of distillation fits (e.g. ``"distillation"`` with Student-t and with Gaussian
noise, or ``"distillation_nobpl"``) is taken by ``bd.recommend``, ``bd.least_budget`` and
``bd.efficiency`` like one posterior: every draw answers with its own law.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..errors import BayesDistillError
from .posterior import Posterior

WEIGHT_METHODS = ("stacking", "evidence")


def _check_posteriors(posts) -> list[Posterior]:
    posts = list(posts.values()) if isinstance(posts, dict) else list(posts)
    if len(posts) < 1:
        raise BayesDistillError("average needs at least one posterior")
    for i, p in enumerate(posts):
        if not isinstance(p, Posterior):
            raise BayesDistillError(f"average: item {i} is a {type(p).__name__}, not a Posterior from bd.fit")
        if p.group_names:
            raise BayesDistillError(f"average: item {i} is a grouped fit; only ungrouped posteriors of one sweep "
                                    "can be averaged")
        if p.is_distillation != posts[0].is_distillation:
            raise BayesDistillError(f"average: item {i} is a {'distillation' if p.is_distillation else 'supervised'}"
                                    f" fit and item 0 is not; average supervised fits or distillation fits, not both "
                                    "(they model different runs)")
    ref = _observed(posts[0])
    for i, p in enumerate(posts[1:], 1):
        d = _observed(p)
        if any(a.shape != b.shape or not np.allclose(a, b, rtol=1e-6) for a, b in zip(d, ref)):
            raise BayesDistillError(f"average: item {i} was fitted to other runs than item 0; average posteriors "
                                    "of the same sweep")
    return posts


def _observed(post) -> list[np.ndarray]:
    """The runs a posterior was fitted to: supervised (N, D, loss), and the distillation runs' losses."""
    out = [post.data[["N", "D", "loss"]].to_numpy()]
    obs = post.idata.observed_data
    return out + [np.asarray(obs["log_loss_student"].values) if "log_loss_student" in obs else np.zeros(0)]


def _names(posts, names) -> list[str]:
    out = list(names) if names is not None else [f"{p.law.name}:{p.noise}" for p in posts]
    seen = {}
    for i, n in enumerate(out):  # the same law twice (e.g. two seeds): keep names distinct
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            out[i] = f"{n}#{seen[n]}"
    return out


def stacking_weights(posts, names=None) -> np.ndarray:
    """Stacking weights of ``posts`` from PSIS-LOO over every observed run (``arviz_stats.compare(method="stacking")``).

    The runs are the supervised ones and, for distillation fits, the distillation runs too (the
    pointwise LOO of ``bd.compare``).
    """
    import arviz_stats as azs

    from .comparison import PARETO_K_WARNING, _loo

    posts = _check_posteriors(posts)
    labels = _names(posts, names)
    for i, p in enumerate(posts):
        if "log_likelihood" not in p.idata.children:
            raise BayesDistillError(f"average: item {i} ({labels[i]}) has no pointwise log-likelihood (a file "
                                    "saved without it?); stacking needs it: refit, or give weights")
    if len(posts) == 1:
        return np.ones(1)
    loos = {n: _loo(p)[0] for n, p in zip(labels, posts)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PARETO_K_WARNING, category=UserWarning)  # bd.compare counts them
        table = azs.compare(loos, method="stacking", round_to="none")
    return np.array([float(table.loc[n, "weight"]) for n in labels])


def evidence_weights(posts, seed: int = 0, sweep=None) -> np.ndarray:
    """Posterior model probabilities from bridge-sampling log evidence (equal prior odds).

    ``sweep``: the sweep the posteriors were fitted to; needed for distillation fits (a supervised
    fit's runs are read back from the posterior).
    """
    from ..data.sweep import read_sweep
    from .comparison import log_evidence

    posts = _check_posteriors(posts)
    if sweep is None:
        if posts[0].is_distillation:
            raise BayesDistillError("average: evidence weights of distillation fits need the sweep they were "
                                    "fitted to (sweep=...), or pass bd.compare's p_model column as weights")
        sweep = posts[0].data[["N", "D", "loss"]]
    sweep = read_sweep(sweep)
    logz = np.array([log_evidence(p, sweep, seed=seed)["log_z"] for p in posts])
    w = np.exp(logz - logz.max())
    return w / w.sum()


def average(posts, weights="stacking", *, names=None, seed: int = 0, sweep=None) -> AveragedPosterior:
    """One mixture posterior from fitted posteriors of several laws (see the module docstring).

    Parameters
    ----------
    posts : list or dict of Posterior
        Fits of the same sweep (a dict's keys name them): all supervised, or all distillation fits.
    weights : {"stacking", "evidence"} or sequence of float
        How to weigh them.
    names : list of str, optional
        Labels (default: ``law:noise``, or the dict's keys).
    seed : int
        Seed of which draws of each posterior the mixture keeps (and of bridge sampling).
    sweep : path, DataFrame or Sweep, optional
        The sweep the posteriors were fitted to: needed by ``weights="evidence"`` for distillation fits.

    Returns
    -------
    AveragedPosterior
        ``predict``, ``bands``, ``bd.compute_optimal`` and ``review`` work on it as on a Posterior;
        a mixture of distillation fits also in ``bd.recommend``, ``bd.least_budget`` and ``bd.efficiency``.
    """
    if isinstance(posts, dict) and names is None:
        names = list(posts)
    posts = _check_posteriors(posts)
    labels = _names(posts, names)
    if isinstance(weights, str):
        if weights not in WEIGHT_METHODS:
            raise BayesDistillError(f"average: weights {weights!r} is not one of {list(WEIGHT_METHODS)} or a list "
                                    "of numbers")
        w = stacking_weights(posts, labels) if weights == "stacking" else evidence_weights(posts, seed, sweep)
        method = weights
    else:
        w = np.asarray(weights, dtype=float).reshape(-1)
        if w.shape != (len(posts),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise BayesDistillError(f"average: weights must be {len(posts)} non-negative numbers with a positive "
                                    f"sum (one per posterior), got {list(np.atleast_1d(weights))}")
        method = "given"
    w = w / w.sum()
    return AveragedPosterior(posts, w, labels, method, seed)


def _counts(w, n) -> np.ndarray:
    """Draws per component: ``round(w n)`` by largest remainders, summing to ``n``."""
    raw = w * n
    c = np.floor(raw).astype(int)
    order = np.argsort(-(raw - c), kind="stable")
    c[order[: n - c.sum()]] += 1
    return c


class AveragedPosterior:
    """A mixture of posteriors of different laws; made by :func:`average`."""

    def __init__(self, components, weights, names, method: str, seed: int = 0):
        self.components, self.weights, self.names, self.method = list(components), np.asarray(weights), names, method
        # as many draws as the components allow at these weights: n w_k <= n_k for every k
        n = int(min(p.n_draws / w for p, w in zip(self.components, self.weights) if w > 0) + 1e-9)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 21]))
        self.index = []
        for p, c in zip(self.components, _counts(self.weights, n)):
            self.index.append(np.arange(p.n_draws) if c == p.n_draws else np.sort(rng.choice(p.n_draws, c, replace=False)))
        first = self.components[0]
        self.noise, self.centre, self.config = "mixture", first.centre, {"average": self.summary_dict()}
        self.law = None

    # ------------------------------------------------------------ what it is
    def summary_dict(self) -> dict:
        return {"method": self.method, "weights": dict(zip(self.names, map(float, self.weights))),
                "draws": dict(zip(self.names, (len(i) for i in self.index)))}

    def weights_table(self) -> pd.DataFrame:
        """Each component's weight, draws kept and review verdict."""
        return pd.DataFrame({"weight": self.weights, "draws": [len(i) for i in self.index],
                             "review_ok": [p.review().ok for p in self.components]}, index=self.names)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n} {w:.2f}" for n, w in zip(self.names, self.weights))
        return f"AveragedPosterior({parts}; weights by {self.method}, {self.n_draws} draws)"

    @property
    def n_draws(self) -> int:
        return int(sum(len(i) for i in self.index))

    @property
    def parts(self):
        """``(posterior, draw indices)`` of every component with draws in the mixture."""
        return [(p, i) for p, i in zip(self.components, self.index) if len(i)]

    group_names: list = []

    @property
    def is_distillation(self) -> bool:
        """True for a mixture of distillation (joint) fits."""
        return self.components[0].is_distillation

    @property
    def laws(self) -> list:
        """The law of each component with draws in the mixture."""
        return [p.law for p, _ in self.parts]

    def law_draws(self) -> list[tuple]:
        """``(law, coefficient draws)`` of each component with draws in the mixture: the draws the mixture
        keeps, as NumPy arrays of shape (draws,), concatenated in this order by every method here."""
        return [(p.law, {k: np.asarray(v)[i] for k, v in p.theta().items()}) for p, i in self.parts]
    discrepancy = property(lambda self: self.components[0].discrepancy)

    @property
    def data(self) -> pd.DataFrame:
        return self.components[0].data

    @property
    def log10_c_max(self) -> float:
        return self.components[0].log10_c_max

    def decades_beyond(self, N, D) -> np.ndarray:
        return self.components[0].decades_beyond(N, D)

    def review(self):
        """The review of the component with the largest weight (each component's is in :meth:`weights_table`)."""
        return self.components[int(np.argmax(self.weights))].review()

    # ------------------------------------------------------------ draws of the mixture
    def log_loss_draws(self, N, D) -> jnp.ndarray:
        """Law log-loss at points (N, D), one row per mixture draw."""
        return jnp.concatenate([p.log_loss_draws(N, D)[i] for p, i in self.parts], axis=0)

    def noise_scale(self, N=None, D=None, scale: str = "sigma", misfit: bool = True) -> jnp.ndarray:
        return jnp.concatenate([jnp.broadcast_to(p.noise_scale(N, D, scale, misfit),
                                                 (p.n_draws, np.size(N) if N is not None else 1))[i]
                                for p, i in self.parts], axis=0)

    def noise_draws(self, key, shape, scale: str = "sigma", N=None, D=None):
        parts = self.parts
        keys = [key] if len(parts) == 1 else jax.random.split(key, len(parts))  # one law: its own draws exactly
        return jnp.concatenate([p.noise_draws(k, (p.n_draws, shape[1]), scale, N, D)[i]
                                for k, (p, i) in zip(keys, parts)], axis=0)

    predict = Posterior.predict

    def bands(self, N, D, *, seed: int = 0) -> pd.DataFrame:
        """:meth:`predict`'s 90% quantiles at many points (NumPy noise draws, as :meth:`Posterior.bands`)."""
        N, D = np.broadcast_arrays(np.atleast_1d(np.asarray(N, float)), np.atleast_1d(np.asarray(D, float)))
        rng = np.random.default_rng(seed)
        mus, logs = [], []
        for p, i in self.parts:
            mu = np.asarray(p.log_loss_draws(N, D), float)[i]
            if p.noise == "student_t":
                eps = rng.standard_t(p.draws(["nu"])["nu"][i][:, None], size=mu.shape)
            else:
                eps = rng.standard_normal(mu.shape)
            scale = np.broadcast_to(np.asarray(p.noise_scale(N, D), float), (p.n_draws, len(N)))[i]
            mus.append(mu)
            logs.append(mu + scale * eps)
        mu, log_pred = np.concatenate(mus), np.concatenate(logs)
        q05, med, q95 = np.exp(np.quantile(mu, [0.05, 0.5, 0.95], axis=0))
        p05, p95 = np.exp(np.quantile(log_pred, [0.05, 0.95], axis=0))
        return pd.DataFrame({"N": N, "D": D, "median": med, "q05": q05, "q95": q95,
                             "pred_q05": p05, "pred_q95": p95})
