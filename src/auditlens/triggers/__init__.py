"""Trigger search: the token phrase that moves a model's answers most, by gradient-guided swaps
(``search``) or, where every phrase fits the budget, by trying them all (``exhaustive``), towards each
target answer in turn (``targets``), calibrated against random triggers of its shape (``calibration``).
The check that measures what the found trigger does is ``checks.trigger``."""

from .exhaustive import score_every_trigger
from .search import Scorer, Search, search
from .targets import search_each_target

__all__ = ["Scorer", "Search", "score_every_trigger", "search", "search_each_target"]
