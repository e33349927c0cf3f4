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
"""

from __future__ import annotations

import itertools
import json
import os
import string
from collections.abc import Sequence
from pathlib import Path

import yaml

from . import safe_yaml
from .concepts import Concept, CounterfactualPair
from .errors import ConceptError, closest

CONCEPT_KEYS = ("name", "description", "labels", "examples", "file", "templates", "slots", "pairs",
                "pair_file", "answer_tokens")
MAX_TEMPLATE_EXPANSION = 100_000
OUTSIDE_FILES_VARIABLE = "AUDITLENS_ALLOW_OUTSIDE_FILES"


def load_concept(path: str | Path, allow_outside_files: bool | None = None) -> Concept:
    """Read a concept file (see the module docstring); errors name the file and the key. Its ``file``
    and ``pair_file`` must lie in its directory or below, unless ``allow_outside_files`` (default: the
    environment variable AUDITLENS_ALLOW_OUTSIDE_FILES=1): a concept file from a pull request must not
    read ``../../.ssh/id_rsa`` into a report."""
    path = Path(path)
    if allow_outside_files is None:
        allow_outside_files = os.environ.get(OUTSIDE_FILES_VARIABLE, "") == "1"
    try:
        raw = safe_yaml.load(safe_yaml.read_utf8(path))
    except FileNotFoundError as exc:
        raise ConceptError(f"no concept file at {path}") from exc
    except OSError as exc:
        raise ConceptError(f"cannot read the concept file {path}: {exc.strerror or exc}") from None
    except safe_yaml.NotTextError as exc:
        raise ConceptError(f"{path}:{exc.line}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else f"{path}"
        raise ConceptError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(raw, dict):
        raise ConceptError(f"{path}: a concept file is a mapping of keys ({', '.join(CONCEPT_KEYS)}); "
                           f"got {type(raw).__name__}")
    unknown = [k for k in raw if k not in CONCEPT_KEYS]
    if unknown:
        near = closest(str(unknown[0]), CONCEPT_KEYS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConceptError(f"{path}: unknown key {unknown[0]!r}{hint} Allowed: {', '.join(CONCEPT_KEYS)}")
    names = raw.get("labels")
    if isinstance(names, list) and any(isinstance(n, bool) for n in names):
        raise ConceptError(f"{path}: labels {names} were read as booleans (YAML reads yes/no/on/off/true/false "
                           "that way); quote them, e.g. labels: ['no', 'yes']")
    rows = list(_list(raw, "examples", path))
    if "file" in raw:
        rows += _read_jsonl(_data_file(path, "file", raw["file"], allow_outside_files), path)
    rows += _expand_templates(raw, path)
    pairs_raw = list(_list(raw, "pairs", path))
    if "pair_file" in raw:
        pairs_raw += _read_jsonl(_data_file(path, "pair_file", raw["pair_file"], allow_outside_files), path)
    examples, labels, groups = [], [], []
    for i, row in enumerate(rows):
        examples.append(_row_input(row, path, f"examples[{i}]"))
        labels.append(_label(row.get("label"), names, path, f"examples[{i}].label"))
        groups.append(row.get("group"))
    pairs = [
        CounterfactualPair(_row_input(p, path, f"pairs[{i}]", "base"), _row_input(p, path, f"pairs[{i}]", "source"),
                           _label(p.get("label"), names, path, f"pairs[{i}].label"))
        for i, p in enumerate(pairs_raw)
    ]
    return Concept(
        name=str(raw.get("name", path.stem)),
        examples=tuple(examples), labels=tuple(labels),
        label_names=tuple(map(str, names)) if names else None,
        groups=tuple(str(g) for g in groups) if all(g is not None for g in groups) and groups else None,
        pairs=tuple(pairs),
        answer_tokens=tuple(raw["answer_tokens"]) if raw.get("answer_tokens") else None,
        description=str(raw.get("description", "")),
        source=str(path),
    )


def _list(raw: dict, key: str, path: Path) -> Sequence[dict]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConceptError(f"{path}: {key} must be a list of mappings; got {type(value).__name__}")
    return value


def _data_file(path: Path, key: str, name, allow_outside: bool) -> Path:
    file = path.parent / str(name)
    if not allow_outside and not file.resolve().is_relative_to(path.parent.resolve()):
        raise ConceptError(f"{path}: {key} {str(name)[:200]!r} lies outside the concept file's directory "
                           f"{path.parent}; data files must be beside it or below (set {OUTSIDE_FILES_VARIABLE}=1 "
                           "to allow files elsewhere)")
    return file


def _read_jsonl(file: Path, concept_path: Path) -> list[dict]:
    if not file.is_file():
        raise ConceptError(f"{concept_path}: the data file {file} does not exist")
    try:
        text = safe_yaml.read_utf8(file)
    except safe_yaml.NotTextError as exc:
        raise ConceptError(f"{file}:{exc.line}: {exc}") from None
    except OSError as exc:
        raise ConceptError(f"{concept_path}: cannot read the data file {file}: {exc.strerror or exc}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConceptError(f"{file}:{number}: not valid JSON: {exc.msg}") from exc
            if _holds_lone_surrogate(rows[-1]):
                raise ConceptError(f"{file}:{number}: a string holds a lone surrogate (an escape such as "
                                   "\"\\ud800\" with no pair), which is not a character; write the character itself")
    return rows


def _holds_lone_surrogate(value) -> bool:
    if isinstance(value, str):
        return safe_yaml.has_lone_surrogate(value)
    if isinstance(value, dict):
        return any(_holds_lone_surrogate(k) or _holds_lone_surrogate(v) for k, v in value.items())
    return isinstance(value, list) and any(map(_holds_lone_surrogate, value))


def _row_input(row: dict, path: Path, where: str, prefix: str = ""):
    text_key, tokens_key = (f"{prefix}" if prefix else "text"), (f"{prefix}_tokens" if prefix else "tokens")
    if text_key in row:
        return str(row[text_key])
    if tokens_key in row:
        return tuple(int(t) for t in row[tokens_key])
    raise ConceptError(f"{path}: {where} needs {text_key!r} (text) or {tokens_key!r} (token ids); got keys "
                       f"{sorted(row)}")


def _label(value, names, path: Path, where: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ConceptError(f"{path}: {where} is missing or not a label (an index or one of {names})")
    if isinstance(value, int):
        return value
    if names and value in names:
        return list(names).index(value)
    raise ConceptError(f"{path}: {where} is {value!r}; expected an index or one of {names}")


def _expand_templates(raw: dict, path: Path) -> list[dict]:
    templates = _list(raw, "templates", path)
    slots = raw.get("slots") or {}
    rows = []
    for i, entry in enumerate(templates):
        template = entry.get("template")
        if not isinstance(template, str):
            raise ConceptError(f"{path}: templates[{i}] needs a 'template' string")
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        missing = [f for f in fields if f not in slots]
        if missing:
            raise ConceptError(f"{path}: templates[{i}] uses slot {{{missing[0]}}} but slots has only "
                               f"{sorted(slots)}")
        combos = list(itertools.islice(itertools.product(*(slots[f] for f in fields)), MAX_TEMPLATE_EXPANSION))
        for combo in combos:
            fill = dict(zip(fields, combo))
            rows.append({"text": template.format(**fill), "label": entry.get("label"),
                         # the lexical filling is the "input type" of the control task
                         "group": entry.get("group", "|".join(map(str, combo)))})
    return rows


def concept_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else []
