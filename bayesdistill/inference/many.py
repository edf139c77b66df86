"""Fit one law to many sweeps: one compiled sampler, batches of sweeps, optionally on a Dask cluster.

:func:`fit_many` checks every sweep first (an error names the sweep), then cuts the sweeps into
*batches*: sweeps that share a sampler (:mod:`bayesdistill.inference.engine`: same law, priors,
noise and bucket of runs), in their order, ``batch_size`` at a time. Each batch is one call of
one compiled program, all its sweeps' chains vectorised. The batches are the same whether they run
here, one after another, or as tasks of a Dask ``distributed.Client`` (``client=``), so the
posteriors are the same numbers either way: the cluster only decides where a batch runs.

Sweep ``i`` is fitted with seed ``seed + i``; with ``batch_size=1`` its posterior is exactly
``bd.fit(sweeps[i], seed=seed + i)`` with the same settings.
"""

from __future__ import annotations

import sys
import time

from ..errors import BayesDistillError
from .engine import sampler_group
from .sampling import _check_settings, fit_prepared, prepare

#: sweeps per batch when ``batch_size`` is not given: vectorising more chains in one program stops
#: paying on a CPU beyond about this many (see ``benchmarks/bench_many.py``)
DEFAULT_BATCH = {"cpu": 8, "gpu": 64}


def fit_many(sweeps, law="chinchilla", *, priors: dict | None = None, noise: str = "student_t", chains: int = 4,
             draws: int = 1000, warmup: int = 1000, seed: int = 0, target_accept: float | None = None,
             dense_mass: bool = True, chain_method: str = "auto", progress_bar: bool = False,
             review: bool = True, teacher: str = "measured", teacher_noise: float = 0.0,
             discrepancy: str = "compute", groups: str | None = None, pool="exponents",
             retry: bool = True, batch_size: int | None = None, client=None) -> list:
    """Fit ``law`` to each of ``sweeps``; one :class:`~bayesdistill.Posterior` per sweep, in order.

    Every argument but the last two is that of :func:`bayesdistill.fit`, applied to each sweep
    (sweep ``i`` gets the seed ``seed + i``); every posterior gets its own review.

    Parameters
    ----------
    sweeps : list of path, DataFrame or Sweep
    batch_size : int, optional
        Sweeps per compiled-program call (default: 8 on a CPU, 64 on a GPU). Larger batches
        vectorise more chains at once, which pays on a GPU; on a CPU the batch mostly saves
        Python and dispatch overhead.
    client : distributed.Client, optional
        Run the batches as tasks of this Dask cluster (each worker compiles the sampler once and
        keeps it; point the client at a real cluster to use several machines). ``None``: here,
        one batch after another. The results are the same numbers either way.

    Returns
    -------
    list of Posterior
    """
    sweeps = list(sweeps)
    if not sweeps:
        raise BayesDistillError("fit_many needs at least one sweep; got an empty list")
    _check_settings(chains, draws, warmup, seed, 0.9 if target_accept is None else target_accept, chain_method,
                    priors)
    if seed + len(sweeps) > 2**32:
        raise BayesDistillError(f"seed + number of sweeps must stay below 2**32 (sweep i is fitted with seed + i); "
                                f"got seed {seed} and {len(sweeps)} sweeps")
    if batch_size is None:
        import jax

        batch_size = DEFAULT_BATCH["gpu" if jax.default_backend() == "gpu" else "cpu"]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BayesDistillError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    options = {"priors": priors, "noise": noise, "teacher": teacher, "teacher_noise": teacher_noise,
               "discrepancy": discrepancy, "groups": groups, "pool": pool}
    preps = []
    for i, sweep in enumerate(sweeps):  # every input check before the first fit
        try:
            preps.append(prepare(sweep, law, seed=seed + i, **options))
        except BayesDistillError as exc:
            raise type(exc)(f"sweeps[{i}]: {exc}") from None
    settings = {"chains": chains, "draws": draws, "warmup": warmup, "target_accept": target_accept,
                "dense_mass": dense_mass, "chain_method": chain_method, "progress_bar": False, "review": review,
                "retry": retry}
    batches = make_batches(preps, batch_size)
    t0 = time.perf_counter()
    if client is None:
        out = []
        for k, b in enumerate(batches):
            out.extend(fit_prepared([preps[i] for i in b], **settings))
            _report(progress_bar, k + 1, len(batches), t0)
        posts = out
    else:
        posts = _on_cluster(client, preps, batches, settings, progress_bar, t0)
    order = [i for b in batches for i in b]
    result = [None] * len(preps)
    for i, post in zip(order, posts):
        result[i] = post
    return result


def make_batches(preps, batch_size: int) -> list[list[int]]:
    """Indices of ``preps`` per batch: grouped by sampler in order of first appearance, ``batch_size`` each."""
    groups: dict = {}
    for i, p in enumerate(preps):
        groups.setdefault(sampler_group(p.inputs.fingerprint, p.inputs.sizes), []).append(i)
    return [idx[k:k + batch_size] for idx in groups.values() for k in range(0, len(idx), batch_size)]


def _fit_batch(preps, settings):
    """One batch, on whichever process runs it (a Dask task: module-level, so workers import it)."""
    return fit_prepared(preps, **settings)


def _on_cluster(client, preps, batches, settings, progress_bar, t0):
    """Run the batches as tasks of the Dask ``client``; their posteriors in batch order."""
    try:
        from distributed import as_completed
    except ImportError:  # pragma: no cover - a client implies distributed is installed
        raise BayesDistillError("client= needs Dask distributed: pip install 'bayesdistill[cluster]'") from None
    if not hasattr(client, "submit"):
        raise BayesDistillError(f"client must be a distributed.Client, got a {type(client).__name__}")
    quiet = {**settings, "review": False}  # reviews are warned here, where the user sees them
    futures = [client.submit(_fit_batch, [preps[i] for i in b], quiet, pure=False) for b in batches]
    for k, _ in enumerate(as_completed(futures)):
        _report(progress_bar, k + 1, len(batches), t0)
    results = client.gather(futures)
    posts = [p for batch in results for p in batch]
    if settings["review"]:
        from .review import warn_if_failed

        for p in posts:
            warn_if_failed(p.review(), stacklevel=4, retried=p.config.get("retry"))
    return posts


def _report(progress_bar, done, total, t0):
    if progress_bar:
        print(f"bayesdistill: fit_many batch {done}/{total}, {time.perf_counter() - t0:.1f} s",
              file=sys.stderr, flush=True)
