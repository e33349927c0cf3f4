"""Interventions whose parameters come from activations on data: mean, resample, patch."""

from __future__ import annotations

import torch

from ..engine import capture
from ..errors import CheckError
from ..inputs import Inputs
from ..interventions import MeanAblation, Patch, ResampleAblation


def token_means(subject, sites, reference: Inputs) -> dict[str, torch.Tensor]:
    """Each site's mean activation over every real token of ``reference`` ([d]), by site name; one pass."""
    sites = [subject.site(site) for site in sites]
    per_example = capture(subject, reference, sites, position="mean")
    weights = reference.lengths.float()[:, None]
    means = {}
    for site in sites:
        values = per_example[site.name]
        if values.ndim != 2:
            raise CheckError(f"mean ablation at {site.name!r} needs [n, d] activations; got {tuple(values.shape)}")
        means[site.name] = (values * weights).sum(0) / weights.sum()
    return means


def mean_ablation(subject, site, reference: Inputs, positions: str = "all") -> MeanAblation:
    """Replace ``site`` with its mean activation over every real token of ``reference``."""
    site = subject.site(site)
    return MeanAblation(site, token_means(subject, [site], reference)[site.name], positions)


def resample_ablation(subject, site, reference: Inputs, seed: int = 0, positions: str = "all") -> ResampleAblation:
    """Replace each example's activations at ``site`` with those of a seeded random reference example."""
    site = subject.site(site)
    donors = capture(subject, reference, site, position="all")
    return ResampleAblation(site, donors, seed, positions)


def patch_from(subject, site, source: Inputs, positions: str = "all") -> Patch:
    """Patch ``site`` with its activations on ``source`` (example i of the base gets source example i)."""
    site = subject.site(site)
    activations = capture(subject, source, site, position="all")
    return Patch(site, activations, source.attention_mask, positions)
