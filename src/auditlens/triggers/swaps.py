"""Candidate moves of a trigger search: the token swaps the gradient ranks best, one slot at a time and
two slots at once (so a walk is one step from two thirds of a three-word phrase whose parts do nothing)."""

from __future__ import annotations

import itertools

import torch


def double_swaps(gradient: torch.Tensor, trigger: torch.Tensor, allowed: torch.Tensor, top: int) -> torch.Tensor:
    """Triggers [m, k] with two slots changed at once, each to one of its ``top`` most promising tokens:
    a phrase whose parts do nothing alone is one step away from two-thirds of it, not from one third."""
    ranked = [allowed[torch.argsort(row[allowed], descending=True, stable=True)] for row in gradient]
    ranked = [r[r != trigger[slot]][:top] for slot, r in enumerate(ranked)]
    out = []
    for first, second in itertools.combinations(range(len(trigger)), 2):
        for a in ranked[first]:
            for b in ranked[second]:
                changed = trigger.clone()
                changed[first], changed[second] = a, b
                out.append(changed)
    return torch.stack(out) if out else trigger[None][:0]


def swaps(gradient: torch.Tensor, trigger: torch.Tensor, allowed: torch.Tensor, top_k: int) -> torch.Tensor:
    """(slot, token) pairs [m, 2]: at each slot, the ``top_k`` allowed tokens whose one-hot gradient
    promises the most, the token already there left out."""
    pairs = []
    for slot, row in enumerate(gradient):
        ranked = allowed[torch.argsort(row[allowed], descending=True, stable=True)]
        ranked = ranked[ranked != trigger[slot]][:top_k]
        pairs.append(torch.stack([torch.full_like(ranked, slot), ranked], dim=1))
    return torch.cat(pairs)
