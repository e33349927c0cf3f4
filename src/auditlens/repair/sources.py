"""Where a shortcut lives and how to remove it, from each kind of evidence a failed audit gives.

- A **patch** audit gives counterfactual pairs that differ only in the nuisance. The carrying sites are
  those whose patch alone reproduces at least half the audit's flips (embed, then per block every head,
  the attention and the MLP). At a site the pairs' differences span D, and the edit is an oblique clamp
  that holds the coordinates along D at their mean. The reading R = (D Σ⁺ Dᵀ)⁻¹ D Σ⁺ is LEACE's, so the
  nuisance stops varying and the other activations move least.
- An **erase** audit gives a labelled concept the decision must not rest on. The carrying sites are the
  attention and MLP outputs up to the audit's block, and the edit is the concept's LEACE eraser fitted
  there on every real token.

Either way the measure is the audit's own metric, re-run on a candidate model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..checks.erase import erase
from ..checks.patch import patch
from ..engine import capture
from ..interventions import LinearEraser, Transform
from ..interventions.edits import Clamp
from ..sites import expand_sites
from .evidence import Shortcut

CARRIES = 0.5  # a site carries the shortcut when its patch alone flips at least this share of the audit's flips
CLAMP_RANKS = (1, 2, 4)


@dataclass
class EditSource:
    """The carrying sites (site -> what patching it alone did, or None), the ranks to try, the edit of a site
    at a rank (None beyond its span), and the audit's metric on a candidate subject."""

    kind: str
    carriers: dict[str, float | None]
    ranks: tuple[int, ...]
    edit: Callable[[str, int], object | None]
    measure: Callable[[object], float]


def from_patch(subject, pairs, shortcut: Shortcut, seed: int) -> EditSource:
    last = block_of(shortcut.site, subject.n_layers)
    names = ["embed"] + [name for layer in range(last + 1) for name in (
        *(s.name for s in expand_sites(subject.model, f"head:{layer}.*")), f"attn:{layer}", f"mlp:{layer}")]
    rates = {name: patch(subject, pairs, name, shortcut.positions, seed=seed).flip_rate for name in names}
    carriers = {name: rate for name, rate in rates.items() if rate >= CARRIES * shortcut.value and rate > 0}
    spans = {site: _span(subject, pairs, site) for site in carriers}

    @functools.cache  # one fit per (site, rank): a site recurs in the block's and the all-sites tries
    def edit(site: str, rank: int):
        differences, activations = spans[site]
        return None if rank > 1 and rank > min(differences.shape) else _clamp(subject, site, rank, *spans[site])

    def measure(candidate) -> float:
        return getattr(patch(candidate, pairs, shortcut.site, shortcut.positions, seed=seed), shortcut.metric)

    return EditSource("clamp", carriers, CLAMP_RANKS, edit, measure)


def from_erase(subject, concept, data, shortcut: Shortcut, seed: int) -> EditSource:
    last = block_of(shortcut.site, subject.n_layers)
    carriers = {f"{kind}:{layer}": None for layer in range(last + 1) for kind in ("attn", "mlp")}
    inputs, labels = concept.inputs(subject), concept.label_tensor()

    @functools.cache  # one eraser per site: a site recurs in the block's and the all-sites tries
    def edit(site: str, rank: int):
        features = capture(subject, inputs, site, position="all")
        real = inputs.attention_mask.bool()
        eraser = LinearEraser.fit(features[real], labels[:, None].expand_as(real)[real], concept.n_classes)
        return Transform(subject.site(site), eraser)

    position = int(shortcut.positions) if shortcut.positions.lstrip("-").isdigit() else shortcut.positions

    def measure(candidate) -> float:
        result = erase(candidate, concept, shortcut.site, position, data=data, seed=seed)
        return getattr(result, shortcut.metric)

    return EditSource("LEACE", carriers, (1,), edit, measure)


def _span(subject, pairs, site) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs' differences at ``site`` ([m, d], at the real positions where they differ) and every real
    activation of both members there ([n, d]: their mean and covariance)."""
    base, source, _ = pairs.pair_inputs(subject)
    at_base = capture(subject, base, site, position="all")
    at_source = capture(subject, source, site, position="all")
    if at_base.ndim == 2:  # one vector per example
        real = torch.ones(at_base.shape[0], dtype=torch.bool)
    else:
        real = base.attention_mask.bool() & source.attention_mask.bool()
    gaps = at_source[real] - at_base[real]
    differ = gaps.norm(dim=1) > 1e-4 * gaps.norm(dim=1).max().clamp_min(1e-12)
    return gaps[differ], torch.cat([at_base[real], at_source[real]])


def _clamp(subject, site: str, rank: int, differences: torch.Tensor, activations: torch.Tensor) -> Clamp:
    directions = torch.linalg.svd(differences.double(), full_matrices=False).Vh[:rank]
    inverse = torch.linalg.pinv(torch.cov(activations.double().T), hermitian=True, rtol=1e-6)
    reading = torch.linalg.solve(directions @ inverse @ directions.T, directions @ inverse)
    return Clamp(subject.site(site), directions, activations.double().mean(0), reading)


def block_of(site: str, layers: int) -> int:
    """The last block a site lies in (-1 for ``embed``; every block for a module path)."""
    for kind in ("layer:", "attn:", "mlp:", "neurons:", "neuron:", "head:"):
        if site.startswith(kind):
            return int(site.removeprefix(kind).split(".")[0]) % layers
    return -1 if site == "embed" else layers - 1
