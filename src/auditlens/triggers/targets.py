"""Target-conditioned search: a backdoor pushes answers to one target, so each target answer gets a search
of its own (a classifier's every label; an LM's answer tokens, at most ``MAX_TARGETS`` of them), and each
target's best trigger is the one that moves the most rows not already answering it to it. Comparing the
targets with each other and with the null (``calibration``) is what makes the backdoor's target stand out."""

from __future__ import annotations

import torch

from .exhaustive import score_every_trigger
from .search import MARGIN_CAP, Scorer, Search, search

MAX_TARGETS = 16  # answers searched one by one; beyond it, the ones the model gives least often


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
    """The best trigger towards each of ``targets`` (rarest answer first) among every trigger scored: all of
    them where |allowed| ** length fits the budget, else those the gradient-guided walks of ``search``
    reached, each walk pushing towards one target by its schedule (the rarest answer, often a payload, gets
    the most walks). A trigger a walk towards one target reached is scored for every target, at no cost."""
    exhaustive = len(allowed) ** length <= budget - scorer.spent
    if exhaustive:
        score_every_trigger(scorer, allowed, length)
        walks = 0
    else:
        walks = search(scorer, allowed, length, budget=budget, seed=seed, restarts=restarts, steps=steps,
                       candidates=candidates, top_k=top_k, targets=targets,
                       measure=lambda t: toward(scorer, t)).restarts_run
    tried = torch.tensor(list(scorer.known))
    scores = torch.cat([scorer.known[tuple(key)] for key in tried.tolist()])  # [K * n, C]
    found = {}
    for target in targets:
        scorer.target = target
        margins = scorer.margins(scores).clamp(-1, MARGIN_CAP).view(len(tried), -1).mean(dim=1)
        rates = moved_to(scorer.clean, scores, target)
        top = int(torch.argmax(rates * 1e3 + margins))  # the rate first, then the margin
        found[target] = Search(tuple(int(t) for t in tried[top]), float(margins[top]), float(rates[top]),
                               scorer.spent, scorer.forwards, scorer.backwards, walks, exhaustive=exhaustive)
    return found
