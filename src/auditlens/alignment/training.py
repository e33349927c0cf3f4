"""Interchange training: learn the ``dim`` orthonormal directions B ([dim, d]) along which patching a base
from its source makes the model give the expected counterfactual label. Only B trains (Adam, batched);
the model's weights stay frozen and in eval mode. B is parametrised as the Q of a QR decomposition of
a free matrix, so it is orthonormal at every step and any [dim, d] matrix of full rank is reachable."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..accounting import count_training_pass
from ..errors import CheckError
from ..inputs import Inputs
from ..sites.hooks import Batch, current_batch, hooked
from ..sites.resolve import Site
from .interchange import interchange

STEP_SIZE = 0.1  # Adam's default learning rate is this over sqrt(d): each step turns a direction by ~0.1


@dataclass(frozen=True)
class Budget:
    """When training stops: ``max_steps`` optimizer steps, ``max_seconds`` of wall time, or a plateau (the
    epoch's mean training loss failed to fall by ``tolerance`` (relative, at least 1e-4 absolute) for
    ``patience`` epochs in a row)."""

    max_steps: int = 1000
    max_seconds: float = 120.0
    patience: int = 10
    tolerance: float = 1e-3
    batch_size: int = 64
    learning_rate: float | None = None  # None: STEP_SIZE / sqrt(d)


@dataclass(frozen=True)
class Fit:
    """The learned directions ([dim, d], orthonormal rows, on the CPU) and how training went."""

    directions: torch.Tensor
    steps: int
    seconds: float
    stopped: str  # "plateau", "max_steps", "max_seconds", or "unread" (the answer does not depend on the site)
    final_loss: float


class Rotation(nn.Module):
    """``dim`` orthonormal directions in R^d: the rows of Q from the QR decomposition of a free [d, dim] matrix."""

    def __init__(self, d: int, dim: int, generator: torch.Generator):
        super().__init__()
        start = torch.linalg.qr(torch.randn(d, dim, generator=generator)).Q
        self.free = nn.Parameter(start)

    def forward(self) -> torch.Tensor:
        return torch.linalg.qr(self.free).Q.T


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Gradients on (inference mode off) with the model's weights frozen and the model in eval mode; the
    weights' ``requires_grad`` and the model's mode are restored on exit, whatever raised."""
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    was_training = model.training
    try:
        for parameter, _ in flags:
            parameter.requires_grad_(False)
        model.eval()
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
        model.train(was_training)


def scores(subject, inputs: Inputs, rows: torch.Tensor, readout) -> torch.Tensor:
    """The readout's scores ([b, C], float32) for ``rows`` of ``inputs``, with gradients, under the hooks
    installed around the call; the hooks see ``rows`` as the batch's indices."""
    width = max(int(inputs.lengths[rows].max()), 1)
    mask = inputs.attention_mask[rows, :width].to(subject.device)
    batch = Batch(rows, mask)
    token = current_batch.set(batch)
    try:
        output = subject.model(input_ids=inputs.input_ids[rows, :width].to(subject.device), attention_mask=mask)
    finally:
        current_batch.reset(token)
    count_training_pass(subject, len(rows), "das: a pass under directions being trained, or along a patch")
    return readout.reduce(output, batch).float()


def train_directions(subject, site: Site, base: Inputs, source: torch.Tensor, labels: torch.Tensor, readout,
                     position, dim: int, seed: int, budget: Budget) -> Fit:
    """Fit ``dim`` directions at ``site`` so that interchanging base ``i`` with ``source[i]`` (captured
    activations on the subject's device) makes the readout predict ``labels[i]`` (cross-entropy)."""
    d = source.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    rotation = Rotation(d, dim, generator).to(subject.device)
    rate = budget.learning_rate or STEP_SIZE / math.sqrt(d)
    optimizer = torch.optim.Adam(rotation.parameters(), lr=rate)
    labels = labels.to(subject.device)
    current: dict[str, torch.Tensor] = {}

    def edit(activation, batch):
        return interchange(activation, batch.attention_mask, source[batch.indices.to(source.device)],
                           current["basis"], position)

    started, steps, best, stale = time.perf_counter(), 0, math.inf, 0
    stopped, loss_value = "max_steps", math.nan
    with frozen(subject.model), hooked(subject.model, [(site, edit)]):
        while stopped == "max_steps" and steps < budget.max_steps:
            order = torch.randperm(len(base), generator=generator)
            total, count = torch.zeros((), device=subject.device), 0
            for rows in order.split(budget.batch_size):
                current["basis"] = rotation()
                loss = nn.functional.cross_entropy(scores(subject, base, rows, readout), labels[rows.to(labels.device)])
                if not loss.requires_grad:  # the answer does not depend on the site: nothing can be learned
                    stopped = "unread"
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
                total, count = total + loss.detach() * len(rows), count + len(rows)
                if steps >= budget.max_steps:
                    break
                if time.perf_counter() - started > budget.max_seconds:
                    stopped = "max_seconds"
                    break
            if stopped == "unread":
                loss_value = float(loss)
                break
            loss_value = float(total / count)  # one sync per epoch
            if not math.isfinite(loss_value):
                raise CheckError(f"das at {site.name!r}: the training loss became {loss_value} after {steps} steps; "
                                 f"the model's scores are not finite under the interchange (try learning_rate= "
                                 f"below {rate:.3g}, or another site)")
            if best == math.inf or loss_value < best - max(budget.tolerance * best, 1e-4):
                best, stale = loss_value, 0
            else:
                stale += 1
                if stale >= budget.patience:
                    stopped = "plateau"
    with torch.no_grad():
        directions = rotation().detach().cpu()
    return Fit(directions, steps, time.perf_counter() - started, stopped, loss_value)
