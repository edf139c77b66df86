"""Decisions: objectives, recommendations, planning (least budget, efficiency), recipe comparison, value of information (names load on first use)."""

from .._lazy import lazy_exports

_EXPORTS = {
    "efficiency": ".planning", "least_budget": ".planning",
    "RecipeComparison": ".recipes", "compare_recipes": ".recipes",
    "Recommendation": ".recommendation", "recommend": ".recommendation",
    "value_of_information": ".voi",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
