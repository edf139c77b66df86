"""Lazy re-exports for the package's ``__init__`` modules (PEP 562).

``import bayesdistill`` then costs milliseconds, and JAX, numpyro, ArviZ, pandas and matplotlib
are imported by the first use of what needs them: the command line answers ``--help`` at once.
"""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps each public name to the
    submodule (relative, e.g. ``".sampling"``) that defines it."""

    def __getattr__(name):
        if name in exports:
            module = importlib.import_module(exports[name], package)
            # a name that is its own submodule (``bd.plots``) is the module itself
            value = module if exports[name] == f".{name}" else getattr(module, name)
            globals_of(package)[name] = value  # later lookups skip this function
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(globals_of(package)) | set(exports))

    return __getattr__, __dir__


def globals_of(package: str) -> dict:
    import sys

    return vars(sys.modules[package])
