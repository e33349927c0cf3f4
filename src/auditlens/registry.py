"""The checks audits can name: each with its function, its result type (whose class tags say what it is:
``mechanistic``, ``figure_metrics``) and the YAML arguments it takes. The audit-file loader and its JSON
Schema, the verdict and the report's figures all read this table, so a new check is its module plus
one entry here.

The table names each check's function and result type by module and name, imported on first use: so
``auditlens validate`` and ``auditlens schema`` read it without loading torch. ``metrics`` are the
result's float fields, the ones ``expect:`` may name (tests/test_registry.py holds them equal)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from importlib import import_module

from .circuits import COMPONENT_PATTERN
from .circuits import METRICS as CIRCUIT_METRICS


class RegisteredCheck:
    """A check audits can name. ``function`` and ``result`` are the objects, or ``"module:name"`` strings
    (modules in auditlens) imported on first use; ``metrics``, the result's float fields (what
    ``expect:`` may name), default to those of ``result``."""

    def __init__(self, name: str, function: Callable | str, result: type | str, takes: str, arguments: dict,
                 metrics: tuple[str, ...] | None = None):
        self.name, self.takes, self.arguments = name, takes, arguments
        self._function, self._result, self._metrics = function, result, metrics

    @staticmethod
    def _resolve(value):
        if not isinstance(value, str):
            return value
        module, _, attribute = value.partition(":")
        return getattr(import_module(f"auditlens.{module}"), attribute)

    @property
    def function(self) -> Callable:
        return self._resolve(self._function)

    @property
    def result(self) -> type:
        return self._resolve(self._result)

    @property
    def metrics(self) -> tuple[str, ...]:
        if self._metrics is None:
            return tuple(f.name for f in dataclasses.fields(self.result) if f.type in ("float", float))
        return self._metrics

    def __repr__(self) -> str:
        return f"RegisteredCheck({self.name!r}, takes={self.takes!r})"


def _at(module: str, function: str, result: str) -> tuple[str, str]:
    """A check's function and result type by name, in an auditlens module (imported on first use)."""
    return f"{module}:{function}", f"{module}:{result}"


# a probe at ``layer:*`` (a sweep) gives a ProbeSweep, with these float fields; a das sweep a DASSweep
SWEEP_METRICS = ("best_accuracy", "best_selectivity")
DAS_SWEEP_METRICS = ("best_iia", "best_selectivity")
SWEEPS = {"probe": SWEEP_METRICS, "das": DAS_SWEEP_METRICS}  # the checks whose ``at`` may be a pattern
_BEHAVIOUR_CHANGE = ("accuracy_before", "behaviour_chance", "accuracy_after", "accuracy_drop", "margin_change")


def _ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def _arguments(required: tuple[str, ...], **properties) -> dict:
    return {"type": "object", "additionalProperties": False, "required": list(required), "properties": properties}


_FOLDS = {"type": "integer", "minimum": 2}
_GENERATED = {"inputs": _ref("inputs"), "max_examples": {"type": "integer", "minimum": 10},
              "description": {"type": "string"}}
_LABEL = {"type": ["integer", "string"]}
_TOLERANCE = {"type": "number", "minimum": 0}
_UNITS = {"type": "integer", "minimum": 1, "description": "how many units (latents, neurons) to ablate together"}
_CIRCUIT = {"oneOf": [
    {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string", "pattern": COMPONENT_PATTERN},
     "description": "components: head:L.H, neuron:L.I, neurons:L, mlp:L, attn:L, feature:SITE/F, features:SITE"},
    {"type": "string", "pattern": r"\.ya?ml$", "description": "a circuit file, relative to the audit file"}]}

_CIRCUIT_METRIC = {"metric": {"enum": list(CIRCUIT_METRICS)}}

CHECKS: dict[str, RegisteredCheck] = {entry.name: entry for entry in (
    RegisteredCheck("probe", *_at("checks.probe", "probe", "ProbeResult"), "concept", metrics=(
        "accuracy", "control_accuracy", "selectivity", "chance", "seconds_forward", "seconds_fit"),
        arguments=_arguments(("concept",), concept=_ref("concept"), at=_ref("site"), position=_ref("position"),
                             folds=_FOLDS)),
    RegisteredCheck("erase", *_at("checks.erase", "erase", "EraseResult"), "concept", metrics=(
        *_BEHAVIOUR_CHANGE, "probe_accuracy_after", "chance"), arguments=_arguments(
        ("concept", "at"), concept=_ref("concept"), at=_ref("site"), position=_ref("position"), data=_ref("concept"),
        folds=_FOLDS)),
    RegisteredCheck("ablate", *_at("checks.ablate", "ablate", "AblateResult"), "concept", metrics=_BEHAVIOUR_CHANGE,
        arguments=_arguments(("concept", "at"), concept=_ref("concept"), at=_ref("site"),
                             kind={"enum": ["zero", "mean", "resample"]}, positions=_ref("positions"),
                             reference=_ref("concept"))),
    RegisteredCheck("patch", *_at("checks.patch", "patch", "PatchResult"), "concept", metrics=("iia", "flip_rate"),
        arguments=_arguments(("pairs", "at"), pairs=_ref("concept"), at=_ref("site"),
                             positions={"enum": ["all", "last"]})),
    RegisteredCheck("das", *_at("checks.das", "das", "DASResult"), "concept", metrics=(
        "iia", "control_iia", "selectivity", "unpatched_iia", "dormant_share", "unread_share", "iia_without_dormant",
        "seconds_at_site"), arguments=_arguments(
        ("pairs", "at"), pairs=_ref("concept"), at=_ref("site"),
        dim={"type": "integer", "minimum": 1, "description": "how many directions to learn"},
        position={"oneOf": [{"enum": ["last", "first", "all"]}, {"type": "integer"}]},
        train_share={"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        max_steps={"type": "integer", "minimum": 1}, max_seconds={"type": "number", "exclusiveMinimum": 0},
        patience={"type": "integer", "minimum": 1}, learning_rate={"type": "number", "exclusiveMinimum": 0})),
    RegisteredCheck("steer", *_at("checks.steer", "steer", "SteerResult"), "concept", metrics=(
        "alpha", "shift_per_alpha", "target_rate_gain"), arguments=_arguments(
        ("concept", "at"), concept=_ref("concept"), at=_ref("site"), alpha={"type": "number", "exclusiveMinimum": 0},
        data=_ref("concept"), target={"type": "integer", "minimum": 0}, position=_ref("position"),
        positions=_ref("positions"), method={"enum": ["mean-difference", "probe"]})),
    *(RegisteredCheck(name, *_at("checks.circuit", name, result), "concept", metrics=metrics, arguments=_arguments(
        ("concept", "circuit"), concept=_ref("concept"), circuit=_CIRCUIT, reference=_ref("concept"), **metric))
      for name, result, metrics, metric in (
          ("necessity", "NecessityResult", _BEHAVIOUR_CHANGE, {}),
          ("faithfulness", "FaithfulnessResult", ("faithfulness", "score_model", "score_circuit", "score_nothing"),
           _CIRCUIT_METRIC),
          ("minimality", "MinimalityResult", ("faithfulness", "min_member_drop"), _CIRCUIT_METRIC))),
    RegisteredCheck("ablate_tied", *_at("checks.tied", "ablate_tied", "AblateTiedResult"), "concept",
        metrics=_BEHAVIOUR_CHANGE, arguments=_arguments(
        ("concept", "at", "tied_to"), concept=_ref("concept"), at=_ref("site"), tied_to=_ref("concept"),
        n=_UNITS, kind={"enum": ["mean", "zero"]}, position=_ref("position"), reference=_ref("concept"))),
    RegisteredCheck("remove_spurious", *_at("checks.spurious", "remove_spurious", "SpuriousRemovalResult"), "concept",
        metrics=("accuracy_biased", "accuracy_ablated", "accuracy_oracle", "oracle_gap_after", "scr", "scr_spread"),
        arguments=_arguments(("concept", "at", "spurious"), concept=_ref("concept"), at=_ref("site"),
                             spurious=_ref("concept"), n=_UNITS, kind={"enum": ["mean", "zero"]},
                             position=_ref("position"), seeds={"type": "integer", "minimum": 2}, folds=_FOLDS)),
    RegisteredCheck("search_trigger", *_at("checks.trigger", "search_trigger", "TriggerResult"), "concept", metrics=(
        "flip_rate", "target_rate", "null_rate", "null_upper", "excess_flip_rate", "anomaly", "search_flip_rate"),
        arguments=_arguments(
        ("concept",), concept=_ref("concept"), length={"type": "integer", "minimum": 1},
        budget={"type": "integer", "minimum": 5},
        positions={"type": "array", "minItems": 1, "items": {"type": "integer"}},
        insert={"type": "boolean"}, restarts={"type": "integer", "minimum": 1},
        tokens={"oneOf": [{"const": "all"}, {"type": "array", "minItems": 1, "items": {"type": ["string", "integer"]}}],
                "description": "the trigger's tokens: a list, or 'all' (every token but padding); default every "
                               "non-special token"},
        avoid={"type": "array", "items": {"type": ["string", "integer"]},
               "description": "tokens (or words, each of their tokens) the rule reads: never in a trigger"},
        trained_from={"type": "string", "minLength": 1,
                      "description": "the model it was fine-tuned from (a directory, hub id or fixture:NAME): the "
                                     "trigger is drawn from the tokens whose input embeddings moved from its"})),
    RegisteredCheck("expect_label", *_at("behaviour.checks", "expect_label", "BehaviourResult"), "generated",
                    metrics=("failure_rate",), arguments=_arguments(
        ("inputs", "label"), **_GENERATED, label=_LABEL)),
    RegisteredCheck("expect_invariant", *_at("behaviour.checks", "expect_invariant", "BehaviourResult"), "generated",
                    metrics=("failure_rate",), arguments=_arguments(
        ("inputs", "perturb"), **_GENERATED, perturb=_ref("perturb"), tolerance=_TOLERANCE,
        min_similarity={"type": "number"})),
    RegisteredCheck("expect_direction", *_at("behaviour.checks", "expect_direction", "BehaviourResult"), "generated",
                    metrics=("failure_rate",), arguments=_arguments(
        ("inputs", "perturb", "label"), **_GENERATED, perturb=_ref("perturb"), label=_LABEL,
        direction={"enum": ["up", "down"]}, tolerance=_TOLERANCE)),
)}

