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
    #: the noise kind, and a key of everything the model closure is built from (the sampler's cache key)
    model_noise: str = "student_t"
    fingerprint: str = ""
    #: runs per observed site
    sizes: dict | None = None
