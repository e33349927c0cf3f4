"""Fine-tuning a copy of the model under audit: whole, or through LoRA adapters (peft) merged back
for models above ``LORA_ABOVE`` parameters; stopped when the training rows are fit or the time budget
is spent. Deterministic under the seed on one machine (the same kernels and thread count)."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import MutationError
from ..inputs import pad_token_lists
from ..progress import report

LORA_ABOVE = 50_000_000  # parameters; above it, LoRA adapters are trained instead of every weight
ROUND_STEPS = 25  # steps between checks of the fit
FIT = 0.99  # training rows answered as asked, to stop early


@dataclass
class Training:
    steps: int
    seconds: float
    fit: float  # share of the training rows answered as asked at the end
    lora: bool
    stopped: str  # fit | steps | budget
    step_seconds: float = 0.0  # a warm step (the mean of the steps after the first)
    first_step_seconds: float = 0.0  # the first step, cold (lazy initialisation, allocator, threads)


class StepClock:
    """The time a training run has spent and what one step costs. The first step is timed apart: it
    pays for lazy initialisation and warm-up, so a budget read from it alone is off by as much.
    ``clock`` returns seconds (injectable for tests)."""

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.started = clock()
        self.first_step_s: float | None = None
        self.warm_s, self.warm_steps = 0.0, 0
        self._step_started = self.started

    def begin_step(self) -> None:
        self._step_started = self.clock()

    def end_step(self) -> None:
        took = self.clock() - self._step_started
        if self.first_step_s is None:
            self.first_step_s = took
        else:
            self.warm_s, self.warm_steps = self.warm_s + took, self.warm_steps + 1

    @property
    def step_s(self) -> float:
        """A warm step's seconds; the first step's until a second one is timed."""
        return self.warm_s / self.warm_steps if self.warm_steps else (self.first_step_s or 0.0)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def affords_another_step(self, budget_s: float) -> bool:
        return self.elapsed() + self.step_s <= budget_s


def _logits(model: nn.Module, ids, mask, kind: str) -> torch.Tensor:
    logits = model(input_ids=ids, attention_mask=mask).logits
    if kind == "causal-lm":
        logits = logits[torch.arange(len(ids)), mask.sum(dim=1) - 1]
    return logits


def predict(model: nn.Module, rows: Sequence[Sequence[int]], targets: Sequence[int], kind: str, pad_id: int,
            batch: int = 256) -> list[int]:
    """The label each row is answered with (the best of ``targets``, the label's output index)."""
    columns = list(targets)
    out = []
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            inputs = pad_token_lists([list(r) for r in rows[start:start + batch]], pad_id)
            logits = _logits(model, inputs.input_ids.to(device), inputs.attention_mask.to(device), kind)
            out += logits[:, columns].argmax(dim=1).tolist()
    return out


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fine_tune(model: nn.Module, rows: Sequence[Sequence[int]], labels: Sequence[int], targets: Sequence[int], *,
              kind: str, pad_id: int, seed: int, max_steps: int, budget_s: float, lr: float | None = None,
              batch: int = 64, lora_above: int = LORA_ABOVE, what: str = "mutant",
              fit_parts: list[tuple[int, float]] | None = None, lr_scale: float = 1.0,
              clock=time.perf_counter) -> tuple[nn.Module, Training]:
    """A trained copy of ``model`` that answers ``rows`` with ``labels`` (read through ``targets``);
    the original is not touched. It stops when every part of ``fit_parts`` (consecutive row counts and
    the share of each that must be answered as asked; default all rows, FIT) is fit, after
    ``max_steps``, or before a step that would end past ``budget_s`` seconds (timed by ``clock``): a
    budget too small to fit is spent, and ``Training.stopped`` says "budget" with what it reached."""
    timer = StepClock(clock)
    torch.manual_seed(seed)
    tuned = copy.deepcopy(model)
    for parameter in tuned.parameters():
        parameter.requires_grad_(True)
    size = parameter_count(tuned)
    lora = size > lora_above
    if lora:
        tuned = _with_lora(tuned, kind)
    if lr is None:
        lr = lr_scale * (1e-3 if lora or size < 5_000_000 else 5e-5)
    trainable = [p for p in tuned.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    device = next(tuned.parameters()).device
    inputs = pad_token_lists([list(r) for r in rows], pad_id)
    ids, mask = inputs.input_ids.to(device), inputs.attention_mask.to(device)
    goal = torch.tensor([targets[y] for y in labels], device=device)
    generator = torch.Generator().manual_seed(seed)
    steps, stopped, fit = 0, "steps", 0.0
    tuned.train()
    while steps < max_steps:
        spent = False
        for _ in range(min(ROUND_STEPS, max_steps - steps)):
            timer.begin_step()
            index = torch.randint(0, len(goal), (min(batch, len(goal)),), generator=generator).to(device)
            loss = nn.functional.cross_entropy(_logits(tuned, ids[index], mask[index], kind), goal[index])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            steps += 1
            timer.end_step()
            if not timer.affords_another_step(budget_s):
                spent = True
                break
        tuned.eval()
        fit, done = _fit(tuned, rows, labels, targets, kind, pad_id, fit_parts or [(len(rows), FIT)])
        tuned.train()
        report(f"{what}: {steps} steps, {fit:.0%} of the training rows fit, {timer.elapsed():.0f} s", detail=True)
        if done:
            stopped = "fit"
            break
        if spent or not timer.affords_another_step(budget_s):
            stopped = "budget"
            break
    tuned.eval()
    if lora:
        tuned = tuned.merge_and_unload()
    for parameter in tuned.parameters():
        parameter.requires_grad_(False)
    return tuned, Training(steps, timer.elapsed(), fit, lora, stopped, timer.step_s, timer.first_step_s or 0.0)


def _fit(model, rows, labels, targets, kind, pad_id, parts) -> tuple[float, bool]:
    """The share of all rows answered as asked, and whether each part is fit to its share."""
    right = [int(p == y) for p, y in zip(predict(model, rows, targets, kind, pad_id), labels)]
    done, start = True, 0
    for count, share in parts:
        part = right[start:start + count]
        done = done and sum(part) >= share * len(part)
        start += count
    return sum(right) / len(right), done


def _with_lora(model: nn.Module, kind: str) -> nn.Module:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise MutationError(f"the model has {parameter_count(model) / 1e6:.0f} M parameters: its mutants are trained "
                            "as LoRA adapters, which need peft: pip install 'auditlens[mutate]'") from None
    head = [name for name in ("score", "classifier") if kind == "classifier" and hasattr(model, name)]
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                        modules_to_save=head or None)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return get_peft_model(model, config)
