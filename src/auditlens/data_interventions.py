"""Interventions whose parameters come from activations on data: mean, resample, patch."""

from __future__ import annotations

from .engine import capture
from .errors import CheckError
from .inputs import Inputs
from .interventions import MeanAblation, Patch, ResampleAblation


def mean_ablation(subject, site, reference: Inputs, positions: str = "all") -> MeanAblation:
    """Replace ``site`` with its mean activation over every real token of ``reference``."""
    site = subject.site(site)
    per_example = capture(subject, reference, site, position="mean")
    weights = reference.lengths.float()[:, None]
    if per_example.ndim != 2:
        raise CheckError(f"mean ablation at {site.name!r} needs [n, d] activations; got {tuple(per_example.shape)}")
    mean = (per_example * weights).sum(0) / weights.sum()
    return MeanAblation(site, mean, positions)


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
