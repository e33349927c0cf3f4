"""Trying every trigger: where |allowed tokens| ** length fits the budget, enumeration costs no more
than a gradient-guided search and cannot miss (``search_trigger`` then uses it and says so)."""

from __future__ import annotations

import torch

from .search import Scorer, Search

EXHAUSTIVE_CHUNK = 256  # triggers scored per objective call when trying them all


def exhaustive(scorer: Scorer, allowed: torch.Tensor, length: int) -> Search:
    """Try every trigger of ``length`` tokens from ``allowed`` (|allowed| ** length forward-pass
    equivalents): where that fits the budget it costs no more than a search and misses nothing. The
    best flips the most search answers; ties go to the larger margin towards the rarest answer."""
    given = torch.bincount(scorer.clean, minlength=scorer.answers)
    scorer.target = int(torch.argmin(given))
    grids = torch.meshgrid(*([allowed] * length), indexing="ij")
    every = torch.stack([g.reshape(-1) for g in grids], dim=1)  # [|allowed| ** length, length]
    best, best_rank = None, (float("-inf"), float("-inf"))
    for start in range(0, len(every), EXHAUSTIVE_CHUNK):
        triggers = every[start:start + EXHAUSTIVE_CHUNK]
        score, flips = scorer.objective(triggers)
        for i in range(len(triggers)):
            if (float(flips[i]), float(score[i])) > best_rank:
                best, best_rank = triggers[i], (float(flips[i]), float(score[i]))
    return Search(tuple(int(t) for t in best), best_rank[1], best_rank[0], scorer.spent, scorer.forwards,
                  scorer.backwards, 0, exhaustive=True)
