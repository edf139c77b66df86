"""Atomic file writes: a failed write leaves the old file as it was."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)``, then move the temporary file onto ``path``.

    The temporary file lies in ``path``'s folder (so the move is atomic) and
    gets the permissions of any new file of the user (``0o666`` less the
    umask; ``mkstemp`` alone makes it private). If ``write`` fails, the
    temporary file is removed and ``path`` keeps what it held.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text_atomically(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    return write_atomically(path, write)


#: where a wheel carries the repository's ``data/`` and ``models/`` files (see pyproject.toml)
_INSTALLED = Path(__file__).resolve().parent / "_shipped"
#: a checkout (or an editable install) reads them where they live in the repository
_CHECKOUT = Path(__file__).resolve().parent.parent


def shipped_file(folder: str, name: str) -> Path:
    """Path of a file that ships with the package: ``folder`` is ``"data"`` or ``"models"``.

    A wheel carries these files inside the package (``bayesdistill/_shipped/``);
    a checkout reads them from the repository's own ``data/`` and ``models/``.
    The path returned may not exist (the caller says what is missing).
    """
    installed = _INSTALLED / folder / name
    return installed if installed.is_file() else _CHECKOUT / folder / name
