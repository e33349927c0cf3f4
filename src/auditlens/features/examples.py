"""What a dictionary latent reads: its top-activating examples among the audit's own concepts, for the
report (a latent is named by a number; the examples say what it is)."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine import capture
from ..results import not_recorded
from ..sites.features import is_feature_name, parse_feature_name

TOP = 5  # examples shown per latent
MOST = 8  # latents shown per check


def feature_examples(subject, names: Sequence[str], concepts: Sequence, top: int = TOP) -> tuple:
    """For each latent among ``names`` (``feature:SITE/F``; other names skipped, at most MOST): its
    ``top`` inputs by activation (the maximum over the input's tokens) across ``concepts``, as
    ``(name, ((text, activation), ...))``. Latents never active on them show no example."""
    latents = [name for name in dict.fromkeys(names) if is_feature_name(name) and not name.startswith("features:")]
    if not latents or not concepts:
        return ()
    sites = [subject.site(name) for name in latents[:MOST]]
    # each dictionary's latents whole, at their peak over tokens: a read the pass that ranked them kept
    wholes = {site.name: subject.site(f"features:{parse_feature_name(site.name)[0]}") for site in sites}
    read = list({whole.name: whole for whole in wholes.values()}.values())
    rows: list[tuple[str, list[float]]] = []
    with not_recorded():
        for inputs in _inputs_of(subject, concepts):
            peaks = capture(subject, inputs, read, position="max")
            per_site = [peaks[wholes[site.name].name][:, site.features[0]] for site in sites]
            rows += [(inputs.describe(i), [float(v[i]) for v in per_site]) for i in range(len(inputs))]
    shown = []  # each text once, at its highest activation
    for column, site in enumerate(sites):
        ranked = sorted(((text, values[column]) for text, values in rows if values[column] > 0),
                        key=lambda row: -row[1])
        best: dict[str, float] = {}
        for text, value in ranked:
            best.setdefault(text, value)
        shown.append((site.name, tuple(best.items())[:top]))
    return tuple(shown)


def _inputs_of(subject, concepts: Sequence) -> list:
    """Each concept's inputs: its examples, or both sides of its counterfactual pairs."""
    found = []
    for concept in dict.fromkeys(concepts):
        if concept.examples:
            found.append(concept.inputs(subject))
        else:
            base, source, _ = concept.pair_inputs(subject)
            found += [base, source]
    return found
