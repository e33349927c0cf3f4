"""Mutants in a pytest run. Which models an audit's ``models`` patterns select: a model whose spec matches
one (fnmatch), and a mutant (``auditlens.mutation``) or a repair (``auditlens repair``) whose original's spec
matches one (or its original's original: the repair of a mutant), so either is audited by the audits its
original is. And ``--audit-mutants N``: the session's
mutation step."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable
from pathlib import Path

import pytest


def selects(model: str, patterns: Iterable[str]) -> bool:
    from ..mutation.store import original_of
    from ..repair.writeup import repaired_from

    names = [model]
    while len(names) < 4:  # a model, what it was made from, and so on (a repair of a mutant of a model)
        parent = original_of(names[-1]) or repaired_from(names[-1])
        if not parent or parent in names:
            break
        names.append(parent)
    return any(fnmatch.fnmatchcase(name, p) for name in names for p in patterns)


def mutation_hook(config, session):
    """With ``--audit-mutants N``: the session's step that puts a mutation section in its report."""
    count, minimum = config.getoption("audit_mutants"), config.getoption("audit_min_mutation_score")
    if count < 0:
        raise pytest.UsageError(f"--audit-mutants is a number of mutants per operator, 0 (off) or more; got {count}")
    from ..errors import MutationError
    from ..mutation import OPERATORS, check_min_score, check_operators

    try:
        check_min_score(minimum, "--audit-min-mutation-score")
    except MutationError as exc:
        raise pytest.UsageError(str(exc)) from None
    if minimum is not None and not count:
        raise pytest.UsageError(f"--audit-min-mutation-score needs --audit-mutants N (the mutants it scores); got "
                                f"--audit-min-mutation-score {minimum} without --audit-mutants")
    if not count or config.option.collectonly:
        return None
    from ..mutation.in_session import mutation_section

    chosen = config.getoption("audit_mutant_operators")
    try:
        operators = check_operators(o.strip() for o in chosen.split(",") if o.strip()) if chosen else OPERATORS
    except MutationError as exc:
        raise pytest.UsageError(f"--audit-mutant-operators: {exc}") from None
    paths = [Path(str(a).split("::")[0]) for a in config.args] or [Path(config.rootpath)]
    return functools.partial(mutation_section, options=session.options, audit_paths=paths, per_operator=count,
                             min_score=minimum, operators=operators)
