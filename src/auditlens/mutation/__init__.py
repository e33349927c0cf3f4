"""Mutation testing of an audit suite on the user's own model: would the audits catch a cheat planted
in it? See ``run.mutate`` and ``auditlens mutate``. (Loaded on first use: ``auditlens validate`` and the
plugin's model selection import this package without torch.)"""

from .operators import OPERATORS

# training seconds allowed per mutant: a cap, not a spend (training stops once the mutant is fit). On the
# MiniLM classifier (bench/minilm_classifier.py) backdoor, shortcut and position-leak fit in 25 steps and
# memorise in 125 to 175, which a busy two-core machine pays for within this; a mutant whose budget runs
# out first is reported over budget with what it reached.
BUDGET_S = 900.0

__all__ = ["BUDGET_S", "OPERATORS", "MutationOptions", "MutationResult", "Mutant", "mutate"]


def __getattr__(name: str):
    if name in ("MutationOptions", "MutationResult", "Mutant", "mutate"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
