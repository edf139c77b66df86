"""Decisions: objectives, recommendations, planning (least budget, efficiency), recipe comparison, value of information."""

from .planning import efficiency, least_budget
from .recipes import RecipeComparison, compare_recipes
from .recommendation import Recommendation, recommend
from .voi import value_of_information

__all__ = ["RecipeComparison", "Recommendation", "compare_recipes", "efficiency", "least_budget", "recommend", "value_of_information"]
