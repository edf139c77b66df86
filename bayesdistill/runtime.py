"""Runtime setup: MCMC chains on separate CPU cores, and JAX's persistent compilation cache.

XLA treats all CPU cores as one device, so numpyro's chains run on one core
however many the machine has. :func:`use_cpu_cores` (called when
bayesdistill is imported) asks XLA for several host devices, the way
``numpyro.set_host_device_count`` does, so that :func:`bayesdistill.fit`
can place chains on separate cores (``chain_method="auto"``). It changes
nothing on a GPU, and nothing once JAX's CPU backend has started (import
bayesdistill before running JAX code to get it).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "BAYESDISTILL_CPU_DEVICES"
#: at most this many host devices by default (4 chains is the default)
MAX_DEVICES = 4


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def use_cpu_cores() -> int:
    """Set ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` unless it is set already.

    ``$BAYESDISTILL_CPU_DEVICES`` sets the count (default: the usable cores,
    at most 4); ``1`` turns this off. Returns the count asked for (1 when
    nothing was changed).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return 1
    raw = os.environ.get(ENV, "")
    try:
        n = int(raw) if raw else min(_cores(), MAX_DEVICES)
    except ValueError:
        n = 1
    if n <= 1:
        return 1
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    return n


def enable_compilation_cache() -> None:
    """Use JAX's persistent compilation cache unless the user configured one or opted out.

    The cache (``$BAYESDISTILL_JAX_CACHE``, default ``~/.cache/bayesdistill/jax``;
    set it to ``0`` to disable) saves the ~5-10 s XLA compilation of the NUTS
    sampler on every later fit of a sweep of the same size.
    """
    import jax

    where = os.environ.get("BAYESDISTILL_JAX_CACHE", str(Path.home() / ".cache" / "bayesdistill" / "jax"))
    if where == "0" or jax.config.jax_compilation_cache_dir:
        return
    try:
        Path(where).mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
