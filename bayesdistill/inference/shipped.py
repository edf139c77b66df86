"""The fitted posterior that ships in ``models/`` (see ``models/README.md``).

``default_posterior()`` loads the joint distillation fit to the SYNTHETIC
replica of the paper's sweep (``bd.paper_sweep(seed=0)``: Table 6 laws plus 1%
noise). It lets ``bayesdistill recommend`` answer on a fresh clone; it is not
a measurement of any real model family. Rebuild it with
``python models/make_default.py``.
"""

from __future__ import annotations

from .._files import shipped_file
from ..errors import PosteriorFileError

DEFAULT_POSTERIOR = shipped_file("models", "distillation_replica.nc")


def default_posterior():
    """The shipped joint distillation posterior (fitted to the synthetic paper replica)."""
    from .posterior import load

    if not DEFAULT_POSTERIOR.is_file():
        raise PosteriorFileError(
            f"the default posterior {DEFAULT_POSTERIOR} is missing; it ships with a clone of the repository "
            "(rebuild it with 'python models/make_default.py') or pass a posterior file of your own"
        )
    return load(DEFAULT_POSTERIOR)
