"""Trying every trigger: where |allowed tokens| ** length fits the budget, enumeration costs no more
than a gradient-guided search and cannot miss (``search_trigger`` then uses it and says so)."""

from __future__ import annotations

import torch

from .search import Scorer

EXHAUSTIVE_CHUNK = 256  # triggers scored per call when trying them all


def score_every_trigger(scorer: Scorer, allowed: torch.Tensor, length: int) -> None:
    """Score every trigger of ``length`` tokens from ``allowed`` (|allowed| ** length forward-pass
    equivalents), in chunks; the scorer keeps each one's scores (``Scorer.known``) for every target."""
    grids = torch.meshgrid(*([allowed] * length), indexing="ij")
    every = torch.stack([g.reshape(-1) for g in grids], dim=1)  # [|allowed| ** length, length]
    for start in range(0, len(every), EXHAUSTIVE_CHUNK):
        scorer.scores(every[start:start + EXHAUSTIVE_CHUNK])
