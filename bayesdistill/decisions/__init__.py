"""Decisions: objectives, recommendations, planning (least budget, efficiency), value of information."""

from .planning import efficiency, least_budget
from .recommendation import Recommendation, recommend
from .voi import value_of_information

__all__ = ["Recommendation", "efficiency", "least_budget", "recommend", "value_of_information"]
