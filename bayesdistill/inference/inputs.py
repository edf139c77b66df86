"""What :func:`bayesdistill.fit` hands to NUTS, shared by the plain (:mod:`.sampling`) and grouped
(:mod:`.pooling`) model builders."""

from __future__ import annotations

from typing import NamedTuple


class ModelInputs(NamedTuple):
    """Everything :func:`fit` hands to NUTS: ``model(*args, **kwargs)`` is the model with its data."""

    priors: dict
    model: object
    args: tuple
    kwargs: dict
    centre: dict
    constant: dict
    dims: dict
