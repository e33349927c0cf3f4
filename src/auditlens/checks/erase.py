"""erase: remove a concept linearly (LEACE) at a site during the forward pass; does behaviour break?"""

from __future__ import annotations

from dataclasses import dataclass

import warnings

import torch

with warnings.catch_warnings():  # concept-erasure scripts a helper with the deprecated torch.jit
    warnings.simplefilter("ignore", DeprecationWarning)
    from concept_erasure import LeaceEraser, LeaceFitter

from ..capture import capture, run
from ..data import Concept
from ..interventions import Transform, tensor_key
from ..results import CheckResult, Example
from ..settings import seed_or_default
from ..stats import Interval
from .behaviour import behaviour_change
from .probe import cross_validated_predictions


@dataclass(frozen=True)
class EraseResult(CheckResult):
    """Behaviour before and after LEACE erasure of a concept at a site."""

    concept: str = ""
    position: str = "last"
    accuracy_before: float = 0.0
    accuracy_after: float = 0.0
    accuracy_drop: float = 0.0
    accuracy_drop_ci: Interval | None = None
    margin_change: float = 0.0  # mean change of the true-label logit margin (after - before)
    probe_accuracy_after: float = 0.0  # a fresh probe on erased activations: should be at chance
    chance: float = 0.0
    examples: tuple[Example, ...] = ()

    def headline(self) -> str:
        return (f"erase {self.concept!r} (LEACE) at {self.site} (position {self.position}) on {self.subject}, "
                f"n={self.n}")


def leace_eraser(features: torch.Tensor, labels: torch.Tensor, n_classes: int):
    """Fit a LEACE eraser ([..., d] -> [..., d]) that makes ``labels`` linearly unpredictable from features."""
    fitter = LeaceFitter(features.shape[1], n_classes, dtype=torch.float64)
    fitter.update(features.double(), torch.nn.functional.one_hot(labels, n_classes).double())
    eraser = fitter.eraser
    name = "leace:" + tensor_key(torch.cat([eraser.proj_left.flatten(), eraser.proj_right.flatten(),
                                            eraser.bias.flatten()]))
    on_device = {eraser.proj_left.device: eraser}  # the eraser follows the activations (GPU, sharded models)

    def apply(h: torch.Tensor) -> torch.Tensor:
        if h.device not in on_device:
            on_device[h.device] = LeaceEraser(eraser.proj_left.to(h.device), eraser.proj_right.to(h.device),
                                              None if eraser.bias is None else eraser.bias.to(h.device))
        return on_device[h.device](h.double()).to(h.dtype)

    return apply, name


def erase(subject, concept: Concept, at: str, position="last", *, data: Concept | None = None,
          folds: int = 5, seed: int | None = None) -> EraseResult:
    """Fit LEACE for ``concept`` on ``at``'s activations, apply it while the model runs, measure behaviour.

    Erasure is applied where the activations were read: the reduced position for ``last`` / ``first``
    / an index, every position for ``mean``. Behaviour is measured on ``data`` (default: the concept).
    """
    seed = seed_or_default(seed)
    concept.require_examples("erase")
    site = subject.site(at)
    inputs, labels = concept.inputs(subject), concept.label_tensor()
    features = capture(subject, inputs, site, position=position)
    fn, name = leace_eraser(features, labels, concept.n_classes)
    applied_at = position if position in ("last", "first") or isinstance(position, int) else "all"
    erasure = Transform(site, fn, name, positions=applied_at)

    measured = data or concept
    measured.require_examples("erase (behaviour data)")
    change = behaviour_change(subject, measured, [erasure], seed)

    erased = run(subject, inputs, sites=[site], position=position, interventions=[erasure]).activations[site.name]
    probe_after = cross_validated_predictions(erased.numpy(), labels.numpy(), folds, seed)
    return EraseResult(
        "erase", subject.id, site.name, len(measured), concept.name, str(position),
        change.accuracy_before, change.accuracy_after, change.accuracy_drop, change.accuracy_drop_ci,
        change.margin_change,
        float((probe_after == labels.numpy()).mean()),
        float(torch.bincount(labels).max() / len(labels)),
        change.examples,
    )
