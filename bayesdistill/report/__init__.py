"""Report: text and Markdown tables, and the Markdown pages of a fit and of a decision (names load on first use)."""

from .._lazy import lazy_exports

_EXPORTS = {"write_decision": ".markdown", "write_report": ".markdown"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
