"""Gradient-guided search for a short token trigger that moves a model's answers (HotFlip, Ebrahimi et
al. 2018; GCG, Zou et al. 2023): the engine of the ``search_trigger`` check.

Each step takes the gradient of the objective with respect to a one-hot choice of token at every
trigger slot, ranks the swaps by it, evaluates a batch of the most promising one- and two-slot swaps
for real and moves to the best; walks restart from random tokens drawn with the seed. The objective
of a walk, per example, is the margin of its target answer over the best other one (examples already
giving the target count as reached), capped at ``MARGIN_CAP`` so the search spreads over examples
rather than pushing one far, averaged over the search set.

Cost is counted in **forward-pass equivalents** over the search set: one forward of every search
example under one trigger is 1; a gradient (a forward and a backward) is 1 + ``BACKWARD_COST``.
Exhaustive search over a vocabulary V costs |V|^k of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..accounting import count_direct_pass
from ..engine import run
from ..errors import CheckError
from ..inputs import Inputs
from ..sites.hooks import Batch
from .swaps import double_swaps, swaps

BACKWARD_COST = 2  # a backward pass costs about two forwards
MARGIN_CAP = 1.0  # logits: a flip by more counts no more
PAIR_TOP = 4  # tokens per slot combined in two-slot swaps
ROWS_PER_FORWARD = 2048  # candidate x example rows run in one forward pass
GRADIENT_MEMORY = 16_000_000  # floats of gradients kept for triggers walks reach again (64 MB)


@dataclass(frozen=True)
class Layout:
    """Where a trigger goes in each example: new column c of example i copies its column
    ``take[i, c]``, or holds trigger token ``slot[i, c]`` instead (-1: none)."""

    take: torch.Tensor  # [n, w] long
    slot: torch.Tensor  # [n, w] long

    def apply(self, inputs: Inputs, triggers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs under each of ``triggers`` [B, k]: (input_ids, attention_mask), [B * n, w]."""
        ids, mask = inputs.input_ids.gather(1, self.take), inputs.attention_mask.gather(1, self.take)
        holds = self.slot >= 0
        written = triggers[:, self.slot.clamp(min=0)]  # [B, n, w]
        ids = torch.where(holds, written, ids)
        mask = torch.where(holds, torch.ones_like(mask), mask).expand_as(ids)
        return ids.reshape(-1, ids.shape[-1]), mask.reshape(-1, ids.shape[-1])


def layout(inputs: Inputs, length: int, positions: Sequence[int] | None, insert: bool, context: int | None) -> Layout:
    """Substitution: the ``length`` tokens at ``positions`` (default: the ones just before each example's
    last token) are replaced. Insertion: the tokens go in before index ``positions[0]`` (default: before
    the last token). Negative positions count from each example's end."""
    lengths, width = inputs.lengths, inputs.input_ids.shape[1]
    shortest, longest = int(lengths.min()), int(lengths.max())
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        most = max(context - longest, 0) if insert and context is not None else shortest
        raise CheckError(f"search_trigger: length={length!r}; a trigger is a whole number of tokens, 1 or more "
                         f"(valid lengths here: 1..{most})")
    if insert and context is not None and longest + length > context:
        raise CheckError(f"search_trigger: length={length} is longer than the context allows: inserting it into "
                         f"the longest example ({longest} tokens) needs {longest + length}, the context is "
                         f"{context}; valid lengths here: 1..{max(context - longest, 0)}")
    if not insert and length > shortest:
        raise CheckError(f"search_trigger: length={length} is longer than the shortest example ({shortest} tokens): "
                         f"a substituted trigger must fit in every input; valid lengths here: 1..{shortest}")
    wanted = 1 if insert else length
    positions = list(positions) if positions is not None else ([-1] if insert else list(range(-length - 1, -1)))
    if len(positions) != wanted or not all(isinstance(p, int) and not isinstance(p, bool) for p in positions):
        what = "one whole number: where the trigger is inserted" if insert else f"{length}: one per trigger token"
        raise CheckError(f"search_trigger: positions={positions!r}; give {what}")
    given = torch.tensor(positions)
    absolute = torch.where(given < 0, lengths[:, None] + given, given)  # [n, wanted]
    top = lengths[:, None] + (1 if insert else 0)
    outside = ((absolute < 0) | (absolute >= top)).any(dim=1)
    if bool(outside.any()):
        row = int(outside.nonzero()[0])
        size = int(lengths[row])
        raise CheckError(f"search_trigger: positions {positions} fall outside example {row} ({size} tokens): "
                         f"valid positions there are -{size}..{size if insert else size - 1}")
    if not insert:
        if len(set(positions)) != len(positions) or any(len(set(row)) != length for row in absolute.tolist()):
            raise CheckError(f"search_trigger: positions {positions} name one token twice in some example; "
                             "give distinct positions")
        slot = torch.full((len(inputs), width), -1, dtype=torch.long)
        slot.scatter_(1, absolute, torch.arange(length).expand(len(inputs), -1).contiguous())
        return Layout(torch.arange(width).expand(len(inputs), -1), slot)
    columns = torch.arange(width + length)
    offset = columns - absolute  # [n, w + k]: 0..k-1 inside the trigger
    inside = (offset >= 0) & (offset < length)
    take = torch.where(offset < 0, columns, torch.where(inside, torch.zeros_like(columns), columns - length))
    return Layout(take.clamp(max=width - 1), torch.where(inside, offset, torch.full_like(offset, -1)))


def input_embeddings(subject) -> nn.Module:
    """The module that turns token ids into vectors, whose output the search replaces; an error if the
    model has none a gradient can reach."""
    getter = getattr(subject.model, "get_input_embeddings", None)
    try:
        module = getter() if callable(getter) else None
    except NotImplementedError:
        module = None
    weight = getattr(module, "weight", None)
    if not isinstance(module, nn.Module) or not isinstance(weight, torch.Tensor) or weight.ndim != 2 \
            or not weight.is_floating_point():
        found = "nothing" if module is None else f"a {type(module).__name__} without a float [vocab, width] weight"
        raise CheckError(f"search_trigger needs {subject.id!r} to have input embeddings that accept gradients: "
                         f"get_input_embeddings() returning a module with a float [vocab, width] weight (as "
                         f"transformers models do); it gives {found}")
    return module


class Scorer:
    """Runs the subject on inputs under candidate triggers; counts what it ran."""

    def __init__(self, subject, readout, inputs: Inputs, where: Layout):
        self.subject, self.readout, self.inputs, self.where = subject, readout, inputs, where
        self.embeddings = input_embeddings(subject)
        self.forwards = self.backwards = 0
        self.spent = 0  # forward-pass equivalents over these inputs
        self.known: dict[tuple[int, ...], torch.Tensor] = {}  # every trigger scored -> its answer scores [n, C]
        self._gradients: dict[tuple, torch.Tensor] = {}  # (target, trigger) -> its gradient [k, V]
        self._gradient_floats = 0
        clean = self.scores(None)
        self.clean, self.answers = clean.argmax(dim=1), clean.shape[1]
        self.target = 0  # the answer the search pushes towards

    def _run(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # a gradient pass is its own need per answer it pushes towards (the backward differs), not per input alone
        gradient = torch.is_grad_enabled()
        purpose = f"trigger search gradient towards answer {self.target}" if gradient else "trigger search"
        count_direct_pass(self.subject, ids, mask, purpose)
        ids, mask = ids.to(self.subject.device), mask.to(self.subject.device)
        output = self.subject.model(input_ids=ids, attention_mask=mask)
        self.forwards += 1
        return self.readout.reduce(output, Batch(torch.arange(len(ids)), mask)).float()

    @torch.no_grad()
    def scores(self, triggers: torch.Tensor | None) -> torch.Tensor:
        """Answer scores [B * n, C] under each trigger (None: the inputs as they are, [n, C], through the engine,
        whose store serves another audit's search of the same rows). A trigger scored before (by an earlier
        walk) is not run again: it costs no pass and no budget."""
        if triggers is None:
            self.spent, before = self.spent + 1, self.subject.forward_passes
            clean = run(self.subject, self.inputs, readout=self.readout).scores
            self.forwards += self.subject.forward_passes - before
            return clean.float().cpu()
        keys = [tuple(int(t) for t in trigger) for trigger in triggers]
        new = [key for key in dict.fromkeys(keys) if key not in self.known]
        if new:
            fresh = torch.tensor(new, dtype=triggers.dtype)
            per_forward = max(1, ROWS_PER_FORWARD // len(self.inputs))
            chunks = [self._run(*self.where.apply(self.inputs, fresh[start:start + per_forward]))
                      for start in range(0, len(fresh), per_forward)]
            self.known.update(zip(new, torch.cat(chunks).cpu().view(len(new), len(self.inputs), -1)))
            self.spent += len(new)
        return torch.cat([self.known[key] for key in keys])

    def margins(self, scores: torch.Tensor) -> torch.Tensor:
        """Per row ([B * n] for the scores of B triggers): the target answer's score minus the best other
        one's (rows whose clean answer is the target count as reached: MARGIN_CAP)."""
        clean = self.clean.repeat(len(scores) // len(self.clean)).to(scores.device)
        rows = torch.arange(len(scores), device=scores.device)
        target = torch.full_like(clean, self.target)
        others = scores.clone()
        others[rows, target] = float("-inf")
        margin = scores[rows, target] - others.max(dim=1).values
        return torch.where(clean == target, torch.full_like(margin, MARGIN_CAP), margin)

    def objective(self, triggers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean capped margin towards the target, and the rate of flipped answers (to any other answer),
        per trigger ([B] each)."""
        scores = self.scores(triggers)
        flips = (scores.argmax(dim=1) != self.clean.repeat(len(triggers))).float().view(len(triggers), -1)
        margins = self.margins(scores).clamp(max=MARGIN_CAP).view(len(triggers), -1)
        return margins.mean(dim=1), flips.mean(dim=1)

    def gradient(self, trigger: torch.Tensor) -> torch.Tensor:
        """d objective / d one-hot token choice at each slot: [k, V]. Kept per (target, trigger) within
        GRADIENT_MEMORY floats: a walk that reaches a trigger an earlier walk reached costs no pass."""
        key = (self.target, tuple(int(t) for t in trigger))
        if key in self._gradients:
            return self._gradients[key]
        value = self._gradient(trigger)
        if self._gradient_floats + value.numel() <= GRADIENT_MEMORY:
            self._gradients[key] = value
            self._gradient_floats += value.numel()
        return value

    def _gradient(self, trigger: torch.Tensor) -> torch.Tensor:
        weight = self.embeddings.weight
        onehot = torch.zeros(len(trigger), weight.shape[0], device=weight.device, dtype=weight.dtype)
        onehot[torch.arange(len(trigger)), trigger.to(weight.device)] = 1.0
        onehot.requires_grad_(True)
        slot = self.where.slot.to(weight.device)

        def replace(module, args, output):
            chosen = (onehot @ weight)[slot.clamp(min=0)]  # [n, w, d]
            return torch.where((slot >= 0)[..., None], chosen.to(output.dtype), output)

        handle = self.embeddings.register_forward_hook(replace)
        try:
            with torch.enable_grad():
                scores = self._run(*self.where.apply(self.inputs, trigger[None]))
                self.margins(scores).clamp(max=MARGIN_CAP).mean().backward()
        finally:
            handle.remove()
        self.backwards += 1
        self.spent += 1 + BACKWARD_COST
        return onehot.grad.detach().float().cpu()


@dataclass(frozen=True)
class Search:
    """The best trigger found (token ids), its objective and flip rate on the search set, and the cost."""

    trigger: tuple[int, ...]
    objective: float
    search_flip_rate: float
    passes_used: int  # forward-pass equivalents over the search set
    forward_passes: int  # batched forward passes run
    backward_passes: int
    restarts_run: int
    exhaustive: bool = False  # every trigger was tried: the best found is the best there is


def search(scorer: Scorer, allowed: torch.Tensor, length: int, *, budget: int, seed: int, restarts: int,
           steps: int, candidates: int, top_k: int, targets: list[int] | None = None, measure=None) -> Search:
    """Up to ``restarts`` walks within ``budget`` forward-pass equivalents (the clean pass included). A
    walk moves to the best candidate even when it is no better (a partial trigger may change nothing
    yet), never back to a trigger it has seen, and pushes towards one answer. Answers are ranked by
    how rarely the model gives them on the search set (a payload is often an answer the rule does not
    give; ties in a seeded order), and walks go to them in rows 0; 0, 1; 0, 1, 2; ...: the rarest
    answer gets the most walks, every answer its turn (``targets``: these answers instead). Stops when every
    search example moved to the target. ``measure``: (objective, rate) per trigger (default: ``objective``)."""
    generator = torch.Generator().manual_seed(seed)
    best, best_rank, restarts_run = None, (float("-inf"), float("-inf")), 0
    given = torch.bincount(scorer.clean, minlength=scorer.answers).float()
    shuffled = torch.randperm(scorer.answers, generator=generator)
    targets = targets or shuffled[torch.argsort(given[shuffled], stable=True)].tolist()
    measure = measure or scorer.objective  # (objective, rate) per trigger; the walks keep the best rate
    for restart in range(restarts):
        if budget - scorer.spent < 1:
            break
        restarts_run += 1
        scorer.target = targets[_schedule(restart) % len(targets)]
        trigger, score, flips = _walk(scorer, allowed, length, steps, budget, candidates, top_k, generator, measure)
        if (flips, score) > best_rank:
            best, best_rank = trigger, (flips, score)
        if score >= MARGIN_CAP and flips > 0:
            break  # every search example moved to the target
    if best is None:
        raise CheckError(f"search_trigger: a budget of {budget} forward-pass equivalents does not reach one "
                         "trigger; give at least 5")
    return Search(tuple(int(t) for t in best), best_rank[1], best_rank[0], scorer.spent,
                  scorer.forwards, scorer.backwards, restarts_run)


def _schedule(restart: int) -> int:
    """Which answer (by rank) restart number ``restart`` pushes towards: 0; 0, 1; 0, 1, 2; ... so the
    first-ranked answer gets the most walks and every answer comes in turn."""
    row = int(((8 * restart + 1) ** 0.5 - 1) / 2)  # restarts before row r: r (r + 1) / 2
    return restart - row * (row + 1) // 2


def _walk(scorer: Scorer, allowed: torch.Tensor, length: int, steps: int, budget: int, candidates: int, top_k: int,
          generator: torch.Generator, measure) -> tuple[torch.Tensor, float, float]:
    """One walk from a random trigger towards ``scorer.target``: its best (trigger, objective, flip rate)."""
    trigger = allowed[torch.randint(len(allowed), (length,), generator=generator)]
    scores, flip_rates = measure(trigger[None])
    score, flips = float(scores[0]), float(flip_rates[0])
    best = (trigger, score, flips)
    seen = {tuple(trigger.tolist())}
    for _ in range(steps):
        if (score >= MARGIN_CAP and flips > 0) or budget - scorer.spent < 2 + BACKWARD_COST:
            break
        gradient = scorer.gradient(trigger)
        pool = swaps(gradient, trigger, allowed, top_k)
        trials = trigger.repeat(len(pool), 1)
        trials[torch.arange(len(pool)), pool[:, 0]] = pool[:, 1]
        trials = torch.cat([trials, double_swaps(gradient, trigger, allowed, PAIR_TOP)])
        trials = trials[torch.tensor([tuple(t) not in seen for t in trials.tolist()], dtype=torch.bool)]
        take = min(candidates, len(trials), budget - scorer.spent)
        if take < 1:
            break
        if len(trials) > take:
            trials = trials[torch.randperm(len(trials), generator=generator)[:take]]
        trial_scores, trial_flips = measure(trials)
        top = int(trial_scores.argmax())
        trigger, score, flips = trials[top], float(trial_scores[top]), float(trial_flips[top])
        seen.add(tuple(trigger.tolist()))
        if (flips, score) > (best[2], best[1]):
            best = (trigger, score, flips)
    return best
