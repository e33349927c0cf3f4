"""ablate: knock out a site (zero, mean or resample) and measure how much behaviour depends on it."""

from __future__ import annotations

from dataclasses import dataclass

from ..concepts.concept import Concept
from ..errors import CheckError
from ..features.examples import feature_examples
from ..interventions import ZeroAblation
from ..settings import seed_or_default
from .behaviour_change import BehaviourChangeResult, behaviour_change
from .from_data import mean_ablation, resample_ablation

KINDS = ("zero", "mean", "resample")


@dataclass(frozen=True, kw_only=True)
class AblateResult(BehaviourChangeResult):
    """Behaviour before and after knocking out a site."""

    kind: str = "mean"
    positions: str = "all"

    def headline(self) -> str:
        return (f"{self.kind}-ablate {self.site} (positions {self.positions}) on {self.subject}, "
                f"behaviour on {self.concept!r}, n={self.n}")


def ablate(subject, concept: Concept, at: str, kind: str = "mean", *, positions="all",
           reference: Concept | None = None, seed: int | None = None) -> AblateResult:
    """Ablate ``at`` and measure the accuracy drop on ``concept``'s labelled examples.

    ``mean`` and ``resample`` take their values from ``reference`` (default: the concept's inputs).
    ``positions``: ``all``, ``last``, ``first`` or an index into the real tokens.
    """
    seed = seed_or_default(seed)
    if kind not in KINDS:
        raise CheckError(f"ablation kind must be one of {', '.join(KINDS)}; got {kind!r}")
    concept.require_examples("ablate")
    reference_inputs = (reference or concept).inputs(subject)
    if kind == "zero":
        ablation = ZeroAblation(subject.site(at), positions)
    elif kind == "mean":
        ablation = mean_ablation(subject, at, reference_inputs, positions)
    else:
        ablation = resample_ablation(subject, at, reference_inputs, seed, positions)
    change = behaviour_change(subject, concept, [ablation], seed)
    return AblateResult(check="ablate", subject=subject.id, site=ablation.site.name, n=len(concept),
                        concept=concept.name, kind=kind, positions=str(positions),
                        feature_examples=feature_examples(subject, [ablation.site.name], [concept]), **change.fields())
