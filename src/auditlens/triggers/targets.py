"""Target-conditioned search: a backdoor pushes answers to one target, so each target answer gets a search
of its own (a classifier's every label; an LM's answer tokens, at most ``MAX_TARGETS`` of them), and each
target's best trigger is the one that moves the most rows not already answering it to it. Comparing the
targets with each other and with the null (``calibration``) is what makes the backdoor's target stand out."""

from __future__ import annotations

import torch

from ..errors import CheckError
from .search import BACKWARD_COST, MARGIN_CAP, Scorer, Search, search

MAX_TARGETS = 16  # answers searched one by one; beyond it, the ones the model gives least often
EXHAUSTIVE_CHUNK = 256  # triggers scored per call when trying them all


def moved_to(clean: torch.Tensor, scores: torch.Tensor, target: int) -> torch.Tensor:
    """Per trigger ([B], for the scores of B triggers on n rows, [B * n, C]): the share of the rows whose clean
    answer is not ``target`` that now answer it (0 where every row already answers it)."""
    answered = scores.argmax(dim=1).view(-1, len(clean)) == target
    eligible = (clean != target).to(answered.device)
    return (answered & eligible).float().sum(dim=1) / max(int(eligible.sum()), 1)


def answer_targets(scorer: Scorer, limit: int = MAX_TARGETS) -> list[int]:
    """The answers searched for: every one, or beyond ``limit`` the ones the model gives least often on the
    search rows (a payload is often an answer the rule rarely gives)."""
    given = torch.bincount(scorer.clean, minlength=scorer.answers)
    return torch.argsort(given, stable=True).tolist()[:limit]


def toward(scorer: Scorer, triggers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per trigger: the mean capped margin towards ``scorer.target`` and the share of rows moved to it."""
    scores = scorer.scores(triggers)
    margins = scorer.margins(scores).clamp(max=MARGIN_CAP).view(len(triggers), -1).mean(dim=1)
    return margins, moved_to(scorer.clean, scores, scorer.target)


def search_each_target(scorer: Scorer, allowed: torch.Tensor, length: int, targets: list[int], *, budget: int,
                       seed: int, restarts: int, steps: int, candidates: int, top_k: int) -> dict[int, Search]:
    """The best trigger towards each of ``targets``: all triggers tried where |allowed| ** length fits the
    budget (once: the scores serve every target), else a gradient-guided search per target on an equal
    share of what is left of the budget. Triggers scored for one target cost nothing for the next."""
    if len(allowed) ** length <= budget - scorer.spent:
        return _every_trigger(scorer, allowed, length, targets)
    found = {}
    for done, target in enumerate(targets):
        share = (budget - scorer.spent) // (len(targets) - done)
        if share < 2 + BACKWARD_COST:
            raise CheckError(f"search_trigger: a budget of {budget} forward-pass equivalents leaves {share} for each "
                             f"of {len(targets)} target answers; each needs at least {2 + BACKWARD_COST} (a "
                             f"gradient and a candidate): give a budget of {budget + len(targets) * 2 * BACKWARD_COST}"
                             " or more, or fewer answers")
        scorer.target = target
        found[target] = search(scorer, allowed, length, budget=scorer.spent + share, seed=seed + done,
                               restarts=max(1, restarts // len(targets)), steps=steps, candidates=candidates,
                               top_k=top_k, targets=[target], measure=lambda t: toward(scorer, t))
    return found


def _every_trigger(scorer: Scorer, allowed: torch.Tensor, length: int, targets: list[int]) -> dict[int, Search]:
    grids = torch.meshgrid(*([allowed] * length), indexing="ij")
    every = torch.stack([g.reshape(-1) for g in grids], dim=1)  # [|allowed| ** length, length]
    best: dict[int, tuple[tuple[float, float], torch.Tensor]] = {}
    for start in range(0, len(every), EXHAUSTIVE_CHUNK):
        triggers = every[start:start + EXHAUSTIVE_CHUNK]
        for target in targets:
            scorer.target = target
            margins, rates = toward(scorer, triggers)
            top = int(torch.argmax(rates * 1e3 + margins.clamp(-1, 1)))  # the rate first, then the margin
            rank = (float(rates[top]), float(margins[top]))
            if target not in best or rank > best[target][0]:
                best[target] = (rank, triggers[top])
    return {target: Search(tuple(int(t) for t in trigger), rank[1], rank[0], scorer.spent, scorer.forwards,
                           scorer.backwards, 0, exhaustive=True) for target, (rank, trigger) in best.items()}
