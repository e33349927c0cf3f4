"""probe: is a concept linearly decodable at a site, beyond what a control task allows?"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..concepts.concept import Concept
from ..engine import run
from ..errors import ConceptError
from ..progress import report
from ..results import CheckResult, Example, not_recorded
from ..settings import seed_or_default
from ..sites.features import expand_any
from ..sites.resolve import alias_table
from ..stats import Interval, bootstrap_mean
from .probe_fit import out_of_fold_predictions

BASELINE = "embed"  # in a layer:* sweep: the input to the first block, shown, never the best site


@dataclass(frozen=True, kw_only=True)
class ProbeResult(CheckResult):
    """Cross-validated accuracy of a logistic-regression probe, its control task and their difference."""

    mechanistic = True

    concept: str = ""
    position: str = "last"
    accuracy: float = 0.0
    accuracy_ci: Interval | None = None
    control_accuracy: float = 0.0
    control_accuracy_ci: Interval | None = None
    selectivity: float = 0.0
    selectivity_ci: Interval | None = None
    chance: float = 0.0  # majority-class rate
    folds: int = 5
    seconds_forward: float = 0.0
    seconds_fit: float = 0.0
    examples: tuple[Example, ...] = ()

    def headline(self) -> str:
        return (f"probe for {self.concept!r} at {self.site} (position {self.position}) on {self.subject}, "
                f"n={self.n}, {self.folds}-fold CV")


@dataclass(frozen=True, kw_only=True)
class ProbeSweep(CheckResult):
    """A probe at every site of a sweep (``layer:*``): the per-layer curve (plotted as a curve).

    ``best_site`` is chosen by selectivity (ties by accuracy), never the ``embed`` baseline;
    ``best_accuracy`` and ``best_selectivity`` are that site's. The site of the highest accuracy can be
    another one: ``top_accuracy_site`` names it."""

    mechanistic = True
    curve_series = (("accuracy", "probe"), ("control_accuracy", "control task"))
    selection_rule = "the most selective site (accuracy minus the control task's; ties by accuracy)"

    concept: str = ""
    results: tuple[ProbeResult, ...] = ()
    best_accuracy: float = 0.0
    best_selectivity: float = 0.0
    best_site: str = ""
    top_accuracy_site: str = ""  # the site of the highest accuracy (baseline excluded), when it is not best_site

    def headline(self) -> str:
        return (f"probe sweep for {self.concept!r} at {self.site} on {self.subject}, n={self.n}; best site by "
                f"selectivity: {self.best_site} (selectivity {self.best_selectivity:.3f}, accuracy "
                f"{self.best_accuracy:.3f} there)")

    @property
    def accuracies(self) -> list[float]:
        return [float(r.accuracy) for r in self.results]

    @property
    def selectivities(self) -> list[float]:
        return [float(r.selectivity) for r in self.results]

    def __getitem__(self, site: str) -> ProbeResult:
        for result in self.results:
            if result.site == site:
                return result
        raise KeyError(f"no site {site!r} in this sweep; it has {[r.site for r in self.results]}")

    def explain(self) -> str:
        lines = [f"probe sweep for {self.concept!r} on {self.subject}, n={self.n}",
                 f"  {'site':<12}{'accuracy':>10}{'control':>10}{'selectivity':>13}   95% CI of accuracy"]
        for r in self.results:
            note = "   (input to block 0: a baseline)" if r.site == BASELINE else ""
            lines.append(f"  {r.site:<12}{r.accuracy:>10.3f}{r.control_accuracy:>10.3f}{r.selectivity:>13.3f}"
                         f"   {r.accuracy_ci}{note}")
        lines.append(f"  best, by selectivity: {self.best_site} (selectivity {self.best_selectivity:.3f}; accuracy "
                     f"{self.best_accuracy:.3f} there)")
        if self.top_accuracy_site and self.top_accuracy_site != self.best_site:
            top = self[self.top_accuracy_site]
            lines.append(f"  highest accuracy: {top.site} ({top.accuracy:.3f}, selectivity {top.selectivity:.3f}): "
                         "less selective, so not the best")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = super().to_dict()
        data["curve"] = [r.to_dict() for r in self.results]
        return data


def probe(subject, concept: Concept, at: str = "layer:*", position="last", *, folds: int = 5,
          seed: int | None = None, regularization: float = 1.0) -> ProbeResult | ProbeSweep:
    """Fit a logistic-regression probe for ``concept`` at ``at`` with stratified k-fold CV.

    ``at`` is a site, or a sweep such as ``layer:*`` (one probe per block, one forward pass in all).
    A ``layer:*`` sweep also probes ``embed``, the input to the first block, as the curve's baseline:
    what the tokens give before any computation. It is never the sweep's best site, which is the
    block where the concept is most selectively decodable.
    Selectivity is accuracy minus the accuracy of the same probe on a control task (random labels
    per input type, Hewitt & Liang 2019). Accuracies are fractions in [0, 1]; intervals are 95% bootstrap.
    """
    seed = seed_or_default(seed)
    concept.require_examples("probe")
    sites = expand_any(subject.model, at)
    if at == "layer:*" and "embed" in alias_table(subject.model):
        sites = [subject.site("embed"), *sites]
    labels = concept.label_tensor().numpy()
    control = concept.control_labels(seed).numpy()
    _check_fold_sizes(concept, labels, folds)
    started = time.perf_counter()
    activations = run(subject, concept.inputs(subject), sites=sites, position=position).activations
    seconds_forward = time.perf_counter() - started
    sweep = len(sites) > 1 or "*" in at

    def fit_all():
        results = []
        for number, site in enumerate(sites, 1):
            if len(sites) > 1:
                report(f"probe {concept.name!r} on {subject.id}: fitting {site.name} ({number}/{len(sites)})",
                       detail=True)
            results.append(_fit_site(subject, concept, site.name, position, activations[site.name].numpy(), labels,
                                     control, folds, seed, regularization, seconds_forward / len(sites)))
        return results

    if not sweep:
        return fit_all()[0]
    with not_recorded():  # the sweep is the result; its per-layer parts live inside it
        results = fit_all()
    candidates = [r for r in results if r.site != BASELINE] or results
    best = max(candidates, key=lambda r: (float(r.selectivity), float(r.accuracy)))
    top = max(candidates, key=lambda r: float(r.accuracy))
    return ProbeSweep(check="probe", subject=subject.id, site=at, n=len(concept), concept=concept.name,
                      results=tuple(results), best_accuracy=float(best.accuracy),
                      best_selectivity=float(best.selectivity), best_site=best.site, top_accuracy_site=top.site,
                      data_digest=best.data_digest,
                      per_example={"best_accuracy": best.per_example["accuracy"],
                                   "best_selectivity": best.per_example["selectivity"]})


def cross_validated_predictions(features: np.ndarray, labels: np.ndarray, folds: int, seed: int,
                                regularization: float = 1.0) -> np.ndarray:
    """Out-of-fold predictions of a standardized logistic-regression probe (see ``probe_fit``)."""
    return out_of_fold_predictions(features, [(labels, folds)], seed, regularization)[0]


def _fit_site(subject, concept, site, position, features, labels, control, folds, seed, regularization,
              seconds_forward) -> ProbeResult:
    started = time.perf_counter()
    control_folds = min(folds, int(np.bincount(control).min()))
    label_sets = [(labels, folds)] + ([(control, control_folds)] if control_folds >= 2 else [])
    predictions = out_of_fold_predictions(features, label_sets, seed, regularization)  # fitted together
    correct = (predictions[0] == labels).astype(float)
    if control_folds >= 2:
        control_correct = (predictions[1] == control).astype(float)
    else:  # a control class too rare to split: the probe cannot beat its majority guess
        control_correct = (control == np.bincount(control).argmax()).astype(float)
    seconds_fit = time.perf_counter() - started
    wrong = np.flatnonzero(correct == 0)[:5]
    inputs = concept.inputs(subject)
    examples = tuple(Example(inputs.describe(int(i)), f"label {concept.label_name(int(labels[i]))} misread")
                     for i in wrong)
    return ProbeResult(
        check="probe", subject=subject.id, site=site, n=len(labels), concept=concept.name, position=str(position),
        accuracy=float(correct.mean()), accuracy_ci=bootstrap_mean(correct, seed, what=f"probe accuracy at {site}"),
        control_accuracy=float(control_correct.mean()),
        control_accuracy_ci=bootstrap_mean(control_correct, seed + 1, what="control accuracy"),
        selectivity=float(correct.mean() - control_correct.mean()),
        selectivity_ci=bootstrap_mean(correct - control_correct, seed + 2, what="selectivity"),
        chance=float(np.bincount(labels).max() / len(labels)), folds=folds, seconds_forward=seconds_forward,
        seconds_fit=seconds_fit, examples=examples, data_digest=inputs.digest,
        per_example={"accuracy": correct, "control_accuracy": control_correct,
                     "selectivity": correct - control_correct},
    )


def _check_fold_sizes(concept: Concept, labels: np.ndarray, folds: int) -> None:
    if folds < 2:
        raise ConceptError(f"folds must be at least 2 for cross-validation; got {folds}")
    counts = np.bincount(labels)
    rare = [(label, int(c)) for label, c in enumerate(counts) if 0 < c < folds]
    if rare:
        label, count = rare[0]
        raise ConceptError(
            f"concept {concept.name!r} has {count} examples of class {concept.label_name(label)!r}; "
            f"{folds}-fold cross-validation needs at least {folds} of each class (use folds= or add examples)"
        )
