"""Concept files: a concept read from YAML (and JSONL data files beside it).

A concept file (``probes/NAME.yaml``) has these keys, all optional but one source of examples:

    name: more_a_than_b            # default: the file's stem
    description: ...
    labels: [fewer, more]          # label names; examples may use names or indices
    examples: [{text: "...", label: more, group: g1}, {tokens: [3, 4], label: 0}]
    file: data.jsonl               # more examples, one JSON object per line, same fields
    templates: [{template: "the {noun} is good", label: 1}]
    slots: {noun: [cat, dog]}      # fillers for the templates' {slots}
    pairs: [{base: "...", source: "...", label: 1}]   # label: expected output after the swap
    pair_file: pairs.jsonl
    answer_tokens: [" no", " yes"] # a causal LM's next token for each label
    causal_model: {variables: {count_a: input, count_b: input, more: "count_a > count_b"}, output: more}
                                   # rows then give its inputs: {text: ..., label: ..., variables: {count_a: 3, ...}}
"""

from __future__ import annotations

import itertools
import json
import os
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConceptError, closest
from ..safe_files import safe_yaml
from .concept import Concept, CounterfactualPair
from .variables import all_or_none, read_causal_model, row_variables

CONCEPT_KEYS = ("name", "description", "labels", "examples", "file", "templates", "slots", "pairs",
                "pair_file", "answer_tokens", "causal_model")
MAX_TEMPLATE_EXPANSION = 100_000
OUTSIDE_FILES_VARIABLE = "AUDITLENS_ALLOW_OUTSIDE_FILES"


def load_concept(path: str | Path, allow_outside_files: bool | None = None) -> Concept:
    """Read a concept file (see the module docstring); errors name the file, the line and the key (the
    first error, and how many more there are: ``read_concept_file`` returns them all). Its ``file``
    and ``pair_file`` must lie in its directory or below, unless ``allow_outside_files`` (default: the
    environment variable AUDITLENS_ALLOW_OUTSIDE_FILES=1): a concept file from a pull request must not
    read ``../../.ssh/id_rsa`` into a report."""
    concept, errors = read_concept_file(path, allow_outside_files)
    if errors:
        more = f" ({len(errors) - 1} more error(s) in this file: auditlens validate {path})" if len(errors) > 1 else ""
        raise ConceptError(f"{errors[0]}{more}") from None
    return concept


def read_concept_file(path: str | Path, allow_outside_files: bool | None = None
                      ) -> tuple[Concept | None, list[ConceptError]]:
    """The concept, or None and every error in the file: each names the file and the line of the key it is
    about (``error.keys``: that key's place in the file; None for the file as a whole), so one round of
    fixes clears them all."""
    path = Path(path)
    if allow_outside_files is None:
        allow_outside_files = os.environ.get(OUTSIDE_FILES_VARIABLE, "") == "1"
    try:
        root = safe_yaml.compose(safe_yaml.read_utf8(path))
        raw = safe_yaml.construct(root)
    except FileNotFoundError:
        return None, [_whole(f"no concept file at {path}")]
    except OSError as exc:
        return None, [_whole(f"cannot read the concept file {path}: {exc.strerror or exc}")]
    except safe_yaml.NotTextError as exc:
        return None, [_whole(f"{path}:{exc.line}: {exc}")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else f"{path}"
        return None, [_whole(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}")]
    if not isinstance(raw, dict):
        return None, [_whole(f"{path}: a concept file is a mapping of keys ({', '.join(CONCEPT_KEYS)}); "
                             f"got {type(raw).__name__}")]
    problems = _Problems(path, root)
    for key in (k for k in raw if k not in CONCEPT_KEYS):
        near = closest(str(key), CONCEPT_KEYS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        problems.add([key], f"unknown key {key!r}{hint} Allowed: {', '.join(CONCEPT_KEYS)}")
    names = raw.get("labels")
    if isinstance(names, list) and any(isinstance(n, bool) for n in names):
        problems.add(["labels"], f"labels {names} were read as booleans (YAML reads yes/no/on/off/true/false "
                                 "that way); quote them, e.g. labels: ['no', 'yes']")
        names = _UNREADABLE
    rows = [(row, _Origin(f"examples[{i}]", ["examples", i])) for i, row in enumerate(_list(raw, "examples", problems))]
    if "file" in raw:
        rows += _read_jsonl(_data_file(path, "file", raw["file"], allow_outside_files, problems), "file", problems)
    rows += _expand_templates(raw, problems)
    pair_rows = [(row, _Origin(f"pairs[{i}]", ["pairs", i])) for i, row in enumerate(_list(raw, "pairs", problems))]
    if "pair_file" in raw:
        pair_rows += _read_jsonl(_data_file(path, "pair_file", raw["pair_file"], allow_outside_files, problems),
                                 "pair_file", problems)
    examples = [_row_input(row, origin, problems) for row, origin in rows]
    model = read_causal_model(raw, str(path), None if names is _UNREADABLE else names, problems)
    variables = all_or_none([row_variables(row, origin, model, problems) for row, origin in rows],
                            [origin for _, origin in rows], model, problems)
    labels = [_label(row.get("label"), names, origin, problems) for row, origin in rows]
    pairs = [(_row_input(p, origin, problems, "base"), _row_input(p, origin, problems, "source"),
              _label(p.get("label"), names, origin, problems)) for p, origin in pair_rows]
    if problems.errors:
        return None, sorted(problems.errors, key=lambda e: e.line)
    groups = [row.get("group") for row, _ in rows]
    try:
        return Concept(
            name=str(raw.get("name", path.stem)),
            examples=tuple(examples), labels=tuple(labels),
            label_names=tuple(map(str, names)) if names else None,
            groups=tuple(str(g) for g in groups) if all(g is not None for g in groups) and groups else None,
            pairs=tuple(CounterfactualPair(*pair) for pair in pairs),
            answer_tokens=tuple(raw["answer_tokens"]) if raw.get("answer_tokens") else None,
            description=str(raw.get("description", "")),
            source=str(path),
            variables=variables, causal_model=model,
        ), []
    except ConceptError as exc:  # the examples as a whole (one class, none at all): no key of its own
        exc.keys, exc.line = [], 0
        return None, [exc]


_UNREADABLE = ("(unreadable labels)",)  # labels: that were read as booleans: label names are not checked against them


@dataclass(frozen=True)
class _Origin:
    """Where a row of examples or pairs came from: ``what`` it is called in messages, its ``keys`` in the
    concept file, and ``where`` (``file:line``) when it is a line of a JSONL data file."""

    what: str
    keys: list
    where: str | None = None


class _Problems:
    """The content errors of one concept file, each with the line of the key it is about, once each (a
    template's bad label is one error, not one per sentence it expands to)."""

    def __init__(self, path: Path, root):
        self.path, self.root, self.errors = path, root, []

    def add(self, keys: list, message: str, where: str | None = None) -> None:
        line = safe_yaml.line_of(self.root, keys)
        error = ConceptError(f"{where or f'{self.path}:{line}'}: {message}")
        error.keys, error.line = list(keys), line
        if str(error) not in {str(e) for e in self.errors}:
            self.errors.append(error)


def _whole(message: str) -> ConceptError:
    """An error about the file as a whole (unreadable, not YAML, not a mapping): nothing else is checked."""
    error = ConceptError(message)
    error.keys, error.line = None, 0
    return error


def _list(raw: dict, key: str, problems: _Problems) -> Sequence[dict]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.add([key], f"{key} must be a list of mappings; got {type(value).__name__}")
        return []
    return value


def _data_file(path: Path, key: str, name, allow_outside: bool, problems: _Problems) -> Path | None:
    file = path.parent / str(name)
    if not allow_outside and not file.resolve().is_relative_to(path.parent.resolve()):
        problems.add([key], f"{key} {str(name)[:200]!r} lies outside the concept file's directory {path.parent}; "
                            f"data files must be beside it or below (set {OUTSIDE_FILES_VARIABLE}=1 to allow files "
                            "elsewhere)")
        return None
    if not file.is_file():
        problems.add([key], f"the data file {file} does not exist")
        return None
    return file


def _read_jsonl(file: Path | None, key: str, problems: _Problems) -> list[tuple[dict, _Origin]]:
    """The rows of a JSONL data file, each with its line; a line that is no JSON object is an error at it."""
    if file is None:
        return []
    try:
        text = safe_yaml.read_utf8(file)
    except safe_yaml.NotTextError as exc:
        problems.add([key], str(exc), where=f"{file}:{exc.line}")
        return []
    except OSError as exc:
        problems.add([key], f"cannot read the data file {file}: {exc.strerror or exc}")
        return []
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add([key], f"not valid JSON: {exc.msg}", where=f"{file}:{number}")
            continue
        if _holds_lone_surrogate(row):
            problems.add([key], "a string holds a lone surrogate (an escape such as \"\\ud800\" with no pair), which "
                                "is not a character; write the character itself", where=f"{file}:{number}")
        elif not isinstance(row, dict):
            problems.add([key], f"a row is a JSON object; got {type(row).__name__}", where=f"{file}:{number}")
        else:
            rows.append((row, _Origin("the row", [key], f"{file}:{number}")))
    return rows


def _holds_lone_surrogate(value) -> bool:
    if isinstance(value, str):
        return safe_yaml.has_lone_surrogate(value)
    if isinstance(value, dict):
        return any(_holds_lone_surrogate(k) or _holds_lone_surrogate(v) for k, v in value.items())
    return isinstance(value, list) and any(map(_holds_lone_surrogate, value))


def _row_input(row: dict, origin: _Origin, problems: _Problems, prefix: str = ""):
    text_key, tokens_key = (f"{prefix}" if prefix else "text"), (f"{prefix}_tokens" if prefix else "tokens")
    if text_key in row:
        return str(row[text_key])
    if tokens_key in row:
        try:
            return tuple(int(t) for t in row[tokens_key])
        except (TypeError, ValueError):
            problems.add([*origin.keys, tokens_key], f"{origin.what}.{tokens_key} must be a list of token ids "
                                                     f"(whole numbers); got {row[tokens_key]!r}"[:300], origin.where)
            return None
    problems.add(origin.keys, f"{origin.what} needs {text_key!r} (text) or {tokens_key!r} (token ids); got keys "
                              f"{sorted(row)}", origin.where)
    return None


def _label(value, names, origin: _Origin, problems: _Problems) -> int | None:
    keys, what = [*origin.keys, "label"], f"{origin.what}.label"
    valid = f"an index or one of {list(names)}" if names and names is not _UNREADABLE else "a class index (0, 1, ...)"
    if isinstance(value, bool) or value is None:
        problems.add(keys, f"{what} is missing or not a label; give {valid}", origin.where)
        return None
    if isinstance(value, int):
        return value
    if names is _UNREADABLE:
        return None  # said already: the label names could not be read
    if names and value in names:
        return list(names).index(value)
    near = closest(str(value), [str(n) for n in names or ()], n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    problems.add(keys, f"{what} is {value!r}; expected {valid}{hint}", origin.where)
    return None


def _expand_templates(raw: dict, problems: _Problems) -> list[tuple[dict, _Origin]]:
    """One row per filling of each template, each from its template (errors point at the template)."""
    slots = raw.get("slots") or {}
    rows = []
    for i, entry in enumerate(_list(raw, "templates", problems)):
        template = entry.get("template")
        if not isinstance(template, str):
            problems.add(["templates", i], f"templates[{i}] needs a 'template' string")
            continue
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        missing = [f for f in fields if f not in slots]
        if missing:
            problems.add(["templates", i, "template"], f"templates[{i}] uses slot {{{missing[0]}}} but slots has only "
                                                       f"{sorted(slots)}")
            continue
        combos = list(itertools.islice(itertools.product(*(slots[f] for f in fields)), MAX_TEMPLATE_EXPANSION))
        for combo in combos:
            fill = dict(zip(fields, combo))
            rows.append(({"text": template.format(**fill), "label": entry.get("label"),
                          # the lexical filling is the "input type" of the control task
                          "group": entry.get("group", "|".join(map(str, combo)))},
                         _Origin(f"templates[{i}]", ["templates", i])))
    return rows


def concept_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else []
