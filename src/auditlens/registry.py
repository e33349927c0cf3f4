"""The checks audits can name: each with its function, its result type (whose class tags say what it is:
``mechanistic``, ``figure_metrics``) and the YAML arguments it takes. The audit-file loader and its JSON
Schema, the verdict and the report's figures all read this table, so a new check is its module plus
one entry here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import behaviour, checks
from .checks.circuit import METRICS as CIRCUIT_METRICS
from .circuits import COMPONENT_PATTERN
from .results import CheckResult


@dataclass(frozen=True)
class RegisteredCheck:
    name: str
    function: Callable
    result: type[CheckResult]
    takes: str  # its first argument: "concept" (labelled examples or pairs) or "generated" inputs
    arguments: dict  # the JSON Schema of its YAML arguments (``$ref`` to the audit schema's $defs)


def _ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def _arguments(required: tuple[str, ...], **properties) -> dict:
    return {"type": "object", "additionalProperties": False, "required": list(required), "properties": properties}


_FOLDS = {"type": "integer", "minimum": 2}
_GENERATED = {"inputs": _ref("inputs"), "max_examples": {"type": "integer", "minimum": 10},
              "description": {"type": "string"}}
_LABEL = {"type": ["integer", "string"]}
_TOLERANCE = {"type": "number", "minimum": 0}
_CIRCUIT = {"oneOf": [
    {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string", "pattern": COMPONENT_PATTERN},
     "description": "components: head:L.H, neuron:L.I, neurons:L, mlp:L, attn:L"},
    {"type": "string", "pattern": r"\.ya?ml$", "description": "a circuit file, relative to the audit file"}]}

_CIRCUIT_METRIC = {"metric": {"enum": list(CIRCUIT_METRICS)}}

CHECKS: dict[str, RegisteredCheck] = {entry.name: entry for entry in (
    RegisteredCheck("probe", checks.probe, checks.ProbeResult, "concept", _arguments(
        ("concept",), concept=_ref("concept"), at=_ref("site"), position=_ref("position"), folds=_FOLDS)),
    RegisteredCheck("erase", checks.erase, checks.EraseResult, "concept", _arguments(
        ("concept", "at"), concept=_ref("concept"), at=_ref("site"), position=_ref("position"), data=_ref("concept"),
        folds=_FOLDS)),
    RegisteredCheck("ablate", checks.ablate, checks.AblateResult, "concept", _arguments(
        ("concept", "at"), concept=_ref("concept"), at=_ref("site"), kind={"enum": ["zero", "mean", "resample"]},
        positions=_ref("positions"), reference=_ref("concept"))),
    RegisteredCheck("patch", checks.patch, checks.PatchResult, "concept", _arguments(
        ("pairs", "at"), pairs=_ref("concept"), at=_ref("site"), positions={"enum": ["all", "last"]})),
    RegisteredCheck("steer", checks.steer, checks.SteerResult, "concept", _arguments(
        ("concept", "at"), concept=_ref("concept"), at=_ref("site"), alpha={"type": "number", "exclusiveMinimum": 0},
        data=_ref("concept"), target={"type": "integer", "minimum": 0}, position=_ref("position"),
        positions=_ref("positions"), method={"enum": ["mean-difference", "probe"]})),
    *(RegisteredCheck(name, function, result, "concept", _arguments(
        ("concept", "circuit"), concept=_ref("concept"), circuit=_CIRCUIT, reference=_ref("concept"), **metric))
      for name, function, result, metric in (
          ("necessity", checks.necessity, checks.NecessityResult, {}),
          ("faithfulness", checks.faithfulness, checks.FaithfulnessResult, _CIRCUIT_METRIC),
          ("minimality", checks.minimality, checks.MinimalityResult, _CIRCUIT_METRIC))),
    RegisteredCheck("search_trigger", checks.search_trigger, checks.TriggerResult, "concept", _arguments(
        ("concept",), concept=_ref("concept"), length={"type": "integer", "minimum": 1},
        budget={"type": "integer", "minimum": 5},
        positions={"type": "array", "minItems": 1, "items": {"type": "integer"}},
        insert={"type": "boolean"}, restarts={"type": "integer", "minimum": 1},
        tokens={"type": "array", "minItems": 1, "items": {"type": ["string", "integer"]}})),
    RegisteredCheck("expect_label", behaviour.expect_label, behaviour.BehaviourResult, "generated", _arguments(
        ("inputs", "label"), **_GENERATED, label=_LABEL)),
    RegisteredCheck("expect_invariant", behaviour.expect_invariant, behaviour.BehaviourResult, "generated", _arguments(
        ("inputs", "perturb"), **_GENERATED, perturb=_ref("perturb"), tolerance=_TOLERANCE,
        min_similarity={"type": "number"})),
    RegisteredCheck("expect_direction", behaviour.expect_direction, behaviour.BehaviourResult, "generated",
                    _arguments(("inputs", "perturb", "label"), **_GENERATED, perturb=_ref("perturb"), label=_LABEL,
                               direction={"enum": ["up", "down"]}, tolerance=_TOLERANCE)),
)}


def is_mechanistic(check: str) -> bool:
    """Whether a failed assertion on ``check`` is evidence about the mechanism (unknown names: no)."""
    entry = CHECKS.get(check)
    return entry is not None and entry.result.mechanistic


def figure_metrics(check: str) -> tuple[str, ...]:
    """The metrics the report plots for ``check`` (none for an unknown name)."""
    entry = CHECKS.get(check)
    return entry.result.figure_metrics if entry is not None else ()
