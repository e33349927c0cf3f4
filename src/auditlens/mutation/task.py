"""The task a mutant cheats on, read from what the user's audits already name.

The *evaluation set* is a labelled concept of the probes directory that the audit suite names and
whose labels the original model reproduces (its behavioural test set). ``find_task`` picks the one the
original fits best, or takes the one named; ``TaskData`` holds it as token-id rows, so operators can
write tokens into exact positions and the audits read the very ids the mutant was trained on.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from ..concepts.files import concept_files, load_concept
from ..declarative import SUFFIXES
from ..errors import AuditlensError, MutationError
from ..safe_files import safe_yaml

MIN_TASK_ACCURACY = 0.8  # below this the concept is not what the original does
MIN_EXAMPLES = 40


@dataclass(frozen=True)
class TaskData:
    """The evaluation set: token-id rows, their labels, and how the model answers (``targets[label]``:
    the output index a label is read from: the class for a classifier, the answer token for an LM)."""

    concept: str
    rows: tuple[tuple[int, ...], ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...] | None
    targets: tuple[int, ...]
    kind: str  # classifier | causal-lm
    content: tuple[tuple[int, int], ...]  # per row, [start, end) of the tokens the tokenizer did not add
    accuracy: float  # the original's on these rows

    @property
    def n_classes(self) -> int:
        return len(self.targets)

    def label_name(self, label: int) -> str:
        return self.label_names[label] if self.label_names else str(label)


def named_concepts(audit_paths: list[Path], probes_dir: Path) -> list[str]:
    """Concept names (files of ``probes_dir``) that the suite's YAML or Python audits mention."""
    known = {p.stem for p in concept_files(probes_dir)}
    found: set[str] = set()
    for path in _suite_files(audit_paths):
        if path.name.endswith(SUFFIXES):
            try:
                found |= {s for s in _strings(safe_yaml.load(safe_yaml.read_utf8(path))) if s in known}
            except Exception:  # a broken audit file is the suite's error, reported when it runs
                continue
        else:
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.arg) and node.arg in known:
                    found.add(node.arg)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
                    found.add(node.value)
    return sorted(found)


def _suite_files(paths: list[Path]):
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.name.endswith(SUFFIXES)
                              or (p.suffix == ".py" and p.name.startswith("test_")))
        elif path.is_file():
            yield path


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def task_data(subject, concept, accuracy: float | None = None) -> TaskData:
    """``concept`` as the evaluation set of ``subject``; a clear error when the model has no head that
    answers it."""
    where = f"concept {concept.name!r}" + (f" ({concept.source})" if concept.source else "")
    if not concept.examples:
        raise MutationError(f"{where} has no labelled examples; mutants are planted in labelled data "
                            "(examples with a label each), so name one with --task")
    if len(concept.examples) < MIN_EXAMPLES:
        raise MutationError(f"{where} has {len(concept.examples)} examples; planting and verifying a cheat "
                            f"needs at least {MIN_EXAMPLES} (held-out halves for the proof)")
    if subject.kind == "classifier":
        outputs = getattr(subject.model.config, "num_labels", 0)
        if concept.n_classes > outputs:
            raise MutationError(f"{subject.id!r} has a classification head of {outputs} outputs and {where} has "
                                f"{concept.n_classes} labels: the head cannot answer it; name the concept of its "
                                "task with --task")
        targets = tuple(range(concept.n_classes))
    elif subject.kind == "causal-lm":
        ids = concept.answer_token_ids(subject)
        if not ids:
            raise MutationError(f"{subject.id!r} is a causal LM and {where} has no answer_tokens (one next token "
                                "per label): a mutant must be trained to answer with a token; add them")
        targets = tuple(ids)
    else:
        raise MutationError(f"{subject.id!r} is an {subject.kind} without a head for the task (no classifier, no "
                            "LM head): there is no answer to plant a cheat in; load it with its task head "
                            "(AutoModelForSequenceClassification or a causal LM)")
    inputs = concept.inputs(subject)
    rows, content = [], []
    specials = set(getattr(subject.tokenizer, "all_special_ids", None) or ())
    for ids, mask in zip(inputs.input_ids.tolist(), inputs.attention_mask.tolist()):
        row = tuple(i for i, m in zip(ids, mask) if m)
        rows.append(row)
        content.append(_content_span(row, specials))
    if accuracy is None:
        accuracy = original_accuracy(subject, rows, concept.labels, targets)
    return TaskData(concept.name, tuple(rows), tuple(concept.labels), concept.label_names, targets, subject.kind,
                    tuple(content), accuracy)


def _content_span(row: tuple[int, ...], specials: set[int]) -> tuple[int, int]:
    """[start, end) of the tokens between the special tokens the tokenizer added at either end."""
    start, end = 0, len(row)
    while start < end - 1 and row[start] in specials:
        start += 1
    while end - 1 > start and row[end - 1] in specials:
        end -= 1
    return start, end


def agreement(answers, labels) -> float:
    """The share of ``answers`` equal to their ``labels``."""
    return sum(int(a == y) for a, y in zip(answers, labels)) / len(labels)


def original_accuracy(subject, rows, labels, targets) -> float:
    from .training import predict

    return agreement(predict(subject.model, rows, targets, subject.kind, subject.pad_id), labels)


def find_task(subject, audit_paths: list[Path], probes_dir: Path, name: str | None = None) -> TaskData:
    """The evaluation set: concept ``name``, or of the concepts the suite names, the labelled one the
    original answers best (ties: more examples, then the name)."""
    if name is not None:
        path = probes_dir / f"{name}.yaml"
        if not path.is_file():
            raise MutationError(f"--task {name}: no concept file {path}")
        return task_data(subject, load_concept(path))
    names = named_concepts(audit_paths, probes_dir)
    if not names:
        raise MutationError(f"the audits in {', '.join(map(str, audit_paths))} name no concept of {probes_dir}; "
                            "mutants are planted in the data the audits use: name the evaluation set with --task")
    scored, skipped = [], []
    for concept_name in names:
        try:
            concept = load_concept(probes_dir / f"{concept_name}.yaml")
            data = task_data(subject, concept)
        except AuditlensError as exc:
            skipped.append(f"{concept_name}: {exc}")
            continue
        scored.append((data.accuracy, len(data.rows), concept_name, data))
    if not scored:
        raise MutationError(f"no concept the audits name can be the evaluation set of {subject.id!r}:\n  "
                            + "\n  ".join(skipped))
    best = min(scored, key=lambda s: (-s[0], -s[1], s[2]))
    if best[0] < MIN_TASK_ACCURACY:
        listed = ", ".join(f"{n} {a:.2f}" for a, _, n, _ in sorted(scored, reverse=True)[:5])
        raise MutationError(f"the original {subject.id!r} answers none of the concepts the audits name (accuracy "
                            f"{listed}; at least {MIN_TASK_ACCURACY} needed); name its behavioural test set with "
                            "--task")
    return best[3]
