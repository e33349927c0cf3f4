"""The subject's behaviour on labelled inputs, with and without interventions (ablate, erase, patch and
steer measure it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..engine import run
from ..inputs import Inputs
from ..readout import logit_margin, predictions, readout_for
from ..results import CheckResult, Example
from ..stats import Interval, bootstrap_mean, wilson


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
    predicted = predictions(scores)
    return Behaviour(predicted, (predicted == labels).float(), logit_margin(scores, labels), scores)


@dataclass(frozen=True)
class BehaviourChange:
    """What an intervention did to the behaviour on a labelled concept (ablate and erase report it)."""

    accuracy_before: float
    accuracy_before_ci: Interval  # Wilson
    behaviour_chance: float  # the majority-class rate of the labels: what a constant answer scores
    accuracy_after: float
    accuracy_drop: float
    accuracy_drop_ci: Interval
    margin_change: float  # mean change of the true-label margin (after - before)
    examples: tuple[Example, ...]  # examples whose prediction changed
    per_example: dict  # accuracy_before, accuracy_after, accuracy_drop, margin_change: one value per example
    data_digest: str

    def fields(self) -> dict:
        """As keyword arguments of the result that reports it."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def behaviour_change(subject, concept, interventions, seed: int) -> BehaviourChange:
    """Behaviour on ``concept``'s labelled examples without, then with, ``interventions``."""
    inputs, labels = concept.inputs(subject), concept.label_tensor()
    answers = concept.answer_token_ids(subject)
    before = behaviour(subject, inputs, labels, answer_tokens=answers)
    after = behaviour(subject, inputs, labels, interventions, answer_tokens=answers)
    drop = before.correct - after.correct
    return BehaviourChange(
        accuracy_before=before.accuracy, accuracy_before_ci=wilson(int(before.correct.sum()), len(labels)),
        behaviour_chance=float(torch.bincount(labels).max() / len(labels)),
        accuracy_after=after.accuracy, accuracy_drop=float(drop.mean()),
        accuracy_drop_ci=bootstrap_mean(drop.numpy(), seed, what="accuracy drop"),
        margin_change=float((after.margins - before.margins).mean()),
        examples=changed_examples(inputs, before.predictions, after.predictions, concept.label_name),
        per_example={"accuracy_before": before.correct, "accuracy_after": after.correct, "accuracy_drop": drop,
                     "margin_change": after.margins - before.margins},
        data_digest=inputs.digest,
    )


@dataclass(frozen=True, kw_only=True)
class BehaviourChangeResult(CheckResult):
    """A check that intervenes and reports what happened to the behaviour on a labelled concept
    (ablate, erase, necessity): the fields of ``BehaviourChange``, and its vacuity rule."""

    mechanistic = True
    figure_metrics = ("accuracy_before", "accuracy_after", "accuracy_drop")

    concept: str = ""
    accuracy_before: float = 0.0
    accuracy_before_ci: Interval | None = None
    behaviour_chance: float = 0.0
    accuracy_after: float = 0.0
    accuracy_drop: float = 0.0
    accuracy_drop_ci: Interval | None = None
    margin_change: float = 0.0  # mean change of the true-label logit margin (after - before)
    examples: tuple[Example, ...] = ()

    def vacuous_reason(self, metric: str, op: str) -> str | None:
        return nothing_to_lose(self, metric, op)


def nothing_to_lose(result, metric: str, op: str) -> str | None:
    """Why an upper bound on ``accuracy_drop`` proves nothing: behaviour was not above chance before the
    intervention, so no drop was possible (the result has accuracy_before(_ci) and behaviour_chance)."""
    if metric != "accuracy_drop" or op not in ("<=", "<"):
        return None
    # float(): a comparison with a Metric would be recorded as one of the audit's thresholds
    interval, chance = result.accuracy_before_ci, float(result.behaviour_chance)
    if interval is None or interval.low > chance:
        return None
    return (f"accuracy before the intervention is {float(result.accuracy_before):.3f} (95% CI {interval}), "
            f"not above chance ({chance:.3f}): there was nothing to lose")


def changed_examples(inputs: Inputs, before: torch.Tensor, after: torch.Tensor, name_of, limit: int = 5):
    """Examples whose prediction changed, as evidence: 'label A -> B'."""
    changed = (before != after).nonzero().flatten().tolist()
    return tuple(
        Example(inputs.describe(i), f"prediction {name_of(int(before[i]))} -> {name_of(int(after[i]))}")
        for i in changed[:limit]
    )
