"""Shared by the checks: the subject's behaviour on labelled inputs, with and without interventions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..capture import run
from ..inputs import Inputs
from ..readout import logit_margin, readout_for
from ..results import Example


@dataclass(frozen=True)
class Behaviour:
    """Per-example predictions, correctness against labels, and label margins."""

    predictions: torch.Tensor  # [n] long
    correct: torch.Tensor  # [n] float 0/1
    margins: torch.Tensor  # [n] true-label score minus best other
    scores: torch.Tensor  # [n, C]

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def behaviour(subject, inputs: Inputs, labels: torch.Tensor, interventions=(), answer_tokens=None) -> Behaviour:
    readout = readout_for(subject, answer_tokens)
    scores = run(subject, inputs, interventions=list(interventions), readout=readout).scores
    predictions = scores.argmax(dim=1)
    return Behaviour(predictions, (predictions == labels).float(), logit_margin(scores, labels), scores)


def changed_examples(inputs: Inputs, before: torch.Tensor, after: torch.Tensor, name_of, limit: int = 5):
    """Examples whose prediction changed, as evidence: 'label A -> B'."""
    changed = (before != after).nonzero().flatten().tolist()
    return tuple(
        Example(inputs.describe(i), f"prediction {name_of(int(before[i]))} -> {name_of(int(after[i]))}")
        for i in changed[:limit]
    )
