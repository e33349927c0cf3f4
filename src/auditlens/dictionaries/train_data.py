"""What training needs before it starts: activations checked (with errors that say what to do), the
data's geometric median, and the device to run on."""

from __future__ import annotations

import torch

from .errors import DictionaryError


def checked_activations(activations: torch.Tensor, *, width: int, k: int, steps: int | None, batch_size: int,
                        lr: float | None) -> torch.Tensor:
    """``activations`` as a CPU float32 [n, d_in] tensor once it and the settings can train a TopK SAE."""
    if not isinstance(activations, torch.Tensor):
        try:
            activations = torch.as_tensor(activations)
        except (TypeError, ValueError, RuntimeError):
            raise DictionaryError(f"activations must be a tensor [n, d_in], got {type(activations).__name__}") from None
    shape = tuple(activations.shape)
    if activations.ndim == 1:
        raise DictionaryError(f"activations has shape {shape}, one dimension; give [n, d_in], one row per example "
                              "(x[None] for a single row)")
    if activations.ndim != 2:
        raise DictionaryError(f"activations has shape {shape}; give [n, d_in]: flatten the leading dimensions with "
                              "activations.reshape(-1, activations.shape[-1])")
    if activations.numel() == 0:
        raise DictionaryError(f"activations has shape {shape}: it is empty; capture some activations first")
    if activations.is_complex() or activations.dtype == torch.bool:
        raise DictionaryError(f"activations have dtype {activations.dtype}; give real numbers (float)")
    data = activations.detach().to("cpu", torch.float32)
    bad_rows = int((~torch.isfinite(data)).any(dim=-1).sum())
    if bad_rows:
        raise DictionaryError(f"{bad_rows} of {len(data)} activation rows hold NaN or inf; drop them first: "
                              "activations[torch.isfinite(activations).all(-1)]")
    _check_settings(width=width, k=k, steps=steps, batch_size=batch_size, lr=lr)
    return data


def _check_settings(*, width: int, k: int, steps: int | None, batch_size: int, lr: float | None) -> None:
    def whole(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not whole(width) or width < 1:
        raise DictionaryError(f"width={width!r}: the number of latents must be an integer >= 1 (try 8 * d_in)")
    if not whole(k) or not 1 <= k < width:
        raise DictionaryError(f"k={k!r} with width={width}: k, the latents active per row, must be an integer in "
                              f"1..{width - 1} (k < width, or nothing is sparse)")
    if steps is not None and (not whole(steps) or steps < 1):
        raise DictionaryError(f"steps={steps!r}: give an integer >= 1, or None for the default")
    if not whole(batch_size) or batch_size < 1:
        raise DictionaryError(f"batch_size={batch_size!r}: give an integer >= 1")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0 and lr == lr):
        raise DictionaryError(f"lr={lr!r}: give a learning rate > 0, or None for the default")


def geometric_median(data: torch.Tensor, generator: torch.Generator, *, sample: int = 4096,
                     iterations: int = 32) -> torch.Tensor:
    """The point minimising the summed distance to up to ``sample`` rows (Weiszfeld's iteration from the
    mean); robust to outlying rows, where the mean is not."""
    if len(data) > sample:
        data = data[torch.randperm(len(data), generator=generator)[:sample]]
    median = data.mean(dim=0)
    for _ in range(iterations):
        weights = 1.0 / (data - median).norm(dim=-1).clamp_min(1e-8)
        median = (weights[:, None] * data).sum(dim=0) / weights.sum()
    return median


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as asked, except that CUDA falls back to the CPU where it is not available."""
    if device is None:
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise DictionaryError(f"device={device!r} is not a device; give 'cpu', 'cuda' or 'cuda:N'") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return chosen
