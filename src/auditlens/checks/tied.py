"""Units tied to a concept: the latents of a dictionary (``features:SITE``), the hidden units of an MLP
(``neurons:L``) or the dimensions of any other site, ranked by how well each alone separates the
concept's two classes (|AUROC - 0.5|, scale-free, so sparse latents and dense neurons rank alike).
And ``ablate_tied``: knock the top ones out together and measure what the behaviour loses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata

from ..concepts.concept import Concept
from ..engine import capture
from ..errors import CheckError
from ..features.examples import feature_examples
from ..interventions import PartialMean
from ..settings import seed_or_default
from .behaviour_change import BehaviourChangeResult, behaviour_change
from .from_data import token_means

TIE_KINDS = ("mean", "zero")


@dataclass(frozen=True)
class TiedUnits:
    """The units of ``site`` most tied to ``concept``, best first: indices into the site's last axis,
    their names (``feature:SITE/F``, ``neuron:L.I``, ``SITE[i]``) and AUROC against the concept's label 1."""

    site: object  # the whole Site whose units these are
    indices: tuple[int, ...]
    names: tuple[str, ...]
    aurocs: tuple[float, ...]


def aurocs(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per column of ``values`` [n, units]: the AUROC of that column for ``labels`` == 1 (ties count half)."""
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(values, axis=0)
    return (ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def unit_name(site, index: int) -> str:
    """How a report names unit ``index`` of ``site``."""
    if site.dictionary is not None:
        return f"feature:{site.name.removeprefix('features:')}/{index}"
    if site.name.startswith("neurons:"):
        return f"neuron:{site.name.removeprefix('neurons:')}.{index}"
    return f"{site.name}[{index}]"


def unit_rows(names, aurocs_) -> list[dict]:
    """The report's rows of chosen units, each with its AUROC for the concept it is tied to."""
    return [{"component": name, "auroc": auroc} for name, auroc in zip(names, aurocs_)]


def tied_units(subject, concept: Concept, at: str, n: int = 1, position="last") -> TiedUnits:
    """The ``n`` units of site ``at`` whose activations (at ``position``) best separate ``concept``'s classes."""
    site = subject.site(at)
    if site.features is not None:
        raise CheckError(f"units tied to a concept are ranked over a whole site (features:SITE, neurons:L, layer:N); "
                         f"{site.name!r} is one unit")
    if concept.n_classes != 2:
        raise CheckError(f"units are tied to a concept of two classes; {concept.name!r} has {concept.n_classes}")
    values = capture(subject, concept.inputs(subject), site, position=position)
    if values.ndim != 2:
        raise CheckError(f"ranking units at {site.name!r} needs one vector per example; give position last or mean")
    if not isinstance(n, int) or not 1 <= n <= values.shape[1]:
        raise CheckError(f"n must be a whole number from 1 to the {values.shape[1]} units of {site.name}; got {n!r}")
    scores = aurocs(values.double().numpy(), concept.label_tensor().numpy())
    order = np.argsort(-np.abs(scores - 0.5), kind="stable")[:n]
    return TiedUnits(site, tuple(map(int, order)), tuple(unit_name(site, int(i)) for i in order),
                     tuple(float(scores[i]) for i in order))


def ablation_of(subject, units: TiedUnits, kind: str, reference) -> PartialMean:
    """One edit that replaces the chosen units (with their mean over ``reference``'s tokens, or zero)."""
    if kind not in TIE_KINDS:
        raise CheckError(f"units tied to a concept are ablated with one of {', '.join(TIE_KINDS)}; got {kind!r}")
    site = units.site
    values = token_means(subject, [site], reference)[site.name]
    if kind == "zero":
        values = torch.zeros_like(values)
    return PartialMean(site, values, tuple((i, i + 1) for i in sorted(units.indices)))


@dataclass(frozen=True, kw_only=True)
class AblateTiedResult(BehaviourChangeResult):
    """Behaviour before and after ablating the units of a site most tied to a concept."""

    kind: str = "mean"
    tied_to: str = ""
    units: tuple[str, ...] = ()
    unit_aurocs: tuple[float, ...] = ()

    def component_values(self) -> list[dict]:
        return unit_rows(self.units, self.unit_aurocs)

    def headline(self) -> str:
        return (f"{self.kind}-ablate the {len(self.units)} unit(s) of {self.site} most tied to {self.tied_to!r} "
                f"({', '.join(self.units)}) on {self.subject}, behaviour on {self.concept!r}, n={self.n}")


def ablate_tied(subject, concept: Concept, at: str, tied_to: Concept, *, n: int = 1, kind: str = "mean",
                position="last", reference: Concept | None = None, seed: int | None = None) -> AblateTiedResult:
    """Rank the units of ``at`` by how well each separates ``tied_to``'s classes, ablate the top ``n``
    together (mean over ``reference``'s tokens, default the concept's, or zero; a dictionary's latents
    with its reconstruction error kept) and measure the accuracy drop on ``concept``."""
    seed = seed_or_default(seed)
    concept.require_examples("ablate_tied")
    units = tied_units(subject, tied_to, at, n, position)
    ablation = ablation_of(subject, units, kind, (reference or concept).inputs(subject))
    change = behaviour_change(subject, concept, [ablation], seed)
    return AblateTiedResult(check="ablate_tied", subject=subject.id, site=units.site.name, n=len(concept),
                            concept=concept.name, kind=kind, tied_to=tied_to.name, units=units.names,
                            unit_aurocs=units.aurocs,
                            feature_examples=feature_examples(subject, units.names, [tied_to, concept]),
                            **change.fields())
