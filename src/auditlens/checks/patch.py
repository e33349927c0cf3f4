"""patch: interchange interventions. Copy a site's activations from a counterfactual source run."""

from __future__ import annotations

from dataclasses import dataclass

from ..concepts.concept import Concept
from ..features.examples import feature_examples
from ..results import CheckResult, Example
from ..settings import seed_or_default
from ..stats import Interval, bootstrap_mean
from .behaviour_change import behaviour
from .from_data import patch_from


@dataclass(frozen=True, kw_only=True)
class PatchResult(CheckResult):
    """How often the patched output follows the source (IIA) and how often it changes at all."""

    mechanistic = True
    figure_metrics = ("iia", "flip_rate")

    concept: str = ""
    positions: str = "all"
    iia: float = 0.0  # interchange-intervention accuracy: patched prediction == the pair's expected label
    iia_ci: Interval | None = None
    flip_rate: float = 0.0  # patched prediction != the base's own prediction
    flip_rate_ci: Interval | None = None
    predicted_classes: int = 0  # distinct classes the model predicts on the unpatched bases
    examples: tuple[Example, ...] = ()

    def vacuous_reason(self, metric: str, op: str) -> str | None:
        """An upper bound on flips proves nothing when the model gives one answer to every base."""
        if metric != "flip_rate" or op not in ("<=", "<") or self.predicted_classes != 1:
            return None
        return "the model predicts one class for every base input: no patch could flip it"

    def headline(self) -> str:
        return (f"patch {self.site} (positions {self.positions}) from counterfactual sources of "
                f"{self.concept!r} on {self.subject}, n={self.n} pairs")


def patch(subject, pairs: Concept, at: str, positions: str = "all", *, seed: int | None = None) -> PatchResult:
    """Run each base input with ``at`` patched from its source input (same position alignment)."""
    seed = seed_or_default(seed)
    base, source, expected = pairs.pair_inputs(subject)
    intervention = patch_from(subject, at, source, positions)
    answers = pairs.answer_token_ids(subject)
    clean = behaviour(subject, base, expected, answer_tokens=answers)
    patched = behaviour(subject, base, expected, [intervention], answer_tokens=answers)
    follows = (patched.predictions == expected).float()
    flips = (patched.predictions != clean.predictions).float()
    shown = flips.nonzero().flatten().tolist()[:5]
    examples = tuple(
        Example(f"{base.describe(i)}  <=  {source.describe(i)}",
                f"prediction {pairs.label_name(int(clean.predictions[i]))} -> "
                f"{pairs.label_name(int(patched.predictions[i]))} (expected {pairs.label_name(int(expected[i]))})")
        for i in shown
    )
    return PatchResult(
        check="patch", subject=subject.id, site=intervention.site.name, n=len(expected), concept=pairs.name,
        positions=positions, iia=float(follows.mean()), iia_ci=bootstrap_mean(follows.numpy(), seed, what="IIA"),
        flip_rate=float(flips.mean()), flip_rate_ci=bootstrap_mean(flips.numpy(), seed + 1, what="flip rate"),
        predicted_classes=len(clean.predictions.unique()), examples=examples,
        per_example={"iia": follows, "flip_rate": flips}, data_digest=f"{base.digest}:{source.digest}",
        feature_examples=feature_examples(subject, [intervention.site.name], [pairs]),
    )
