"""Concepts: labelled inputs, optional groups and counterfactual pairs, from Python or probes/*.yaml.

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
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from . import safe_yaml
from .errors import ConceptError, closest
from .inputs import Inputs
from .readout import answer_token_ids

Example = "str | tuple[int, ...]"
CONCEPT_KEYS = ("name", "description", "labels", "examples", "file", "templates", "slots", "pairs",
                "pair_file", "answer_tokens")
MAX_TEMPLATE_EXPANSION = 100_000


@dataclass(frozen=True)
class CounterfactualPair:
    """A base input, a source input that differs in one respect, and the label expected after the swap."""

    base: str | tuple[int, ...]
    source: str | tuple[int, ...]
    label: int


@dataclass(frozen=True, eq=False)
class Concept:
    """Labelled examples (classes 0..k-1) of one concept; ``groups`` key the control task."""

    name: str
    examples: tuple = ()
    labels: tuple[int, ...] = ()
    label_names: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    pairs: tuple[CounterfactualPair, ...] = ()
    answer_tokens: tuple | None = None
    description: str = ""
    source: str | None = None  # the file it came from, for error messages
    _encoded: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        where = f"concept {self.name!r}" + (f" ({self.source})" if self.source else "")
        object.__setattr__(self, "examples", tuple(_as_example(e) for e in self.examples))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "pairs", tuple(self.pairs))
        if not self.examples and not self.pairs:
            raise ConceptError(f"{where} has no examples and no pairs; give it at least one of them")
        if len(self.examples) != len(self.labels):
            raise ConceptError(f"{where} has {len(self.examples)} examples but {len(self.labels)} labels; "
                               "give one label per example")
        if self.groups is not None and len(self.groups) != len(self.examples):
            raise ConceptError(f"{where} has {len(self.examples)} examples but {len(self.groups)} groups")
        bad = [label for label in self.labels if not isinstance(label, int) or isinstance(label, bool) or label < 0]
        if bad:
            raise ConceptError(f"{where}: labels must be class indices 0, 1, ...; got {bad[:3]}")
        if self.examples and len(set(self.labels)) < 2:
            raise ConceptError(f"{where} has one class only (label {self.labels[0]}); a concept needs two or more")
        if self.label_names is not None and self.labels and max(self.labels) >= len(self.label_names):
            raise ConceptError(f"{where}: label {max(self.labels)} has no name in labels {list(self.label_names)}")
        for index, pair in enumerate(self.pairs):
            if not isinstance(pair, CounterfactualPair) or not pair.base or not pair.source:
                raise ConceptError(f"{where}: pairs[{index}] needs a non-empty base and source; got {pair!r}")
            if not isinstance(pair.label, int) or isinstance(pair.label, bool) or pair.label < 0 or (
                    self.label_names is not None and pair.label >= len(self.label_names)):
                valid = f"0..{len(self.label_names) - 1}" if self.label_names else "0, 1, ..."
                raise ConceptError(f"{where}: pairs[{index}] expects label {pair.label!r}; valid: {valid}")

    def __len__(self) -> int:
        return len(self.examples)

    def __repr__(self) -> str:
        where = f", from {self.source}" if self.source else ""
        return (f"Concept({self.name!r}, {len(self.examples)} examples, {self.n_classes} classes, "
                f"{len(self.pairs)} pairs{where})")

    @property
    def n_classes(self) -> int:
        return max(self.labels) + 1 if self.labels else 0

    def label_tensor(self) -> torch.Tensor:
        return torch.tensor(self.labels, dtype=torch.long)

    def label_name(self, label: int) -> str:
        return self.label_names[label] if self.label_names else str(label)

    def require_examples(self, check: str) -> None:
        if not self.examples:
            raise ConceptError(f"{check} needs labelled examples, and concept {self.name!r} has only pairs")

    def inputs(self, subject) -> Inputs:
        """The examples encoded for ``subject`` (memoized per tokenizer)."""
        return self._encode(subject, "examples", self.examples)

    def pair_inputs(self, subject) -> tuple[Inputs, Inputs, torch.Tensor]:
        if not self.pairs:
            raise ConceptError(f"concept {self.name!r} has no counterfactual pairs; add `pairs:` to it")
        base = self._encode(subject, "base", tuple(p.base for p in self.pairs))
        source = self._encode(subject, "source", tuple(p.source for p in self.pairs))
        return base, source, torch.tensor([p.label for p in self.pairs], dtype=torch.long)

    def answer_token_ids(self, subject) -> list[int] | None:
        return answer_token_ids(subject, self.answer_tokens, f"concept {self.name!r}")

    def control_labels(self, seed: int) -> torch.Tensor:
        """Hewitt & Liang control task: each group (default: each distinct input) gets a random label,
        drawn with the concept's class proportions, so only memorising the input type can predict it."""
        keys = self.groups if self.groups is not None else tuple(map(str, self.examples))
        generator = torch.Generator().manual_seed(seed)
        distinct = sorted(set(keys))
        labels = self.label_tensor()
        draw = labels[torch.randint(len(labels), (len(distinct),), generator=generator)]
        table = dict(zip(distinct, draw.tolist()))
        return torch.tensor([table[k] for k in keys], dtype=torch.long)

    def _encode(self, subject, part: str, examples) -> Inputs:
        key = (part, id(subject.tokenizer), subject.pad_id, subject.vocab_size)
        if key not in self._encoded:
            try:
                # the tokenizer is kept with its encoding so that its id cannot be reused by another
                self._encoded[key] = (subject.tokenizer, subject.encode(list(examples)))
            except ConceptError as exc:
                raise ConceptError(f"concept {self.name!r} ({part}): {exc}") from exc
        return self._encoded[key][1]


def _as_example(example):
    if isinstance(example, str):
        return example
    if isinstance(example, torch.Tensor):
        return tuple(int(t) for t in example.tolist())
    return tuple(int(t) for t in example)


def load_concept(path: str | Path) -> Concept:
    """Read a concept file (see the module docstring); errors name the file and the key."""
    path = Path(path)
    try:
        raw = safe_yaml.load(path.read_text())
    except FileNotFoundError as exc:
        raise ConceptError(f"no concept file at {path}") from exc
    except yaml.YAMLError as exc:
        raise ConceptError(f"{path}: not valid YAML: {exc}") from exc
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
        rows += _read_jsonl(path.parent / str(raw["file"]), path)
    rows += _expand_templates(raw, path)
    pairs_raw = list(_list(raw, "pairs", path))
    if "pair_file" in raw:
        pairs_raw += _read_jsonl(path.parent / str(raw["pair_file"]), path)
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


def _read_jsonl(file: Path, concept_path: Path) -> list[dict]:
    if not file.is_file():
        raise ConceptError(f"{concept_path}: the data file {file} does not exist")
    rows = []
    for number, line in enumerate(file.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConceptError(f"{file}:{number}: not valid JSON: {exc.msg}") from exc
    return rows


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
