"""The command line (``bayesdistill``): the only package that knows argparse. One module per command group."""

from .app import main

__all__ = ["main"]
