"""Trigger search: the token phrase that moves a model's answers most, by gradient-guided swaps
(``search``) or, where every phrase fits the budget, by trying them all (``exhaustive``). The check
that measures what the found trigger does is ``checks.trigger``."""

from .exhaustive import exhaustive
from .search import Scorer, Search, search

__all__ = ["Scorer", "Search", "exhaustive", "search"]
