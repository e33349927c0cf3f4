"""The checks audits can name: each with its function and its result type, whose class tags say what
it is (``mechanistic``, ``figure_metrics``). The YAML loader, the verdict and the report's figures read
this table, so a new check is its module plus one line here (and its arguments in the audit schema)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import behaviour, checks
from .results import CheckResult


@dataclass(frozen=True)
class RegisteredCheck:
    name: str
    function: Callable
    result: type[CheckResult]
    takes: str  # what its first argument is: "concept" (labelled examples or pairs) or "generated" inputs


CHECKS: dict[str, RegisteredCheck] = {entry.name: entry for entry in (
    RegisteredCheck("probe", checks.probe, checks.ProbeResult, "concept"),
    RegisteredCheck("erase", checks.erase, checks.EraseResult, "concept"),
    RegisteredCheck("ablate", checks.ablate, checks.AblateResult, "concept"),
    RegisteredCheck("patch", checks.patch, checks.PatchResult, "concept"),
    RegisteredCheck("steer", checks.steer, checks.SteerResult, "concept"),
    RegisteredCheck("expect_label", behaviour.expect_label, behaviour.BehaviourResult, "generated"),
    RegisteredCheck("expect_invariant", behaviour.expect_invariant, behaviour.BehaviourResult, "generated"),
    RegisteredCheck("expect_direction", behaviour.expect_direction, behaviour.BehaviourResult, "generated"),
)}


def is_mechanistic(check: str) -> bool:
    """Whether a failed assertion on ``check`` is evidence about the mechanism (unknown names: no)."""
    entry = CHECKS.get(check)
    return entry is not None and entry.result.mechanistic


def figure_metrics(check: str) -> tuple[str, ...]:
    entry = CHECKS.get(check)
    return entry.result.figure_metrics if entry is not None else ()
