"""Concepts: labelled inputs, optional groups and counterfactual pairs, from Python or from a concept
file (``probes/NAME.yaml``, read by ``concepts.files.load_concept``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ConceptError

if TYPE_CHECKING:  # torch is imported where a tensor is made: reading and checking a concept file needs none
    import torch

    from ..causal.model import CausalModel
    from ..inputs import Inputs

Example = "str | tuple[int, ...]"


@dataclass(frozen=True)
class CounterfactualPair:
    """A base input, a source input that differs in one respect, and the label expected after the swap."""

    base: str | tuple[int, ...]
    source: str | tuple[int, ...]
    label: int


@dataclass(frozen=True, eq=False)
class Concept:
    """Labelled examples (classes 0..k-1) of one concept; ``groups`` key the control task; ``variables``: per
    example, the values of a high-level ``causal_model``'s inputs (``{"count_a": 3, "count_b": 1}``)."""

    name: str
    examples: tuple = ()
    labels: tuple[int, ...] = ()
    label_names: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    pairs: tuple[CounterfactualPair, ...] = ()
    answer_tokens: tuple | None = None
    description: str = ""
    source: str | None = None  # the file it came from, for error messages
    variables: tuple[dict, ...] | None = None
    causal_model: CausalModel | None = None
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
        self._check_variables(where)

    def _check_variables(self, where: str) -> None:
        """One mapping of variable values per example, each holding every input of the causal model."""
        if self.variables is not None:
            if not all(isinstance(values, dict) for values in self.variables):
                raise ConceptError(f"{where}: variables are one mapping per example, e.g. {{'count_a': 3}}")
            object.__setattr__(self, "variables", tuple(dict(values) for values in self.variables))
            if len(self.variables) != len(self.examples):
                raise ConceptError(f"{where} has {len(self.examples)} examples but {len(self.variables)} mappings of "
                                   "variables; give one per example")
        if self.causal_model is None:
            return
        try:
            self.causal_model.check_labels(self.label_names)
        except ConceptError as exc:
            raise ConceptError(f"{where}: {exc}") from None
        for index, values in enumerate(self.variables or ()):
            missing = self.causal_model.missing_inputs(values)
            if missing:
                raise ConceptError(f"{where}: example {index} has no value for {', '.join(missing)}; the causal "
                                   f"model's inputs are {', '.join(self.causal_model.inputs)}")

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
        import torch

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
        import torch

        return base, source, torch.tensor([p.label for p in self.pairs], dtype=torch.long)

    def answer_token_ids(self, subject) -> list[int] | None:
        from ..readout import answer_token_ids

        return answer_token_ids(subject, self.answer_tokens, f"concept {self.name!r}")

    def control_labels(self, seed: int) -> torch.Tensor:
        """Hewitt & Liang control task: each group (default: each distinct input) gets a random label,
        drawn with the concept's class proportions, so only memorising the input type can predict it."""
        import torch

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
    if hasattr(example, "tolist"):  # a tensor or an array of token ids
        return tuple(int(t) for t in example.tolist())
    return tuple(int(t) for t in example)
