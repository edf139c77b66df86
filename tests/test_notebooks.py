"""The notebooks in ``notebooks/``: each runs end to end, and the committed files are readable.

Every notebook is executed with tiny sampler settings (``BAYESDISTILL_NOTEBOOK_FAST=1``), in
memory, with ``notebooks/`` as the working directory and a kernel running this interpreter; the
committed file is never rewritten (the executed copy goes to pytest's ``tmp_path``). The committed
files must carry the outputs of a full-settings run and stay small enough to read on a repository
page.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = [
    "01_quickstart.ipynb",
    "02_diagnostics.ipynb",
    "03_distillation.ipynb",
    "04_budget_planning.ipynb",
    "05_comparing_laws.ipynb",
    "06_comparing_recipes.ipynb",
]
MAX_BYTES = 1_000_000
CELL_TIMEOUT = 600  # seconds
KERNEL = "bayesdistill-tests"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """Name of a kernel spec that runs this interpreter (found first through ``JUPYTER_PATH``).

    A ``python3`` spec in the user's Jupyter folders could point at another environment; this one
    cannot.
    """
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "bayesdistill tests", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("BAYESDISTILL_NOTEBOOK_FAST", "1")
    return KERNEL


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, kernel, tmp_path):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)  # an in-memory copy; the file is not touched
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute()  # raises CellExecutionError on the first cell that fails
    finally:
        nbformat.write(nb, tmp_path / name)  # the executed copy, for a look when a cell fails
    first = next(c for c in nb.cells if c.cell_type == "code")
    settings = "".join(o.get("text", "") for o in first.outputs if o.get("output_type") == "stream")
    assert "FAST mode" in settings, "the notebook did not pick up BAYESDISTILL_NOTEBOOK_FAST=1"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_full_outputs(name):
    path = NOTEBOOK_DIR / name
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{name} is {size / 1e6:.2f} MB; keep committed notebooks under 1 MB"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown", f"{name} should open with a markdown cell saying what it shows"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "BAYESDISTILL_NOTEBOOK_FAST" in code[0].source, f"{name}: the first code cell sets FAST"
    unrun = [i for i, c in enumerate(code) if c.execution_count is None]
    assert not unrun, f"{name}: code cells {unrun} were not executed; commit the notebook with its outputs"
    assert sum(len(c.outputs) for c in code) >= len(code) // 2, f"{name} has too few outputs"
    errors = [o.get("ename") for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert not errors, f"{name} was committed with errors: {errors}"
    settings = "".join(o.get("text", "") for o in code[0].outputs if o.get("output_type") == "stream")
    assert "full settings" in settings, f"{name} was committed with FAST-mode outputs; execute it with full settings"


#: absolute paths of some machine (the outputs must read the same on any machine)
ABSOLUTE_PATH = r"(?<![\w.])/(?:work|tmp|root|home|Users|private|var/folders|opt)/[^\s'\"]*"
DOTTED = r"\bbayesdistill(?:\.[A-Za-z_][A-Za-z0-9_]*)+"


def _resolves(dotted: str) -> bool:
    """Whether ``bayesdistill.a.b.c`` names an importable module or an attribute of one."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def _output_text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        out.append(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", [])))
        for kind, value in o.get("data", {}).items():
            if kind.startswith("text/") and kind != "text/html":
                out.append(value if isinstance(value, str) else "".join(value))
        out += o.get("traceback", [])
    return "\n".join(out)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_are_clean(name):
    """Committed outputs carry no absolute paths of the machine that ran them, no tracebacks, and name
    only modules and objects that exist."""
    import re

    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    text = "\n".join(_output_text(c) for c in nb.cells if c.cell_type == "code")
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    paths = sorted(set(re.findall(ABSOLUTE_PATH, text)))
    assert not paths, f"{name}: outputs name paths of the machine that ran them: {paths[:5]}"
    assert "Traceback (most recent call last)" not in text, f"{name}: an output holds a traceback"
    missing = sorted({m for m in re.findall(DOTTED, text + "\n" + prose) if not _resolves(m)})
    assert not missing, f"{name}: outputs or text name what does not exist: {missing}"
