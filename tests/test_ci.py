"""``.ci/find-python``: the Makefile and ``.ci/run`` find the newest supported Python even where the default
``python3`` is too old and ``HOME`` is empty (pyenv's shims fail then), and fail with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIND = Path(__file__).resolve().parent.parent / ".ci" / "find-python"
SUPPORTED = ((3, 12), (3, 13))


def _find(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(FIND)], env=env, capture_output=True, text=True, timeout=60)


def test_finds_a_supported_python_with_an_empty_home(tmp_path):
    """With HOME empty and only /usr/bin and /bin on PATH (where python3 may be too old), the finder
    still finds a supported interpreter: the one running the tests is in pyenv's versions folder, or
    on those paths."""
    here = Path(sys.executable).resolve()
    env = {"HOME": "", "PATH": "/usr/bin:/bin", "FIND_PYTHON_ROOTS": str(here.parents[3]) if "pyenv" in str(here)
           else ""}
    out = _find(env)
    if out.returncode != 0:
        pytest.skip(f"no Python 3.12-3.13 reachable without PATH here: {out.stderr.strip()}")
    python = out.stdout.strip()
    version = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert tuple(map(int, version)) in SUPPORTED, (python, version)
    assert out.stderr == ""


def test_one_clear_line_when_none_is_found(tmp_path):
    old = tmp_path / "bin"
    old.mkdir()
    fake = old / "python3"  # a python3 that is too old
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    out = _find({"HOME": "", "PATH": f"{old}:/usr/bin:/bin", "FIND_PYTHON_ROOTS": str(tmp_path / "no-pyenv")})
    if any(Path(d, f"python{v}").exists() for d in ("/usr/local/bin", "/usr/bin", "/bin", "/opt/homebrew/bin")
           for v in ("3.13", "3.12")) or Path("/usr/bin/uv").exists():
        pytest.skip("a supported Python lies in a fixed system folder here")
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Python 3.12-3.13 found"), out.stderr
