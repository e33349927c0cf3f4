"""Train a TopK sparse autoencoder on activations (Gao et al. 2024, "Scaling and evaluating sparse
autoencoders"): decoder rows kept at unit norm, encoder initialised as the decoder's transpose, the
decoder bias started at the data's geometric median, Adam, and the AuxK loss that lets dead latents
learn the residual. Training happens on centred, rescaled data; the result is folded back so the
returned dictionary reads raw activations.

Deterministic under ``seed`` on one machine: initialisation and batch order come from a seeded
``torch.Generator``. The thread count (``torch.set_num_threads``) is the caller's business: CPU sums may
round differently with a different count, and CUDA backward kernels (scatter-adds) are not
deterministic. A step is many small operations, so a small dictionary trains fastest on one thread;
with more threads than idle cores each operation waits for a descheduled thread, which we measured
making training several times slower on a busy 2-core machine."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .dictionary import Dictionary
from .errors import DictionaryError
from .train_data import checked_activations, geometric_median, resolve_device

AUXK_ALPHA = 1 / 32  # weight of the AuxK loss (Gao et al.)
_DEAD_AFTER_ROWS = 8192  # a latent silent for this many training rows (or one epoch, if fewer) counts as dead
_MIN_STEPS, _MAX_STEPS, _EPOCHS = 1000, 3000, 40


@dataclass(frozen=True)
class TrainingStats:
    """How a trained dictionary does on its *training* activations (no held-out split)."""

    explained_variance: float  # 1 - sum((x - x_hat)^2) / sum((x - mean x)^2)
    l0: float  # mean number of nonzero latents per row (at most k)
    dead_fraction: float  # fraction of latents never active on the activations
    steps: int
    seconds: float


def default_steps(rows: int, batch_size: int) -> int:
    """About 40 passes over the data, clamped to 1000..3000 steps."""
    return min(_MAX_STEPS, max(_MIN_STEPS, math.ceil(_EPOCHS * rows / batch_size)))


def default_lr(width: int) -> float:
    """Adam's learning rate: 1e-2 up to 128 latents, then scaled by 1/sqrt(width / 128) (Gao et al.'s rule),
    for the unit-RMS data training sees; 5e-3 at 512 latents."""
    return 1e-2 / math.sqrt(max(width, 128) / 128)


def train_topk(activations: torch.Tensor, *, width: int, k: int, seed: int = 0, steps: int | None = None,
               batch_size: int = 512, lr: float | None = None, device: torch.device | str | None = None,
               progress: Callable[[int, int, float], None] | None = None,
               hook_name: str | None = None) -> tuple[Dictionary, TrainingStats]:
    """A TopK SAE with ``width`` latents, ``k`` active per row, trained on ``activations`` [n, d_in].

    Runs on ``device`` (CUDA when asked for and available, else the CPU) and returns a CPU float32
    ``Dictionary`` (architecture "topk", apply_b_dec_to_input True, format "auditlens") with its
    ``TrainingStats``. ``steps`` defaults to ``default_steps``, ``lr`` to ``default_lr``;
    ``progress(step, total, loss)`` is called about 200 times and after the last step."""
    data = checked_activations(activations, width=width, k=k, steps=steps, batch_size=batch_size, lr=lr)
    started = time.perf_counter()
    rows, d_in = data.shape
    run_on = resolve_device(device)
    generator = torch.Generator().manual_seed(seed)
    batch = min(batch_size, rows)
    total = steps or default_steps(rows, batch)
    center = geometric_median(data, generator)
    scale = float((data - center).pow(2).sum(-1).mean().div(d_in).sqrt())
    if scale == 0.0:
        raise DictionaryError(f"all {rows} activation rows are identical: there is nothing for a dictionary to learn")
    x_all = ((data - center) / scale).to(run_on)
    model = _TopK(d_in, width, k, generator, run_on)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr or default_lr(width))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, total))
    silent_rows = torch.zeros(width, dtype=torch.long, device=run_on)
    dead_after = min(rows, _DEAD_AFTER_ROWS)
    order, cursor, every = torch.randperm(rows, generator=generator), 0, max(1, total // 200)
    for step in range(1, total + 1):
        if cursor + batch > rows:
            order, cursor = torch.randperm(rows, generator=generator), 0
        x = x_all[order[cursor:cursor + batch].to(run_on)]
        cursor += batch
        loss, fired = model.loss(x, dead=silent_rows >= dead_after)
        silent_rows = torch.where(fired, 0, silent_rows + batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        model.step_decoder_constraint(optimizer)
        schedule.step()
        if progress is not None and (step % every == 0 or step == total):
            progress(step, total, float(loss.detach()))
    dictionary = model.export(center, scale, hook_name)
    return dictionary, _stats(dictionary, data, run_on, total, time.perf_counter() - started)


def _lr_factor(step: int, total: int) -> float:
    """Linear warm-up over the first 5% of steps, flat, then linear decay to 0 over the last 20%."""
    warm, decay_from = max(1, total // 20), int(total * 0.8)
    if step < warm:
        return (step + 1) / warm
    if step >= decay_from:
        return max(0.0, (total - step) / max(1, total - decay_from))
    return 1.0


class _TopK(torch.nn.Module):
    """The SAE being trained, in normalised units (data centred by its median and scaled to unit RMS).
    Gradients flow through the k kept latents only, gathered rather than scattered into dense
    [batch, width] tensors (as sparsify does): the same loss, a fraction of the work."""

    def __init__(self, d_in: int, width: int, k: int, generator: torch.Generator, device: torch.device):
        super().__init__()
        decoder = torch.nn.functional.normalize(torch.randn(width, d_in, generator=generator), dim=-1)
        self.W_dec = torch.nn.Parameter(decoder.to(device))
        self.encoder = torch.nn.Parameter(decoder.clone().to(device))  # W_enc.T, started as the decoder
        self.b_enc = torch.nn.Parameter(torch.zeros(width, device=device))
        self.b_dec = torch.nn.Parameter(torch.zeros(d_in, device=device))
        self.k, self.k_aux = k, max(1, d_in // 2)

    def loss(self, x: torch.Tensor, dead: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised MSE (+ AuxK over dead latents) and which latents fired in the batch."""
        centred = x - self.b_dec
        with torch.no_grad():  # which latents are kept; their values are recomputed with gradients below
            pre = centred @ self.encoder.T + self.b_enc
        indices = torch.topk(pre, self.k, dim=-1, sorted=False).indices
        values = torch.relu(self._pre_at(centred, indices))
        residual = x - (self._decode(values, indices) + self.b_dec)
        variance = x.var(dim=0, unbiased=False).sum().clamp_min(1e-8)
        loss = residual.pow(2).sum(-1).mean() / variance
        dead_count = int(dead.sum())
        if dead_count:  # dead latents learn to predict what the live ones miss (Gao et al., appendix A.2)
            k_aux = min(self.k_aux, dead_count)
            aux_indices = torch.topk(torch.where(dead, pre, -torch.inf), k_aux, dim=-1, sorted=False).indices
            aux_values = torch.relu(self._pre_at(centred, aux_indices))
            aux = (self._decode(aux_values, aux_indices) - residual.detach()).pow(2).sum(-1).mean() / variance
            loss = loss + AUXK_ALPHA * min(dead_count / self.k_aux, 1.0) * aux
        fired = torch.zeros(len(self.b_enc), dtype=torch.bool, device=x.device)
        fired[indices[values.detach() > 0]] = True
        return loss, fired

    def _pre_at(self, centred: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Pre-activations [batch, k] of the latents ``indices`` [batch, k]."""
        return torch.einsum("bd,bkd->bk", centred, self.encoder[indices]) + self.b_enc[indices]

    def _decode(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """``values`` [batch, k] at latents ``indices`` times the decoder, without its bias."""
        return torch.nn.functional.embedding_bag(indices, self.W_dec, per_sample_weights=values, mode="sum")

    @torch.no_grad()
    def step_decoder_constraint(self, optimizer: torch.optim.Optimizer) -> None:
        """Adam step with unit-norm decoder rows: drop the gradient along each row, step, renormalise."""
        grad = self.W_dec.grad
        if grad is not None:
            grad -= (grad * self.W_dec).sum(-1, keepdim=True) * self.W_dec
        torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)
        optimizer.step()
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def export(self, center: torch.Tensor, scale: float, hook_name: str | None) -> Dictionary:
        """The CPU dictionary for raw activations: latents scale by ``scale``, biases fold the centring."""
        return Dictionary(
            architecture="topk", W_enc=self.encoder.detach().cpu().T.contiguous(),
            b_enc=self.b_enc.detach().cpu() * scale, W_dec=self.W_dec.detach().cpu().clone(),
            b_dec=center + self.b_dec.detach().cpu() * scale, k=self.k, apply_b_dec_to_input=True,
            hook_name=hook_name, format="auditlens")


@torch.no_grad()
def _stats(dictionary: Dictionary, data: torch.Tensor, device: torch.device, steps: int,
           seconds: float) -> TrainingStats:
    on_device = dictionary.to(device)
    squared_error, active, ever = 0.0, 0.0, torch.zeros(dictionary.d_sae, dtype=torch.bool, device=device)
    for chunk in data.split(8192):
        x = chunk.to(device)
        latents = on_device.encode(x)
        squared_error += float((on_device.decode(latents) - x).pow(2).sum())
        active += float((latents > 0).sum())
        ever |= (latents > 0).any(dim=0)
    total_variance = float((data - data.mean(dim=0)).pow(2).sum())
    return TrainingStats(explained_variance=1.0 - squared_error / total_variance, l0=active / len(data),
                         dead_fraction=1.0 - float(ever.float().mean()), steps=steps, seconds=seconds)
