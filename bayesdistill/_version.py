"""The package version, in one place (read by the package face, saved posteriors, reports and the CLI)."""

__version__ = "0.1.0"
