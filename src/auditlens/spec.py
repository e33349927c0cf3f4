"""Declarative audits: ``*.audit.yaml`` files validated against a JSON Schema and turned into checks.

An entry names one check (probe, erase, ablate, patch, steer), its arguments, and ``expect:``
conditions on fields of the check's result. See docs/writing-audits.md.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema

from . import behaviour, checks
from .errors import CheckError, closest
from .yaml_source import SpecError, YamlSource

CHECKS: dict[str, Callable] = {"probe": checks.probe, "erase": checks.erase, "ablate": checks.ablate,
                               "patch": checks.patch, "steer": checks.steer,
                               "expect_label": behaviour.expect_label, "expect_invariant": behaviour.expect_invariant,
                               "expect_direction": behaviour.expect_direction}
BEHAVIOUR_CHECKS = ("expect_label", "expect_invariant", "expect_direction")
RESULT_TYPES = {"probe": checks.ProbeResult, "erase": checks.EraseResult, "ablate": checks.AblateResult,
                "patch": checks.PatchResult, "steer": checks.SteerResult,
                **{name: behaviour.BehaviourResult for name in BEHAVIOUR_CHECKS}}
CONCEPT_ARGUMENTS = ("concept", "pairs", "data", "reference")  # their values name concept files
ENTRY_KEYS = ("name", "id", "models", "marks", "expect")
_COMPARISON = re.compile(r"^\s*(>=|<=|==|>|<)\s*(-?\d+(\.\d+)?([eE]-?\d+)?)\s*$")
_BETWEEN = re.compile(r"^\s*between\s+(-?\d+(\.\d+)?)\s+and\s+(-?\d+(\.\d+)?)\s*$")
_ALIAS_KINDS = ("embed", "layer", "attn", "mlp")


def schema(kind: str = "audit") -> dict:
    """The shipped JSON Schema of audit files (``audit``) or concept files (``concept``)."""
    return json.loads(resources.files("auditlens").joinpath(f"schemas/{kind}.schema.json").read_text())


@dataclass(frozen=True)
class Condition:
    """``>= 0.9``-style bound on a metric; ``between a and b`` is inclusive."""

    text: str
    op: str
    value: float
    upper: float | None = None

    def holds(self, x: float) -> bool:
        if self.op == "between":
            return self.value <= x <= self.upper
        return {">=": x >= self.value, "<=": x <= self.value, ">": x > self.value, "<": x < self.value,
                "==": x == self.value}[self.op]

    def __str__(self) -> str:
        return self.text.strip()


def parse_condition(text) -> Condition:
    if isinstance(text, str):
        if match := _COMPARISON.match(text):
            return Condition(text, match.group(1), float(match.group(2)))
        if match := _BETWEEN.match(text):
            low, high = float(match.group(1)), float(match.group(3))
            if low <= high:
                return Condition(text, "between", low, high)
    raise ValueError(f"{text!r} is not a condition; write '>= 0.9', '<= 0.05', '> x', '< x', '== x' "
                     "or 'between 0.4 and 0.6'")


@dataclass(frozen=True)
class AuditSpec:
    """One entry of an audit file, validated."""

    path: Path
    line: int
    name: str
    id: str
    check: str
    arguments: dict
    expect: dict  # field -> Condition
    models: tuple[str, ...] | None = None
    marks: tuple = ()

    def run(self, subject, concept: Callable[[str], object]):
        """Call the check; return its result and the text of every expectation it misses."""
        if self.check in BEHAVIOUR_CHECKS:
            result = CHECKS[self.check](subject, **_behaviour_arguments(self.arguments, concept))
        else:
            arguments = {k: concept(v) if k in CONCEPT_ARGUMENTS else v for k, v in self.arguments.items()}
            target = arguments.pop("pairs") if "pairs" in arguments else arguments.pop("concept")
            result = CHECKS[self.check](subject, target, **arguments)
        missed = []
        for field, condition in self.expect.items():
            value = float(getattr(result, field))
            if condition.op == "between":
                result.record_threshold(field, ">=", condition.value, value >= condition.value)
                result.record_threshold(field, "<=", condition.upper, value <= condition.upper)
            else:
                result.record_threshold(field, condition.op, condition.value, condition.holds(value))
            if not condition.holds(value):
                interval = result.intervals().get(field)
                ci = f" ({int(interval.level * 100)}% CI {interval})" if interval else ""
                missed.append(f"{field} = {value:.4f}{ci}, expected {condition}")
        return result, missed


def _behaviour_arguments(arguments: dict, concept: Callable[[str], object]) -> dict:
    """YAML arguments of a behavioural check as Python ones: strategies, perturbations, label indices."""
    arguments = dict(arguments)
    source = arguments["inputs"]
    named = concept(source) if isinstance(source, str) else None
    if named is not None:
        arguments["inputs"] = behaviour.from_concept(named)
        if named.answer_tokens:
            arguments["answer_tokens"] = list(named.answer_tokens)
    elif "template" in source:
        arguments["inputs"] = behaviour.templated_text(source["template"], source["slots"])
    else:
        arguments["inputs"] = behaviour.token_sequences(source["words"], source.get("min_size", 1),
                                                        source.get("max_size", 12))
    if isinstance(arguments.get("label"), str):
        names = list(named.label_names or ()) if named is not None else []
        if arguments["label"] not in names:
            raise CheckError(f"label {arguments['label']!r} is not one of the concept's labels {names}")
        arguments["label"] = names.index(arguments["label"])
    if "perturb" in arguments:
        arguments["perturb"] = perturbation(arguments["perturb"])
    return arguments


def perturbation(spec):
    """A perturbation from its YAML form (see the schema's ``perturb``)."""
    if spec == "add_negation":
        return behaviour.add_negation()
    if spec == "remove_negation":
        return behaviour.remove_negation()
    (kind, options), = spec.items()
    if kind == "swap":
        return behaviour.swap_words(options)
    if kind == "insert":
        return behaviour.insert_words(options["words"], options.get("min_count", 1), options.get("max_count", 1),
                                      options.get("keep_last", 0))
    if kind == "substitute":
        return behaviour.substitute_words(options["words"], options.get("keep_first", 0), options.get("keep_last", 0))
    if kind == "replace":
        return behaviour.replace_words(options["targets"], options["replacements"])
    return behaviour.rewrite(options)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "audit"


def load_audit_file(path: Path | str, concepts: Collection[str] | None = None) -> list[AuditSpec]:
    """Parse and validate ``path``; ``concepts`` (names in probes/) enables the concept-name check.
    Raises SpecError naming the file, the line, the entry and the key."""
    source = YamlSource(Path(path))
    data = source.data
    if not isinstance(data, dict):
        raise SpecError(path, 1, f"an audit file is a mapping with an `audits:` list; got {type(data).__name__}")
    _check_schema(source, data)
    file_models = tuple(data["models"]) if "models" in data else None
    specs, seen = [], {}
    for index, entry in enumerate(data["audits"]):
        spec = _entry(source, index, entry, concepts, file_models)
        if spec.id in seen:
            raise SpecError(path, spec.line, f"entry {spec.name!r}: id {spec.id!r} is already used by the entry on "
                                             f"line {seen[spec.id]}; give each entry a unique `id:` or name")
        seen[spec.id] = spec.line
        specs.append(spec)
    return specs


def _where(source, index, entry) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"entry {name!r} (audits[{index}])" if name else f"audits[{index}]"


def _check_schema(source: YamlSource, data: dict) -> None:
    validator = jsonschema.Draft202012Validator(schema("audit"))
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    error = errors[0]
    path = list(error.absolute_path)
    where = ""
    if len(path) >= 2 and path[0] == "audits":
        where = _where(source, path[1], data["audits"][path[1]]) + ", "
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed][0]
        near = closest(str(unknown), allowed, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        kind = "check or key" if len(path) == 2 else "key"
        raise SpecError(source.path, source.line_of([*path, unknown]),
                        f"{where}unknown {kind} {unknown!r}{hint} Allowed: {', '.join(allowed)}")
    key = ".".join(str(p) for p in path[2:]) or ".".join(str(p) for p in path) or "the file"
    if error.validator == "required":
        message = f"{where}{error.message.split(' is a required')[0]} is required" + (f" in {key}" if path[2:] else "")
    elif error.validator == "type":
        message = f"{where}key {key!r} is {type(error.instance).__name__} {error.instance!r}; expected {error.validator_value}"
    elif error.validator in ("enum", "oneOf") and not isinstance(error.instance, (dict, list)):
        allowed = error.validator_value if error.validator == "enum" else _enum_values(error)
        message = f"{where}key {key!r} is {error.instance!r}; allowed: {', '.join(map(str, allowed))}"
    else:
        message = f"{where}key {key!r}: {error.message}"
    raise SpecError(source.path, source.line_of(path), message)


def _enum_values(error) -> list:
    values = []
    for option in error.validator_value:
        values += option.get("enum", []) or ([option["type"]] if "type" in option else [])
    return values


def _entry(source, index, entry, concepts, file_models) -> AuditSpec:
    where, line = _where(source, index, entry), source.line_of(["audits", index])
    named = [k for k in entry if k in CHECKS]
    if len(named) != 1:
        found = f"found {', '.join(named)}" if named else "found none"
        raise SpecError(source.path, line, f"{where}: an entry names exactly one check ({', '.join(CHECKS)}); {found}")
    check = named[0]
    arguments = dict(entry[check])
    concept_keys = CONCEPT_ARGUMENTS + (("inputs",) if isinstance(arguments.get("inputs"), str) else ())
    for key in concept_keys:
        if key in arguments and concepts is not None and arguments[key] not in concepts:
            near = closest(arguments[key], concepts, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise SpecError(source.path, source.line_of(["audits", index, check, key]),
                            f"{where}, key '{check}.{key}': unknown concept {arguments[key]!r}{hint} "
                            f"Concepts in probes/: {', '.join(sorted(concepts)) or 'none'}")
    if "at" in arguments:
        _check_site(source, index, check, where, arguments["at"])
    sweep = check == "probe" and "*" in str(arguments.get("at", "layer:*"))
    result_type = checks.ProbeSweep if sweep else RESULT_TYPES[check]
    fields = [f.name for f in dataclasses.fields(result_type) if f.type in ("float", float)]
    expect = {}
    for field, text in entry["expect"].items():
        key_line = source.line_of(["audits", index, "expect", field])
        if field not in fields:
            near = closest(field, fields, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            what = (f"a probe sweep (at: {arguments.get('at', 'layer:*')}"
                    f"{'' if 'at' in arguments else ', the default'})" if sweep else f"a {check} result")
            raise SpecError(source.path, key_line, f"{where}, key 'expect.{field}': {what} has no field "
                                                   f"{field!r}{hint} Fields: {', '.join(fields)}")
        try:
            expect[field] = parse_condition(text)
        except ValueError as exc:
            raise SpecError(source.path, key_line, f"{where}, key 'expect.{field}': {exc}") from None
    return AuditSpec(source.path, line, entry["name"], entry.get("id") or slug(entry["name"]), check, arguments,
                     expect, tuple(entry["models"]) if "models" in entry else file_models,
                     tuple(entry.get("marks", ())))


def _check_site(source, index, check, where, site) -> None:
    """Sites resolve against the model at run time; here only an alias-shaped name is checked."""
    kind, colon, rest = str(site).partition(":")
    if not colon:
        return  # embed, or a module path: checked when the model is known
    valid_index = rest == "*" or re.fullmatch(r"-?\d+", rest)
    if kind in _ALIAS_KINDS[1:] and valid_index:
        return
    near = closest(kind, _ALIAS_KINDS[1:], n=1)
    hint = f"; did you mean '{near[0]}:{rest}'?" if near and valid_index else ""
    raise SpecError(source.path, source.line_of(["audits", index, check, "at"]),
                    f"{where}, key '{check}.at': {site!r} is not a site{hint} Sites: embed, layer:N, attn:N, "
                    "mlp:N (N may be negative or *), or a module path")
