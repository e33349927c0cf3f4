"""Mutation testing of an audit suite on the user's own model: would the audits catch a cheat planted
in it? See ``run.mutate`` and ``auditlens mutate``. (Loaded on first use: ``auditlens validate`` and the
plugin's model selection import this package without torch.)"""

from ..errors import MutationError
from .operators import OPERATORS, check_operators

# training seconds allowed per mutant: a cap, not a spend (training stops once the mutant is fit). On the
# MiniLM classifier (bench/minilm_classifier.py) backdoor, shortcut and position-leak fit in 25 steps and
# memorise in 125 to 175, which a busy two-core machine pays for within this; a mutant whose budget runs
# out first is reported over budget with what it reached.
BUDGET_S = 900.0


def check_min_score(value: float | None, flag: str) -> float | None:
    """The minimum mutation score ``flag`` asked for (None: no gate); MutationError unless a share from 0 to 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1):
        raise MutationError(f"{flag} is a share of scored mutants, 0 to 1; got {value}")
    return value


__all__ = ["BUDGET_S", "OPERATORS", "MutationOptions", "MutationResult", "Mutant", "check_min_score",
           "check_operators", "mutate"]


def __getattr__(name: str):
    if name in ("MutationOptions", "MutationResult", "Mutant", "mutate"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
