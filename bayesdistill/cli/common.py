"""Helpers shared by the command modules: JSON output, one-line warnings, reading sweeps and posteriors."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings

import numpy as np

SHIPPED = "shipped:"


def _jsonable(obj):
    """Plain Python (JSON-ready) version of ``obj``; NaN and infinities become None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj if obj is None or isinstance(obj, (bool, int, str)) else str(obj)


def print_json(obj) -> None:
    print(json.dumps(_jsonable(obj), indent=2))


def warn_line(message) -> None:
    sys.stdout.flush()  # keep the order of stdout and stderr lines when both go to one place
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


def show_warning(message, category, filename, lineno, file=None, line=None):
    from ..errors import FitWarning, SweepWarning

    prefix = "" if issubclass(category, (FitWarning, SweepWarning)) else f"{category.__name__}: "
    warn_line(f"{prefix}{message}")


def capturing(fn, *args, **kwargs):
    """Run ``fn``, print each warning it raises as one line; return (result, messages)."""
    from ..errors import FitWarning, SweepWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        warnings.simplefilter("always", SweepWarning)
        result = fn(*args, **kwargs)
    for w in caught:
        show_warning(w.message, w.category, w.filename, w.lineno)
    return result, [str(w.message) for w in caught]


def parse_columns(text):
    from ..errors import SweepError

    bad = [part for part in (text or "").split(",") if text and "=" not in part]
    if bad:
        raise SweepError(f"--columns expects 'your name=standard name' pairs separated by commas, got {bad[0]!r}")
    return dict((s.strip() for s in part.split("=", 1)) for part in text.split(",")) if text else None


def read_data(spec: str, columns=None, subset=None):
    """A Sweep from a file path or ``shipped:NAME``."""
    from ..data.datasets import load_dataset
    from ..data.sweep import Sweep, read_sweep
    from ..errors import SweepError

    cols = parse_columns(columns)
    if spec.startswith(SHIPPED):
        name = spec[len(SHIPPED):]
        try:
            df = load_dataset(name, dataset=subset)
        except ValueError as exc:
            raise SweepError(str(exc)) from None
        sweep = read_sweep(df, columns=cols)
        return Sweep(sweep.df, spec + (f" (dataset {subset})" if subset else ""))
    if subset:
        raise SweepError("--subset applies only to shipped:gadre_c4")
    return read_sweep(spec, columns=cols)


def load_posterior(path, group=None):
    """A saved posterior; with ``group``, that group of a grouped fit."""
    from ..inference.posterior import load

    post = load(path)
    if group is not None:
        if not post.group_names:
            from ..errors import InputError

            raise InputError(f"--group {group}: {path} is not a grouped fit (fit --groups COLUMN)")
        post = post.group(group)
    if not post.review().ok:
        names = ", ".join(c.name for c in post.review().failed)
        warn_line(f"this posterior failed its review ({names}); its numbers are not to be trusted yet")
    return post


def subparser(sub, name, func, help, examples, parents):
    p = sub.add_parser(name, help=help, description=help, parents=parents,
                       epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p
