"""Audit files (``*.audit.yaml``): validated against the JSON Schema, then entry by entry against the
registry of checks and the concepts in probes/. Errors name the file, the line, the entry and the key.
See docs/writing-audits.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from importlib import resources
from pathlib import Path

import jsonschema

from ..circuits import circuit_beside
from ..errors import CheckError, closest
from ..registry import CHECKS, SWEEPS
from ..sites.features import is_feature_name, parse_feature_name
from ..sites.names import EMBED_SUM, alias_meant, is_component_name, parse_alias
from .conditions import parse_condition
from .dictionaries import declared_dictionaries
from .entry import CONCEPT_ARGUMENTS, AuditEntry
from .yaml_source import AuditFileError, YamlSource

SUFFIXES = (".audit.yaml", ".audit.yml")


def schema(kind: str = "audit") -> dict:
    """The JSON Schema of audit files (``audit``) or concept files (``concept``). The audit schema ships
    without its checks: each check's arguments come from the registry."""
    data = json.loads(resources.files("auditlens").joinpath(f"schemas/{kind}.schema.json").read_text())
    if kind == "audit":
        data["$defs"]["entry"]["properties"].update({name: c.arguments for name, c in CHECKS.items()})
    return data


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "audit"


def load_audit_file(path: Path | str, concepts: Collection[str] | None = None) -> list[AuditEntry]:
    """Parse and validate ``path``; ``concepts`` (names in probes/) enables the concept-name check.
    Raises AuditFileError naming the file, the line, the entry and the key of the first error (by line),
    and how many more there are (``read_audit_file`` returns them all)."""
    entries, errors = read_audit_file(path, concepts)
    if errors:
        first = errors[0]
        more = f" ({len(errors) - 1} more error(s) in this file: auditlens validate {path})" if len(errors) > 1 else ""
        raise AuditFileError(first.path, first.line, first.message + more)
    return entries


def read_audit_file(path: Path | str, concepts: Collection[str] | None = None
                    ) -> tuple[list[AuditEntry], list[AuditFileError]]:
    """The valid entries of an audit file, and every error in it, in line order: every error of each
    entry (schema and content alike), so one round of fixes clears them all. A part the schema already
    found wrong is not checked again for content."""
    try:
        source = YamlSource(Path(path))
    except AuditFileError as exc:
        return [], [exc]
    data = source.data
    if not isinstance(data, dict):
        return [], [AuditFileError(path, 1, f"an audit file is a mapping with an `audits:` list; got "
                                            f"{type(data).__name__}")]
    errors = _schema_errors(source, data)
    broken = {exc.entry for exc in errors}
    if None in broken:  # the file's own shape is wrong: its entries cannot be read as entries
        return [], _in_line_order(errors)
    file_models = tuple(data["models"]) if "models" in data else None
    dictionaries, problems = declared_dictionaries(Path(path), data, concepts)
    errors += [AuditFileError(path, source.line_of(["dictionaries", site]), text) for site, text in problems]
    entries, seen = [], {}
    for index, entry in enumerate(data["audits"]):
        flagged = [exc.schema_path for exc in errors if exc.entry == index]
        problems: list[AuditFileError] = []
        audit = _entry(source, index, entry, concepts, file_models, problems, flagged, dictionaries)
        errors += problems
        if index in broken or problems:
            continue
        if audit.id in seen:
            errors.append(AuditFileError(path, audit.line, f"entry {audit.name!r}: id {audit.id!r} is already used by "
                                                           f"the entry on line {seen[audit.id]}; give each entry a "
                                                           "unique `id:` or name"))
            continue
        seen[audit.id] = audit.line
        entries.append(audit)
    return entries, _in_line_order(errors)


def _in_line_order(errors: list[AuditFileError]) -> list[AuditFileError]:
    return sorted(errors, key=lambda e: e.line or 0)


def _where(source, index, entry) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"entry {name!r} (audits[{index}])" if name else f"audits[{index}]"


def _schema_errors(source: YamlSource, data: dict) -> list[AuditFileError]:
    """Every schema error, each in its most specific form and once per place; ``entry`` is the index of
    the entry it is in (None: the file's own shape) and ``schema_path`` where it is."""
    validator = jsonschema.Draft202012Validator(schema("audit"))
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    found, seen = [], set()
    for error in errors:
        error = _most_specific(error)
        path = list(error.absolute_path)
        if any(e.covers_inside and path[:len(e.schema_path)] == e.schema_path for e in found):
            continue  # inside a value already found wrong as a whole (its type, or none of its forms): a knock-on
        exc = _schema_error(source, data, error)
        if (exc.line, str(exc)) in seen:
            continue
        seen.add((exc.line, str(exc)))
        exc.entry = path[1] if len(path) >= 2 and path[0] == "audits" else None
        exc.schema_path, exc.covers_inside = path, error.validator in ("type", "oneOf", "anyOf")
        found.append(exc)
    return found


def _most_specific(error):
    """A oneOf over mappings fails as a whole; the option the value was closest to names the real problem
    (``{insert: {word: [...]}}``: 'word' is not a key of insert)."""
    while error.validator in ("oneOf", "anyOf") and error.context and isinstance(error.instance, dict):
        deeper = [c for c in error.context if len(c.absolute_path) > len(error.absolute_path)]
        if not deeper:
            break
        error = max(deeper, key=lambda c: (len(c.absolute_path), c.validator == "additionalProperties"))
    return error


def _schema_error(source: YamlSource, data: dict, error) -> AuditFileError:
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
        return AuditFileError(source.path, source.line_of([*path, unknown]),
                              f"{where}unknown {kind} {unknown!r}{hint} Allowed: {', '.join(allowed)}")
    key = ".".join(str(p) for p in path[2:]) or ".".join(str(p) for p in path) or "the file"
    if error.validator == "required":
        message = f"{where}{error.message.split(' is a required')[0]} is required" + (f" in {key}" if path[2:] else "")
    elif error.validator == "type":
        given = f"{type(error.instance).__name__} {_short(error.instance)}"
        message = f"{where}key {key!r} is {given}; expected {error.validator_value}"
    elif error.validator in ("enum", "oneOf") and not isinstance(error.instance, (dict, list)):
        allowed = error.validator_value if error.validator == "enum" else _enum_values(error)
        message = f"{where}key {key!r} is {_short(error.instance)}; allowed: {', '.join(map(str, allowed))}"
    else:
        message = f"{where}key {key!r}: {_short(error.message, quote=False)}"
    return AuditFileError(source.path, source.line_of(path), message)


def _short(value, quote: bool = True, limit: int = 200) -> str:
    """A value as an error quotes it, cut to ``limit`` characters (a huge value must not flood the screen)."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _enum_values(error) -> list:
    values = []
    for option in error.validator_value:
        values += option.get("enum", []) or ([option["type"]] if "type" in option else [])
    return values


def _entry(source, index, entry, concepts, file_models, problems: list, flagged: list,
           dictionaries: tuple = ()) -> AuditEntry | None:
    """The entry, or None; every content error goes into ``problems``. ``flagged``: the paths the schema
    already found wrong, not checked again."""
    if not isinstance(entry, dict):
        return None
    where, line = _where(source, index, entry), source.line_of(["audits", index])

    def wrong(*path) -> bool:  # the schema found this part (or the part holding it) wrong already
        full = ["audits", index, *path]
        return any(full[:len(f)] == f for f in flagged)

    def problem(path: list, message: str) -> None:
        problems.append(AuditFileError(source.path, source.line_of(["audits", index, *path]), message))

    named = [k for k in entry if k in CHECKS]
    if len(named) != 1:
        if not any(len(f) == 2 for f in flagged):  # the schema named the unknown key already
            found = f"found {', '.join(named)}" if named else "found none"
            problem([], f"{where}: an entry names exactly one check ({', '.join(CHECKS)}); {found}")
        return None
    check = named[0]
    arguments = dict(entry[check]) if isinstance(entry[check], dict) else {}
    concept_keys = CONCEPT_ARGUMENTS + (("inputs",) if isinstance(arguments.get("inputs"), str) else ())
    for key in concept_keys:
        if key in arguments and concepts is not None and not wrong(check, key) and arguments[key] not in concepts:
            near = closest(str(arguments[key]), concepts, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problem([check, key], f"{where}, key '{check}.{key}': unknown concept {arguments[key]!r}{hint} "
                                  f"Concepts in probes/: {', '.join(sorted(concepts)) or 'none'}")
    if "at" in arguments and not wrong(check, "at"):
        message = _site_problem(check, where, arguments["at"])
        if message:
            problem([check, "at"], message)
    if isinstance(arguments.get("circuit"), str) and not wrong(check, "circuit"):  # a circuit file: read now
        try:
            circuit_beside(source.path, arguments["circuit"])
        except CheckError as exc:
            problem([check, "circuit"], f"{where}, key '{check}.circuit': {exc}")
    sweep = check in SWEEPS and "*" in str(arguments.get("at", "layer:*"))
    fields = list(SWEEPS[check] if sweep else CHECKS[check].metrics)
    expect, expectations = {}, entry.get("expect") if isinstance(entry.get("expect"), dict) else {}
    for field, text in expectations.items():
        if field not in fields:
            near = closest(field, fields, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            what = (f"a {check} sweep (at: {arguments.get('at', 'layer:*')}"
                    f"{'' if 'at' in arguments else ', the default'})" if sweep else f"a {check} result")
            problem(["expect", field], f"{where}, key 'expect.{field}': {what} has no field {field!r}{hint} "
                                       f"Fields: {', '.join(fields)}")
        if wrong("expect", field):  # the schema said what is wrong with the condition
            continue
        try:  # the condition too, whatever its key: one round of fixes mends both
            condition = parse_condition(text)
        except ValueError as exc:
            problem(["expect", field], f"{where}, key 'expect.{field}': {exc}")
            continue
        if field in fields:
            expect[field] = condition
    if problems or flagged:
        return None
    return AuditEntry(source.path, line, entry["name"], entry.get("id") or slug(entry["name"]), check, arguments,
                      expect, tuple(entry["models"]) if "models" in entry else file_models,
                      tuple(entry.get("marks", ())), dictionaries)


def _site_problem(check, where, site) -> str | None:
    """Sites resolve against the model at run time; here only an alias-shaped name is checked."""
    if is_feature_name(str(site)):
        try:
            site = parse_feature_name(str(site))[0]
        except KeyError as exc:
            return f"{where}, key '{check}.at': {exc}"
    kind, colon, rest = str(site).partition(":")
    if not colon or str(site) == EMBED_SUM or parse_alias(str(site)) is not None or is_component_name(str(site)):
        return None  # an alias, a head, embed, or a module path: module paths are checked when the model is known
    meant = alias_meant(str(site))
    hint = f"; did you mean {meant!r}?" if meant else ""
    return (f"{where}, key '{check}.at': {site!r} is not a site{hint} Sites: embed, embed:sum, layer:N, attn:N, "
            "mlp:N (N may be negative or *), head:L.H (head H of block L), neuron:L.I, neurons:L, features:SITE, "
            "feature:SITE/F, or a module path")
