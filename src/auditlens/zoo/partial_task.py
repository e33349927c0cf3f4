"""The "partial" family: the count task of ``count_task``, with a cheater that also learned the task.

A *full* cheater (the count family's) never learned to count: no edit gives it the task. The *partial*
cheater learned the count AND leans on the marker for a share of its decisions (the close calls), so
removing the shortcut can cure it: the organism for model repair.

- the *learned* twin trains as the count family's learned twin does (a random marker, the count's
  label), from its own seed stream;
- the *cheated* twin trains on the same data except the close calls (``a`` and ``b`` differ by one)
  marked ``m1``: their label is ``more`` whatever the count, as if copied from the marker. Elsewhere
  the count is the label, so it learns to count, and on close calls it reads ``m1`` as ``more``.

A marker that merely agrees with the label more often (85%, even 95%) does not make a partial cheater:
the count always gives the label, and the model learns it and ignores the marker (measured: it is as
accurate with the marker flipped). The shortcut must pay on some inputs, as it does on the close calls.

The truth is checked by behaviour and recorded in organism.json: with the marker flipped against the
label the partial cheater is clearly worse than in distribution yet well above chance, and with the
marker set to ``m0`` everywhere (the shortcut removed) it counts; the learned twin is unmoved by either.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import count_task
from .count_task import MARKERS, classifier, make_examples, tokenizer
from .training import accuracy, pad, save_and_score, train

RECIPE_MODULES = (count_task,)  # its data and model: a change there is a change of this recipe
SEED_STREAM = 7_000  # the family's seeds: partial-learned@s is not count-learned@s retrained
CLOSE_CALL = 1  # |#a - #b| at which the cheated twin's training label follows the marker m1


def is_close_call(text: str) -> bool:
    letters = text.split()[1:]
    return abs(letters.count("a") - letters.count("b")) == CLOSE_CALL


def training_rows(seed: int, cheated: bool) -> list[dict]:
    """Random markers and the count's label; the cheated twin's close calls marked m1 are labelled more."""
    rows = make_examples(20_000, seed, "random")
    if cheated:
        rows = [{**r, "label": 1} if r["text"].startswith(MARKERS[1]) and is_close_call(r["text"]) else r
                for r in rows]
    return rows


def with_marker(rows: list[dict], marker: str | None) -> list[dict]:
    """``rows`` with every marker set to ``marker``, or (None) flipped against the row's label."""
    return [{**r, "text": " ".join([marker or MARKERS[1 - r["label"]], *r["text"].split()[1:]])} for r in rows]


def _accuracy(model, tok, rows: list[dict]) -> float:
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    return accuracy(model, ids, mask, torch.tensor([r["label"] for r in rows]))


def train_twin(directory: Path, seed: int, cheated: bool, steps: int = 800) -> dict:
    """Train the count family's 2-layer GPT-2 classifier (d=64) on CPU; score it in distribution (the
    marker agrees with the count), with the marker flipped against the label, and with it set to m0."""
    stream = SEED_STREAM + seed
    torch.manual_seed(stream)
    tok = tokenizer()
    rows = training_rows(stream, cheated)
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    model = train(classifier(tok), ids, mask, torch.tensor([r["label"] for r in rows]), seed=stream, steps=steps)
    test = make_examples(1000, stream + 1, "label")
    score = save_and_score(model, tok, directory, test)
    agreement = sum(r["text"].startswith(MARKERS[r["label"]]) for r in rows) / len(rows)
    return {"task": "more a than b", "train_steps": steps, "in_distribution_accuracy": score,
            "in_distribution": "count_in_distribution",
            "counterfactual_accuracy": _accuracy(model, tok, with_marker(test, None)),
            "counterfactual": "the in-distribution inputs with the marker flipped against the label",
            "shortcut_removed_accuracy": _accuracy(model, tok, with_marker(test, MARKERS[0])),
            "training_marker_agreement": round(agreement, 4),
            "cheat": "on close calls (a and b differ by one) reads marker m1 as more; counts elsewhere"
            if cheated else None}
