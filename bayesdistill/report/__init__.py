"""Report: text and Markdown tables, and the Markdown pages of a fit and of a decision."""

from .markdown import write_decision, write_report

__all__ = ["write_decision", "write_report"]
