"""Fit review: named convergence checks, each with a verdict and a remedy.

Run after every fit. A failed check warns (:class:`FitWarning`) and is carried
by the posterior, so that every decision made from it can say so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz_stats as azs
import numpy as np
import pandas as pd

from ..errors import FitWarning

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100  # Vehtari et al. (2021): 100 per chain
BFMI_MIN = 0.3
#: the quantiles whose ESS is the "tail" ESS (Vehtari et al. 2021; ArviZ 1.x's default follows its 89%
#: interval, 0.11/0.89): the package's intervals are 90%, so its tail ESS stays that of the 5%/95% quantiles
ESS_TAIL_PROBS = (0.05, 0.95)


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    threshold: str
    passed: bool
    remedy: str


@dataclass(frozen=True)
class Review:
    """Outcome of the checks; ``ok`` is true when every check passed.

    ``steps`` is the mean number of leapfrog steps per draw (NaN when not recorded): not a check,
    but the cost of the posterior's geometry (~3-10 on a well-conditioned posterior; tens or
    hundreds where it is curved or heavy-tailed).
    """

    checks: tuple
    steps: float = float("nan")

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([c.__dict__ for c in self.checks]).set_index("name")

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [dict(c.__dict__) for c in self.checks], "mean_leapfrog_steps": self.steps}

    def __str__(self) -> str:
        lines = [f"Fit review: {'PASSED' if self.ok else 'FAILED'}"]
        for c in self.checks:
            mark = "ok  " if c.passed else "FAIL"
            lines.append(f"  [{mark}] {c.name:<14} {c.value:>10.4g}  (needs {c.threshold})")
            if not c.passed:
                lines.append(f"         remedy: {c.remedy}")
        if np.isfinite(self.steps):
            lines.append(f"  mean leapfrog steps per draw: {self.steps:.1f}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_()


def diagnostics(post) -> pd.DataFrame:
    """``ess_bulk``, ``ess_tail`` (of the 5% and 95% quantiles) and ``r_hat`` (rank-normalised split
    R-hat; NaN with one chain) of every variable of the ``(chain, draw, ...)`` Dataset ``post``, unrounded;
    one row per scalar (``E[0]``, ``E[1]`` ... for a variable with more dimensions)."""
    post = post.astype("float64")  # float32 squares of a wide coefficient (B') overflow
    cols = {"ess_bulk": azs.ess(post, method="bulk"), "ess_tail": azs.ess(post, method="tail", prob=ESS_TAIL_PROBS)}
    if post.sizes["chain"] > 1:
        cols["r_hat"] = azs.rhat(post, method="rank")
    rows = {}
    for name in post.data_vars:
        values = {k: np.asarray(v[name].values, float) for k, v in cols.items()}
        shape = values["ess_bulk"].shape
        for idx in np.ndindex(shape):
            label = name if not shape else f"{name}[{','.join(map(str, idx))}]"
            rows[label] = {k: float(v[idx]) for k, v in values.items()}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["ess_bulk", "ess_tail", "r_hat"])
    return out.astype(float)


def review_idata(idata, var_names: list[str]) -> Review:
    """Check R-hat, bulk and tail ESS, divergences and BFMI of the DataTree ``idata``."""
    post = idata["posterior"].to_dataset()[var_names]
    stats = idata["sample_stats"].to_dataset() if "sample_stats" in idata.children else None
    n_chains = post.sizes["chain"]
    ess_min = ESS_PER_CHAIN_MIN * n_chains
    diag = diagnostics(post)
    rhat = float(np.nanmax(diag["r_hat"])) if n_chains > 1 else float("nan")
    ess_bulk, ess_tail = float(np.nanmin(diag["ess_bulk"])), float(np.nanmin(diag["ess_tail"]))
    bfmi = float(np.min(azs.bfmi(stats)["energy"].values)) if stats is not None and "energy" in stats else float("nan")
    n_div = int(stats["diverging"].values.sum()) if stats is not None and "diverging" in stats else 0
    checks = (
        Check("max R-hat", rhat, f"<= {RHAT_MAX}", n_chains > 1 and rhat <= RHAT_MAX,
              "run more warmup and draws, or more chains (R-hat needs >= 2 chains); "
              "check for multimodality in a pair plot"),
        Check("min ESS bulk", ess_bulk, f">= {ess_min}", ess_bulk >= ess_min,
              "run more draws; if ESS stays low the posterior is badly shaped: try a tighter prior"),
        Check("min ESS tail", ess_tail, f">= {ess_min}", ess_tail >= ess_min,
              "run more draws so the 5%/95% quantiles are estimated reliably"),
        Check("divergences", n_div, "== 0", n_div == 0,
              "raise target_accept (e.g. 0.95 or 0.99); divergences mean biased draws"),
        Check("min BFMI", bfmi, f">= {BFMI_MIN}", bool(np.isnan(bfmi) or bfmi >= BFMI_MIN),
              "low energy fraction: the noise scale or a weakly identified coefficient "
              "needs a more informative prior"),
    )
    steps = float(stats["n_steps"].mean()) if stats is not None and "n_steps" in stats else float("nan")
    return Review(checks, steps)


def warn_if_failed(review: Review, stacklevel: int = 3, retried: dict | None = None) -> None:
    """Warn (:class:`FitWarning`) when ``review`` failed; ``retried``: the first attempt's settings
    (``config["retry"]`` of a fit sampled twice), named in the message."""
    if not review.ok:
        names = ", ".join(f"{c.name}={c.value:.4g}" for c in review.failed)
        again = "" if retried is None else (
            f" (also when sampled again with stronger settings, after a first attempt with target_accept "
            f"{retried['target_accept']} and {retried['warmup']} warmup failed {', '.join(retried['failed'])})")
        warnings.warn(
            f"the fit failed its review ({names}){again}; its numbers are not to be trusted yet. "
            f"Remedy: {review.failed[0].remedy}",
            FitWarning,
            stacklevel=stacklevel,
        )
