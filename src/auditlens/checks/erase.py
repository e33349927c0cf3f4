"""erase: remove a concept linearly (LEACE) at a site during the forward pass; does behaviour break?"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..concepts.concept import Concept
from ..engine import capture, run
from ..interventions import LinearEraser, Transform
from ..settings import seed_or_default
from ..sites.positions import check_position
from .behaviour_change import BehaviourChangeResult, behaviour_change
from .probe import cross_validated_predictions

# not max: an eraser applied at every token does not erase the maximum over them
ERASABLE = ("last", "first", "mean", "all")


@dataclass(frozen=True, kw_only=True)
class EraseResult(BehaviourChangeResult):
    """Behaviour before and after LEACE erasure of a concept at a site."""

    figure_metrics = ("accuracy_before", "accuracy_after", "accuracy_drop", "probe_accuracy_after")

    position: str = "last"
    probe_accuracy_after: float = 0.0  # a fresh probe on erased activations: should be at chance
    chance: float = 0.0

    def headline(self) -> str:
        return (f"erase {self.concept!r} (LEACE) at {self.site} (position {self.position}) on {self.subject}, "
                f"n={self.n}")

    def note(self) -> str | None:
        after, chance = float(self.probe_accuracy_after), float(self.chance)  # plain: a Metric compared is recorded
        if after >= chance:
            return None
        return (f"probe accuracy after {after:.3f} is below chance ({chance:.3f}): "
                "that is what a complete erasure looks like, not a concept read backwards. The eraser was fitted on "
                "every example, so the class means left in each cross-validation fold's training part point opposite "
                "to the held-out part's; the probe retrained there learns that reversed leftover and misses more "
                f"often than guessing the commonest class. Read it as chance: nothing linear of {self.concept!r} is "
                f"left at {self.site}")


def erase(subject, concept: Concept, at: str, position="last", *, data: Concept | None = None,
          folds: int = 5, seed: int | None = None) -> EraseResult:
    """Fit LEACE for ``concept`` on ``at``'s activations, apply it while the model runs, measure behaviour.

    Erasure is applied where the activations were read: the reduced position for ``last`` / ``first``
    / an index, every position for ``mean`` and ``all``. ``all`` fits the eraser on every real token
    (each labelled with its example's label), and the probe after erasure reads the erased tokens'
    mean per example. Behaviour is measured on ``data`` (default: the concept).
    """
    seed = seed_or_default(seed)
    concept.require_examples("erase")
    check_position(position, ERASABLE)
    site = subject.site(at)
    inputs, labels = concept.inputs(subject), concept.label_tensor()
    features = capture(subject, inputs, site, position=position, keep_on_device=True)  # fitted where they are
    if position == "all":  # [n, t, d] -> one row per real token
        real = inputs.attention_mask.bool().to(features.device)
        features, fit_labels = features[real], labels.to(features.device)[:, None].expand_as(real)[real]
    else:
        fit_labels = labels
    eraser = LinearEraser.fit(features, fit_labels, concept.n_classes)
    applied_at = position if position in ("last", "first") or isinstance(position, int) else "all"
    erasure = Transform(site, eraser, positions=applied_at)

    measured = data or concept
    measured.require_examples("erase (behaviour data)")
    change = behaviour_change(subject, measured, [erasure], seed)

    read_after = "mean" if position == "all" else position  # one vector per example for the probe
    erased = run(subject, inputs, sites=[site], position=read_after, interventions=[erasure]).activations[site.name]
    probe_after = cross_validated_predictions(erased.numpy(), labels.numpy(), folds, seed)
    fields = change.fields()
    probe_correct = (probe_after == labels.numpy()).astype(float)
    fields["per_example"] = {**fields["per_example"], "probe_accuracy_after": probe_correct}
    return EraseResult(
        check="erase", subject=subject.id, site=site.name, n=len(measured), concept=concept.name,
        position=str(position), **fields, probe_accuracy_after=float(probe_correct.mean()),
        chance=float(torch.bincount(labels).max() / len(labels)),
    )
