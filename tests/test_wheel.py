"""A real install: the wheel carries the shipped datasets and the default posterior.

The test builds the wheel from this checkout (no editable links), installs it
into a new virtual environment and runs the CLI from a folder outside the
repository, so nothing can be read from the checkout's ``data/`` or
``models/``. The new environment borrows the test environment's third-party
packages (jax, numpyro, ...) through a ``.pth`` line instead of downloading
them again; the ``.pth`` files of that folder (the editable install of the
checkout among them) are not processed, so ``bayesdistill`` comes from the
wheel alone, which the test checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(cmd, cwd, env, timeout=600):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, clean environment, working folder outside the repository)."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "-w", str(root / "dist"), str(REPO)], cwd=root, env=env)
    (wheel,) = (root / "dist").glob("bayesdistill-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root, env=env)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
          str(wheel)], cwd=root, env=env)
    site = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=root, env=env).stdout.strip()
    (Path(site) / "_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = root / "elsewhere"
    work.mkdir()
    return wheel, venv / "bin", env, work


def test_wheel_carries_the_shipped_files(installed):
    wheel, *_ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("data/gadre_c4.csv", "data/gemstones_cool_end.csv", "data/datablations_single_epoch.csv",
                    "data/LICENSE-MIT-gadre.txt", "data/README.md", "models/distillation_replica.nc",
                    "data/porian_rw_cosine.csv", "data/LICENSE-MIT-porian.txt", "models/misfit_prior.json"):
        assert f"bayesdistill/_shipped/{shipped}" in names, shipped


def test_installed_package_runs_outside_the_repository(installed):
    _, bin_, env, work = installed
    where = _run([str(bin_ / "python"), "-c", "import bayesdistill, bayesdistill.inference.shipped as s; "
                  "print(bayesdistill.__file__); print(s.DEFAULT_POSTERIOR)"], cwd=work, env=env).stdout.split()
    assert all(not Path(p).resolve().is_relative_to(REPO) for p in where), where
    assert "_shipped" in where[1]

    listed = json.loads(_run([str(bin_ / "bayesdistill"), "datasets", "--json"], cwd=work, env=env).stdout)
    rows = {d["name"]: d["rows"] for d in listed["datasets"]}
    assert rows == {"gadre_c4": 104, "gemstones_cool_end": 199, "datablations_single_epoch": 29,
                    "porian_rw_cosine": 88, "porian_owt2_cosine": 88, "olmo2_ladder": 25}

    out = _run([str(bin_ / "bayesdistill"), "recommend", "--budget", "1e22", "--student-size", "1e9", "--json"],
               cwd=work, env=env)
    rec = json.loads(out.stdout)
    assert "SYNTHETIC" in rec["posterior"]
    assert rec["option"] in ("supervised", "best_case", "teacher_inference", "teacher_pretraining",
                             "pretraining_inference")
    assert 0.0 <= rec["p_distill_beats_supervised"] <= 1.0
    assert "ArviZ" not in out.stderr  # no third-party banner


def test_import_is_quiet_on_a_new_machine(tmp_path):
    """No ArviZ once-a-day banner (or any other warning) when bayesdistill is imported with an empty
    user cache, even with warnings turned into errors; the stamp ArviZ writes is not needed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONWARNINGS")}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    for _ in range(2):  # the first import of the day, and a later one
        out = _run([sys.executable, "-W", "error", "-c", "import bayesdistill"], cwd=REPO, env=env)
        assert out.stderr == "", out.stderr
