"""Compiled NUTS samplers and Laplace steps, reused across sweeps: compile once, fit many.

A *sampler* is one XLA program. It is keyed by what changes the program: the model (law, priors,
noise, discrepancy, ...: :attr:`ModelInputs.fingerprint`), the sampler settings (chains, warmup,
draws, target acceptance, mass matrix, chain layout) and the number of runs rounded up to a
*bucket* (:func:`bucket`: the next power of two, at least ``MIN_BUCKET``). The sweep's data are
the program's arguments: padded to the bucket by repeating the last run, with a mask that drops
the padding from the likelihood (and from every mean over the runs), so the posterior is the one
of the unpadded sweep. A second fit of a different sweep of similar size therefore compiles
nothing in the same process, and only traces (no XLA compilation) in a new one, through JAX's
persistent compilation cache (:func:`bayesdistill.runtime.enable_compilation_cache`).

Before sampling, a second program per model and bucket, the *Laplace step* (:mod:`.laplace`),
finds each sweep's posterior mode and curvature; the sampler's chains then sample the whitened
``u`` of ``y = mode + root u`` (:func:`_build`), ``y`` the sampler's coordinates of the model's
unconstrained ``x`` (:mod:`.coordinates`: ``log E`` replaced by the log loss at the sweep's centre),
which makes the posterior close to a standard normal on well-identified sweeps.

One program samples a *batch*: ``B`` sweeps x ``C`` chains, each (sweep, chain) an independent
NUTS chain with its own adaptation, vectorised (``jax.vmap``) or one after another
(``lax.map``), and split over several devices (``jax.pmap``) where asked
(:func:`bayesdistill.inference.sampling.resolve_chain_method`). Chain ``c`` of a sweep fitted with
seed ``s`` uses ``jax.random.split(PRNGKey(s), C)[c]`` whatever batch it is in.

At most ``MAX_PROGRAMS`` samplers are kept (least recently used dropped): the compiled code of
every new program maps memory, and a process that compiled one per fit hit the kernel's
memory-map limit after ~45 fits.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpyro.infer.hmc import hmc
from numpyro.infer.util import log_likelihood

from .laplace import Laplace, flat_model, laplace_one, sampler_coordinates

#: the smallest bucket of runs; sweeps up to this many runs share one sampler
MIN_BUCKET = 16
#: samplers kept per process (least recently used dropped)
MAX_PROGRAMS = 16
#: sample statistics recorded per draw (names as arviz's ``sample_stats``)
STATS = ("diverging", "energy", "n_steps")


def bucket(n: int) -> int:
    """Runs padded to: the next power of two at least ``n`` and ``MIN_BUCKET`` (0 stays 0)."""
    if n <= 0:
        return 0
    return max(MIN_BUCKET, 1 << (int(n) - 1).bit_length())


class Job(NamedTuple):
    """One sweep to sample: the model, its arguments, and how many runs each observed site has.

    ``sizes`` maps each observed site (``"log_loss"``, ``"log_loss_student"``) to its number of
    runs; ``masks`` (optional) the runs of each site that are fitted (the rest are dropped).
    """

    fingerprint: str
    model: object
    args: tuple
    kwargs: dict
    sizes: dict
    seed: int
    masks: dict | None = None
    #: ``gap(free, args)`` of the sampler's coordinates (:func:`.laplace.sampler_coordinates`), or None
    gap: object = None


class Draws(NamedTuple):
    """What a sampler returns for one sweep: ``(chain, draw, ...)`` arrays, unpadded."""

    samples: dict
    stats: dict
    log_likelihood: dict
    seconds: float
    compiled: bool

    def flat_samples(self) -> dict:
        """The samples with the chains pooled: site -> ``(chains * draws, ...)``."""
        return {name: v.reshape(-1, *v.shape[2:]) for name, v in self.samples.items()}


class Settings(NamedTuple):
    chains: int
    draws: int
    warmup: int
    target_accept: float
    dense_mass: bool
    devices: int  # chains (and sweeps) split over this many devices; 1: all vectorised on one
    vectorize: bool = True  # False: the chains of a device run one after another (lax.map)


#: the program key of the Laplace step (:mod:`.laplace`) in place of sampler settings
LAPLACE = "laplace"
#: chains start at ``u ~ N(0, START_SCALE^2 I)`` in the whitened coordinates (``x = mode + root u``)
START_SCALE = 1.0
#: the random stream of the Laplace step (folded into the sweep's seed)
LAPLACE_STREAM = 19

#: the mask argument of each observed site
MASK_OF = {"log_loss": "mask", "log_loss_student": "mask_student"}
#: the data arguments of each observed site: positions in ``args`` whose leaves run over its runs
ARGS_OF = {"log_loss": 0, "log_loss_student": 1}

_PROGRAMS: OrderedDict = OrderedDict()
#: one background thread compiles the samplers asked for ahead (:meth:`Program.start_compiling`)
_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bayesdistill-compile")


def _pad_leaf(x, n_to):
    x = np.asarray(x)
    if x.shape[0] == n_to:
        return x
    return np.concatenate([x, np.repeat(x[-1:], n_to - x.shape[0], axis=0)], axis=0)


def padded(job: Job, joint: bool):
    """``(args, kwargs)`` of ``job`` padded to its buckets, with a mask per observed site."""
    args, kwargs = list(job.args), dict(job.kwargs)
    for site, n in job.sizes.items():
        nb = bucket(n)
        mask = np.arange(nb) < n
        if job.masks and site in job.masks:
            mask[:n] &= np.asarray(job.masks[site], bool)
        kwargs[MASK_OF[site]] = mask
        kwargs[site] = _pad_leaf(kwargs[site], nb)
        # joint model: (sup dict, dis dict, centre); others: every array argument over the runs
        # ((logN, logD, centre), grouped: (logN, logD, group code, centre))
        positions = (ARGS_OF[site],) if joint else [
            i for i, a in enumerate(args) if not isinstance(a, dict) and np.ndim(a) >= 1 and np.shape(a)[0] == n]
        for p in positions:
            args[p] = jax.tree.map(lambda x, nb=nb: _pad_leaf(x, nb), args[p])
    return tuple(args), kwargs


def sampler_group(fingerprint: str, sizes: dict) -> tuple:
    """What sweeps must share to be sampled by one program: the model and the buckets of their runs."""
    return fingerprint, tuple(sorted((k, bucket(n)) for k, n in sizes.items()))


def _program_key(job: Job, settings: Settings, batch: int):
    return sampler_group(job.fingerprint, job.sizes), settings, batch


def _build(model, s: Settings, gap=None):
    """The jitted sampler ``run(keys (T, 2), mode (T, d), root (T, d, d), args, kwargs)`` for T chains.

    Each chain samples the whitened ``u`` of ``y = mode + root u`` (:mod:`.laplace`), ``y`` the
    sampler's coordinates of the model's unconstrained ``x`` (:mod:`.coordinates`; ``gap``), from a
    standard-normal start, with numpyro's NUTS on one flat vector; draws come back constrained,
    every site of the model, with their pointwise log likelihood.
    """

    def one_chain(key, mode, root, args, kwargs):
        k_model, k_start, k_run = jax.random.split(key, 3)
        fm = flat_model(model, args, kwargs, k_model)
        coords = sampler_coordinates(fm, gap, args)
        potential = lambda u: coords.potential(mode + root @ u)  # noqa: E731
        init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")
        u0 = START_SCALE * jax.random.normal(k_start, mode.shape)
        u0 = jnp.where(jnp.isfinite(potential(u0)), u0, jnp.zeros_like(u0))  # else start at the mode
        state = init_kernel(u0, s.warmup, dense_mass=s.dense_mass, target_accept_prob=s.target_accept,
                            rng_key=k_run)

        def draw(st, _):
            st = sample_kernel(st)
            return st, (st.z, st.diverging, st.energy, st.num_steps)

        # one loop over warmup and draws: the NUTS kernel is compiled once (two loops compiled it
        # twice); the warmup's records are dropped
        _, kept = lax.scan(draw, state, None, length=s.warmup + s.draws)
        u, div, energy, n_steps = (x[s.warmup:] for x in kept)
        samples = jax.vmap(lambda y: fm.constrain(coords.to_x(y)))(mode + u @ root.T)
        ll = log_likelihood(model, samples, *args, parallel=True, **kwargs)
        return samples, dict(zip(STATS, (div, energy, n_steps))), ll

    many = jax.vmap(one_chain) if s.vectorize else (lambda *a: lax.map(lambda t: one_chain(*t), a))
    return Program(jax.jit(many) if s.devices <= 1 else jax.pmap(many), s.devices)


class Program:
    """A sampler or Laplace step: a jitted (or, over ``devices`` > 1, pmapped) function, compiled
    ahead of its first call where :func:`compile_ahead` was asked to (on a background thread)."""

    def __init__(self, fn, devices: int = 1):
        self.fn, self.devices, self.compiled, self.used = fn, devices, None, False

    def _shard(self, args):
        if self.devices <= 1:
            return args

        def shard(x):
            shape = (self.devices, x.shape[0] // self.devices) + tuple(x.shape[1:])
            return jax.ShapeDtypeStruct(shape, x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x.reshape(shape)

        return jax.tree.map(shard, args)

    def start_compiling(self, *args) -> None:
        """Trace and lower for ``args`` (shapes and dtypes only) here, and compile on a background thread.

        Tracing runs numpyro's handlers (a global stack: not thread-safe) and stays on this thread;
        XLA's compilation releases the GIL, so it overlaps the work that follows (the Laplace step).
        """
        lowered = self.fn.lower(*self._shard(args))
        self.compiled = _COMPILER.submit(lowered.compile)

    def __call__(self, *args):
        fn = self.fn if self.compiled is None else self.compiled.result()
        out = fn(*self._shard(args))
        self.used = True
        if self.devices <= 1:
            return out
        return jax.tree.map(lambda x: x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:]), out)


def _build_laplace(model, gap=None):
    """The jitted Laplace step ``run(keys (B, 2), args, kwargs)`` of B sweeps (:func:`.laplace.laplace_one`)."""
    return Program(jax.jit(lambda keys, args, kwargs: lax.map(lambda t: laplace_one(model, *t, gap=gap),
                                                              (keys, args, kwargs))))


def _program(job: Job, settings, batch: int):
    """The program of ``settings`` (a :class:`Settings`, or ``LAPLACE`` for the Laplace step) and
    whether its next call is its first in this process (it compiles, or waits for its compilation)."""
    key = _program_key(job, settings, batch)
    fn = _PROGRAMS.get(key)
    if fn is None:
        fn = _build_laplace(job.model, job.gap) if settings == LAPLACE else _build(job.model, settings, job.gap)
        _PROGRAMS[key] = fn
        while len(_PROGRAMS) > MAX_PROGRAMS:
            _PROGRAMS.popitem(last=False)
    _PROGRAMS.move_to_end(key)
    return fn, not fn.used


def clear_programs() -> None:
    """Forget every compiled sampler of this process (the persistent cache on disk stays)."""
    _PROGRAMS.clear()


def n_programs() -> int:
    """Samplers compiled and kept in this process."""
    return len(_PROGRAMS)


def _stacked(jobs: list[Job], joint: bool, repeat: int = 1):
    """The padded ``(args, kwargs)`` of ``jobs`` stacked along a leading axis, each ``repeat`` times."""
    pads = [padded(j, joint) for j in jobs]
    stack = lambda *xs: jnp.asarray(np.repeat(np.stack([np.asarray(x) for x in xs]), repeat, axis=0))  # noqa: E731
    return jax.tree.map(stack, *[p[0] for p in pads]), jax.tree.map(stack, *[p[1] for p in pads])


def _check_batch(jobs, settings, batch):
    key0 = _program_key(jobs[0], settings, batch)
    if any(_program_key(j, settings, batch) != key0 for j in jobs[1:]):
        raise ValueError("run: the jobs of one batch must share the model and its buckets")


def laplace(jobs: list[Job], *, joint: bool) -> list[Laplace]:
    """The mode, curvature and importance draws (:mod:`.laplace`) of every job, in one program call.

    The jobs must share a fingerprint and buckets. The batch is padded to a power of two (at least
    2: a fit and its inner leave-last-level-out fit) by repeating the last job, so that few
    programs are compiled. Job ``j`` uses the key ``fold_in(PRNGKey(seed), LAPLACE_STREAM)``.
    """
    batch = max(2, 1 << (len(jobs) - 1).bit_length())
    _check_batch(jobs, LAPLACE, batch)
    t0 = time.perf_counter()
    fn, compiled = _program(jobs[0], LAPLACE, batch)
    full = list(jobs) + [jobs[-1]] * (batch - len(jobs))
    keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(j.seed), LAPLACE_STREAM) for j in full])
    args, kwargs = _stacked(full, joint)
    out = jax.device_get(fn(keys, args, kwargs))
    seconds = (time.perf_counter() - t0) / len(jobs)
    res = []
    for b in range(len(jobs)):
        mode, root, pot, ok, agree, iters, samples, log_w = jax.tree.map(lambda x, b=b: np.asarray(x[b]), out)
        res.append(Laplace(mode, root, float(pot), bool(ok), int(agree), int(iters), samples, log_w, seconds,
                           compiled))
    return res


def _sampler_inputs(jobs, C, joint, mode, root) -> tuple:
    """The sampler's arguments ``(keys, mode, root, args, kwargs)`` for ``jobs``, ``C`` chains each."""
    keys = jnp.concatenate([jax.random.split(jax.random.PRNGKey(j.seed), C) for j in jobs])
    args, kwargs = _stacked(jobs, joint, C)
    return keys, jnp.asarray(mode), jnp.asarray(root), args, kwargs


def dimension(job: Job) -> int:
    """The number of unconstrained coordinates of ``job``'s posterior (traced for shapes only)."""
    return jax.eval_shape(lambda: flat_model(job.model, job.args, job.kwargs, jax.random.PRNGKey(0)).x0).shape[0]


def compile_ahead(jobs: list[Job], settings: Settings, *, joint: bool) -> None:
    """Start compiling the sampler :func:`run` will use for ``jobs``.

    The program is traced here and compiled on a background thread, so that XLA compiles it while
    this thread finds the modes (:func:`laplace`); :func:`run` waits for it. Nothing happens (not
    even a trace of the model) where the program exists already.
    """
    _check_batch(jobs, settings, len(jobs))
    if _program_key(jobs[0], settings, len(jobs)) in _PROGRAMS:
        return
    fn, _ = _program(jobs[0], settings, len(jobs))
    n, dim = settings.chains * len(jobs), dimension(jobs[0])
    shape = lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.asarray(x).dtype)  # noqa: E731
    example = _sampler_inputs(jobs, settings.chains, joint, np.zeros((n, dim)), np.zeros((n, dim, dim)))
    fn.start_compiling(*jax.tree.map(shape, example))


def run(jobs: list[Job], settings: Settings, *, joint: bool, modes: list[Laplace] | None = None) -> list[Draws]:
    """Sample every job with one program call; the jobs must share a fingerprint and buckets.

    ``modes`` (one :class:`Laplace` per job; computed here when not given) place and whiten the chains.
    """
    _check_batch(jobs, settings, len(jobs))
    if modes is None:
        modes = laplace(jobs, joint=joint)
    t0 = time.perf_counter()
    fn, compiled = _program(jobs[0], settings, len(jobs))
    C = settings.chains
    mode = np.repeat(np.stack([m.mode for m in modes]), C, axis=0)
    root = np.repeat(np.stack([m.root for m in modes]), C, axis=0)
    samples, stats, ll = jax.block_until_ready(fn(*_sampler_inputs(jobs, C, joint, mode, root)))
    seconds = time.perf_counter() - t0
    out = []
    for b, job in enumerate(jobs):
        take = lambda x, b=b: np.asarray(x[b * C:(b + 1) * C])  # noqa: E731
        lik = {site: take(v)[..., :job.sizes[site]] for site, v in ll.items() if site in job.sizes}
        out.append(Draws(jax.tree.map(take, samples), jax.tree.map(take, stats), lik, seconds / len(jobs),
                         compiled))
    return out


def fingerprint(*parts) -> str:
    """A stable text key of the things a model closure is built from (JSON, sorted keys)."""
    return json.dumps(parts, sort_keys=True, default=repr)
