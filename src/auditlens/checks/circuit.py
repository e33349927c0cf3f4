"""Circuit checks, after the IOI circuit evaluation (Wang et al. 2022), on a concept's labelled examples
with mean ablation over a reference (default: the concept's inputs):

- ``necessity``: ablating the circuit's components drops the accuracy;
- ``faithfulness``: ablating everything *outside* the circuit (every other head and MLP; with latents of
  a dictionary, its other latents, the reconstruction error kept) keeps it:
  (F(circuit) - F(nothing)) / (F(model) - F(nothing)), "nothing" all of those ablated, F the
  mean over examples of ``metric``: ``accuracy`` (0/1 per example) or ``logit_difference`` (the true
  label's score minus the best other label's, which moves before an answer flips);
- ``minimality``: each member matters: removing it from the circuit lowers the faithfulness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..circuits import METRICS, Circuit, complement, ranges_by_site, universe
from ..concepts.concept import Concept
from ..errors import CheckError
from ..features.examples import feature_examples
from ..interventions import PartialMean
from ..results import CheckResult
from ..settings import seed_or_default
from ..stats import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Interval
from .behaviour_change import BehaviourChangeResult, behaviour, behaviour_change
from .from_data import token_means


@dataclass(frozen=True, kw_only=True)
class NecessityResult(BehaviourChangeResult):
    """Behaviour before and after mean-ablating every component of a circuit."""

    components: tuple[str, ...] = ()

    def component_values(self) -> list[dict]:
        return [{"component": c} for c in self.components]

    def headline(self) -> str:
        return (f"necessity of {self.site} ({', '.join(self.components)}) on {self.subject}, {self.concept!r}, "
                f"n={self.n}")


@dataclass(frozen=True, kw_only=True)
class FaithfulnessResult(CheckResult):
    """How much of the model's accuracy above 'everything ablated' the circuit alone keeps."""

    mechanistic = True
    figure_metrics = ("faithfulness",)

    concept: str = ""
    components: tuple[str, ...] = ()
    metric: str = "accuracy"  # what F is: accuracy or logit_difference
    faithfulness: float = 0.0
    faithfulness_ci: Interval | None = None
    score_model: float = 0.0  # F(model): the metric's mean with nothing ablated
    score_circuit: float = 0.0  # F(circuit): every head and MLP outside the circuit ablated
    score_nothing: float = 0.0  # F(nothing): every head and MLP ablated

    def vacuous_reason(self, metric: str, op: str) -> str | None:
        room = self.score_model - self.score_nothing
        if room > (1.0 / max(self.n, 1) if self.metric == "accuracy" else 1e-6 * max(abs(self.score_model), 1.0)):
            return None
        return (f"ablating every component (head, MLP, latent) leaves the {self.metric.replace('_', ' ')} at "
                f"{self.score_nothing:.3f} against {self.score_model:.3f}: there is nothing for a circuit to explain")

    def component_values(self) -> list[dict]:
        return [{"component": c} for c in self.components]

    def headline(self) -> str:
        return (f"faithfulness of {self.site} ({len(self.components)} components) on {self.subject}, "
                f"{self.concept!r}, n={self.n}")


@dataclass(frozen=True, kw_only=True)
class MinimalityResult(CheckResult):
    """The faithfulness lost by removing each member from the circuit."""

    mechanistic = True
    figure_metrics = ("faithfulness", "min_member_drop")

    concept: str = ""
    components: tuple[str, ...] = ()
    faithfulness: float = 0.0
    metric: str = "accuracy"
    member_drops: tuple[tuple[str, float], ...] = ()  # (member, faithfulness lost without it)
    min_member_drop: float = 0.0
    weakest_member: str = ""

    def component_values(self) -> list[dict]:
        return [{"component": member, "faithfulness_drop": drop} for member, drop in self.member_drops]

    def headline(self) -> str:
        return (f"minimality of {self.site} ({len(self.components)} components) on {self.subject}, "
                f"{self.concept!r}, n={self.n}; weakest member {self.weakest_member}")


class _Ablations:
    """Mean values of every projection input over the reference, and ablations built from them."""

    def __init__(self, subject, reference, circuit: Circuit):
        self.subject, self.circuit = subject, circuit
        sites = list(ranges_by_site(subject, universe(subject, circuit)))
        means = token_means(subject, sites, reference)
        self.means = {site: means[site.name] for site in sites}

    def replacing(self, grouped) -> list[PartialMean]:
        return [PartialMean(site, self.means[site], tuple(spans)) for site, spans in grouped.items()]

    def members(self, circuit: Circuit) -> list[PartialMean]:
        return self.replacing(ranges_by_site(self.subject, circuit.components))

    def outside(self, circuit: Circuit) -> list[PartialMean]:
        return self.replacing(complement(self.subject, circuit))

    def everything(self) -> list[PartialMean]:
        return self.replacing(ranges_by_site(self.subject, universe(self.subject, self.circuit)))


def _setup(subject, concept, circuit, reference, seed):
    seed = seed_or_default(seed)
    concept.require_examples("circuit checks")
    circuit = Circuit.of(circuit)
    ablations = _Ablations(subject, (reference or concept).inputs(subject), circuit)
    return seed, circuit, ablations


def _scores(subject, concept, interventions, metric: str) -> np.ndarray:
    """Per example: 1/0 correct (accuracy) or the true label's score minus the best other's."""
    result = behaviour(subject, concept.inputs(subject), concept.label_tensor(), interventions,
                       answer_tokens=concept.answer_token_ids(subject))
    values = result.correct if metric == "accuracy" else result.margins
    return values.numpy().astype(np.float64)


def _checked_metric(metric: str) -> str:
    if metric not in METRICS:
        raise CheckError(f"metric {metric!r} is not a circuit metric; give one of {', '.join(METRICS)}")
    return metric


def necessity(subject, concept: Concept, circuit, *, reference: Concept | None = None,
              seed: int | None = None) -> NecessityResult:
    """Mean-ablate every component of ``circuit`` (a Circuit, a circuit file or a list of components) at once."""
    seed, circuit, ablations = _setup(subject, concept, circuit, reference, seed)
    change = behaviour_change(subject, concept, ablations.members(circuit), seed)
    return NecessityResult(check="necessity", subject=subject.id, site=f"circuit:{circuit.name}", n=len(concept),
                           concept=concept.name, components=circuit.components,
                           feature_examples=feature_examples(subject, circuit.components, [concept]), **change.fields())


def _faithfulness(model, circuit_only, nothing, seed: int) -> tuple[float, Interval | None]:
    """The ratio, and its paired bootstrap interval over examples (resamples with no room left out)."""
    def ratio(index):
        room = model[index].mean(axis=-1) - nothing[index].mean(axis=-1)
        kept = circuit_only[index].mean(axis=-1) - nothing[index].mean(axis=-1)
        return kept, room

    kept, room = ratio(np.arange(len(model)))
    value = float(kept / room) if room > 0 else float("nan")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(model), size=(DEFAULT_RESAMPLES, len(model)))
    kept_b, room_b = ratio(index)
    valid = room_b > 0
    if valid.sum() < DEFAULT_RESAMPLES // 2:
        return value, None
    tail = (1 - DEFAULT_LEVEL) / 2
    low, high = np.quantile(kept_b[valid] / room_b[valid], [tail, 1 - tail])
    return value, Interval(float(low), float(high), DEFAULT_LEVEL)


def faithfulness(subject, concept: Concept, circuit, *, metric: str = "accuracy", reference: Concept | None = None,
                 seed: int | None = None) -> FaithfulnessResult:
    """Keep only ``circuit`` (mean-ablate every other head and MLP) and compare with the whole model
    and with everything ablated, on ``metric`` (accuracy or logit_difference)."""
    metric = _checked_metric(metric)
    seed, circuit, ablations = _setup(subject, concept, circuit, reference, seed)
    model = _scores(subject, concept, [], metric)
    circuit_only = _scores(subject, concept, ablations.outside(circuit), metric)
    nothing = _scores(subject, concept, ablations.everything(), metric)
    value, interval = _faithfulness(model, circuit_only, nothing, seed)
    return FaithfulnessResult(check="faithfulness", subject=subject.id, site=f"circuit:{circuit.name}",
                              n=len(concept), concept=concept.name, components=circuit.components, metric=metric,
                              faithfulness=value, faithfulness_ci=interval, score_model=float(model.mean()),
                              score_circuit=float(circuit_only.mean()), score_nothing=float(nothing.mean()),
                              per_example={f"circuit_{metric}": torch.as_tensor(circuit_only)},
                              feature_examples=feature_examples(subject, circuit.components, [concept]),
                              data_digest=concept.inputs(subject).digest)


def minimality(subject, concept: Concept, circuit, *, metric: str = "accuracy", reference: Concept | None = None,
               seed: int | None = None) -> MinimalityResult:
    """For each member: the faithfulness (on ``metric``) of the circuit without it, against the whole circuit's."""
    metric = _checked_metric(metric)
    seed, circuit, ablations = _setup(subject, concept, circuit, reference, seed)
    if len(circuit.components) < 2:
        raise CheckError(f"minimality of circuit {circuit.name!r} needs at least two members; it has "
                         f"{list(circuit.components)}")
    model = _scores(subject, concept, [], metric)
    nothing = _scores(subject, concept, ablations.everything(), metric)
    whole, _ = _faithfulness(model, _scores(subject, concept, ablations.outside(circuit), metric), nothing, seed)
    drops = []
    for member in circuit.components:
        without, _ = _faithfulness(model, _scores(subject, concept, ablations.outside(circuit.without(member)),
                                                  metric), nothing, seed)
        drops.append((member, float(whole - without)))
    weakest = min(drops, key=lambda item: item[1])
    return MinimalityResult(check="minimality", subject=subject.id, site=f"circuit:{circuit.name}", n=len(concept),
                            concept=concept.name, components=circuit.components, metric=metric,
                            faithfulness=whole, member_drops=tuple(drops), min_member_drop=weakest[1],
                            weakest_member=weakest[0],
                            feature_examples=feature_examples(subject, circuit.components, [concept]))
