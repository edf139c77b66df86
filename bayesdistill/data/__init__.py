"""Data: reading and validating sweeps, the shipped datasets and the synthetic paper replica."""

from .datasets import list_datasets, load_dataset
from .replica import paper_sweep, simulate_sweep
from .sweep import Sweep, read_sweep

__all__ = ["Sweep", "list_datasets", "load_dataset", "paper_sweep", "read_sweep", "simulate_sweep"]
