"""The package's shape: one-way layers (``lint-imports``), no import circles, no name that hides a module."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bayesdistill as bd


def _modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(bd.__path__, "bayesdistill.") if not m.name.endswith("__main__")]


def test_no_exported_name_equals_a_module_name():
    """``bd.fit`` is a function, so no module anywhere in the package may be called ``fit`` (and so on)."""
    modules = _modules()
    names = {m.rsplit(".", 1)[1] for m in modules}
    packages = [bd] + [importlib.import_module(m) for m in modules if hasattr(importlib.import_module(m), "__path__")]
    clashes = [f"{p.__name__}.{n}" for p in packages for n in p.__all__ if n in names]
    assert not clashes, f"exported names that equal a module's name: {clashes}"
    assert {p.__name__ for p in packages} >= {f"bayesdistill.{s}" for s in (
        "laws", "data", "inference", "allocation", "decisions", "plots", "report", "cli")}


def test_plots_is_reachable_from_the_package_face():
    assert bd.plots.plot_fit is importlib.import_module("bayesdistill.plots.fits").plot_fit
    assert all(callable(getattr(bd.plots, n)) for n in bd.plots.__all__)
    defined = {n for m in ("fits", "distillation", "decisions", "comparison")
               for n in vars(importlib.import_module(f"bayesdistill.plots.{m}")) if n.startswith("plot_")}
    assert defined <= set(bd.plots.__all__), f"plot functions missing from bd.plots: {defined - set(bd.plots.__all__)}"


def test_no_import_circles():
    """No module reaches itself through the modules it imports (function-level imports count too)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("bayesdistill")
    circles = sorted({m for m in graph.modules for i in graph.find_modules_directly_imported_by(m)
                      if i != m and graph.chain_exists(importer=i, imported=m)})
    assert not circles, f"modules in import circles: {circles}"
