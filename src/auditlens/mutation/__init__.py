"""Mutation testing of an audit suite on the user's own model: would the audits catch a cheat planted
in it? See ``run.mutate`` and ``auditlens mutate``. (Loaded on first use: ``auditlens validate`` and the
plugin's model selection import this package without torch.)"""

from .operators import OPERATORS

__all__ = ["OPERATORS", "MutationOptions", "MutationResult", "Mutant", "mutate"]


def __getattr__(name: str):
    if name in ("MutationOptions", "MutationResult", "Mutant", "mutate"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
