"""remove_spurious: SAEBench's spurious-correlation removal (SCR) as a check. Ablate the units of a site
most tied to a named spurious concept (a dictionary's latents, error kept) and measure how far the
model's accuracy on balanced data (the intended label, the spurious concept independent of it) moves
from the biased model's towards an oracle's, a linear probe for the intended label fitted on balanced
data at the same site:

    scr = (A_ablated - A_biased) / (A_oracle - A_biased)

The oracle is fitted out of fold once per seed; SAEBench needs a tolerance of 0.08 on this metric
because of probe seeds, so the spread over seeds is reported beside the interval over examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..concepts.concept import Concept
from ..engine import capture
from ..errors import CheckError
from ..features.examples import feature_examples
from ..results import CheckResult
from ..settings import seed_or_default
from ..stats import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Interval
from .behaviour_change import behaviour
from .probe_fit import out_of_fold_predictions
from .tied import ablation_of, tied_units, unit_rows

DEFAULT_SEEDS = 5


@dataclass(frozen=True, kw_only=True)
class SpuriousRemovalResult(CheckResult):
    """Balanced accuracy of the model, of the model with the spurious units ablated, and of an oracle."""

    mechanistic = True
    figure_metrics = ("accuracy_biased", "accuracy_ablated", "accuracy_oracle")

    concept: str = ""
    spurious: str = ""
    units: tuple[str, ...] = ()
    unit_aurocs: tuple[float, ...] = ()
    accuracy_biased: float = 0.0  # the model on balanced data, nothing ablated
    accuracy_ablated: float = 0.0  # the model with the spurious units ablated
    accuracy_oracle: float = 0.0  # the oracle probe, mean over seeds
    oracle_gap_after: float = 0.0  # A_oracle - A_ablated: what the model still lacks once they are gone
    scr: float = float("nan")  # (A_ablated - A_biased) / (A_oracle - A_biased); NaN with nothing to recover
    scr_ci: Interval | None = None
    scr_spread: float = float("nan")  # max - min of scr over the oracle's seeds
    scr_seeds: tuple[float, ...] = ()

    def component_values(self) -> list[dict]:
        return unit_rows(self.units, self.unit_aurocs)

    def note(self) -> str | None:
        if np.isnan(float(self.scr)):
            return (f"the model scores {float(self.accuracy_biased):.3f} on balanced data against the oracle's "
                    f"{float(self.accuracy_oracle):.3f}: no spurious reliance to remove, so scr is undefined; "
                    "oracle_gap_after says whether ablating the units hurt it")
        return None

    def headline(self) -> str:
        return (f"spurious-feature removal at {self.site} on {self.subject}: ablate {len(self.units)} unit(s) most "
                f"tied to {self.spurious!r} ({', '.join(self.units)}), balanced data {self.concept!r}, n={self.n}")


def _ratio(ablated, biased, oracle, room_needed: float):
    room = oracle - biased
    return np.where(room > room_needed, (ablated - biased) / np.where(room > room_needed, room, 1.0), np.nan)


def remove_spurious(subject, concept: Concept, at: str, spurious: Concept, *, n: int = 2, kind: str = "mean",
                    position="last", seeds: int = DEFAULT_SEEDS, folds: int = 5,
                    seed: int | None = None) -> SpuriousRemovalResult:
    """``concept``: balanced data labelled by the intended concept; ``spurious``: data labelled by the
    spurious one, which ranks the units of ``at`` (``features:SITE``, ``neurons:L``, ``layer:N``). The
    oracle reads the whole site (its module side) at ``position``."""
    seed = seed_or_default(seed)
    concept.require_examples("remove_spurious")
    if not isinstance(seeds, int) or seeds < 2:
        raise CheckError(f"remove_spurious fits the oracle once per seed to report its spread: seeds >= 2; "
                         f"got {seeds!r}")
    units = tied_units(subject, spurious, at, n, position)
    inputs, labels = concept.inputs(subject), concept.label_tensor()
    answers = concept.answer_token_ids(subject)
    biased = behaviour(subject, inputs, labels, answer_tokens=answers).correct.numpy()
    ablation = ablation_of(subject, units, kind, inputs)
    ablated = behaviour(subject, inputs, labels, [ablation], answer_tokens=answers).correct.numpy()
    raw = capture(subject, inputs, units.site.module_site, position=position).double().numpy()
    truth = labels.numpy()
    oracle = np.stack([out_of_fold_predictions(raw, [(truth, folds)], seed + s)[0] == truth
                       for s in range(seeds)]).astype(np.float64)  # [seeds, n]
    room_needed = 1.0 / len(truth)
    per_seed = _ratio(ablated.mean(), biased.mean(), oracle.mean(axis=1), room_needed)
    value = float(_ratio(ablated.mean(), biased.mean(), oracle.mean(), room_needed))
    interval = None
    if not np.isnan(value):
        rng = np.random.default_rng(seed)
        index = rng.integers(0, len(truth), size=(DEFAULT_RESAMPLES, len(truth)))
        draws = _ratio(ablated[index].mean(1), biased[index].mean(1), oracle.mean(0)[index].mean(1), room_needed)
        draws = draws[~np.isnan(draws)]
        if len(draws) >= DEFAULT_RESAMPLES // 2:
            tail = (1 - DEFAULT_LEVEL) / 2
            low, high = np.quantile(draws, [tail, 1 - tail])
            interval = Interval(float(low), float(high), DEFAULT_LEVEL)
    defined = per_seed[~np.isnan(per_seed)]
    return SpuriousRemovalResult(
        check="remove_spurious", subject=subject.id, site=units.site.name, n=len(truth), concept=concept.name,
        spurious=spurious.name, units=units.names, unit_aurocs=units.aurocs, accuracy_biased=float(biased.mean()),
        accuracy_ablated=float(ablated.mean()), accuracy_oracle=float(oracle.mean()),
        oracle_gap_after=float(oracle.mean() - ablated.mean()), scr=value, scr_ci=interval,
        scr_spread=float(np.ptp(defined)) if len(defined) == len(per_seed) else float("nan"),
        scr_seeds=tuple(map(float, per_seed)), data_digest=inputs.digest,
        feature_examples=feature_examples(subject, units.names, [spurious, concept]),
        per_example={"accuracy_biased": torch.as_tensor(biased), "accuracy_ablated": torch.as_tensor(ablated)})
