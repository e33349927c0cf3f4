"""Token positions: one vocabulary for reading activations and for editing them.

- ``"last"`` / ``"first"``: the last / first real token of each example (padding-aware);
- an int: an index into the real tokens, negative from the end;
- ``"mean"`` (reading only): the average over the real tokens;
- ``"max"`` (reading only): the largest value over the real tokens, per dimension (a latent's peak);
- ``"all"``: every position ([n, t, d] when reading; every real token when editing).

Reading an index beyond an example is an error naming the examples; an edit at an index is clipped
to each example's real tokens.
"""

from __future__ import annotations

import torch

from ..errors import CaptureError, CheckError

READ = ("last", "first", "mean", "max", "all")  # what capture can reduce to
EDIT = ("all", "last", "first")  # where an intervention can apply (and int indices)
REDUCED = ("last", "mean", "first", "max")  # one vector per example


class PositionError(CaptureError, CheckError):
    """A position is not one of the vocabulary (raised by reads and by edits alike)."""


def check_position(position, allowed: tuple[str, ...] = READ, *, name: str = "position",
                   indices: bool = True) -> None:
    """Raise PositionError unless ``position`` is one of ``allowed`` (or an int index, if ``indices``)."""
    is_index = isinstance(position, int) and not isinstance(position, bool)
    if (is_index and indices) or (isinstance(position, str) and position in allowed):
        return
    valid = ", ".join(allowed) + (" or an int index" if indices else "")
    raise PositionError(f"{name} must be one of {valid}; got {position!r}")


def real_mask(attention_mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """The [b, t] mask of real tokens on ``like``'s device (all ones when none is known)."""
    if attention_mask is None:
        return torch.ones(like.shape[:2], dtype=torch.long, device=like.device)
    return attention_mask.to(like.device)


def first_index(mask: torch.Tensor) -> torch.Tensor:
    """[b] index of each example's first real token."""
    return mask.argmax(dim=1)


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """[b] index of each example's last real token."""
    return (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(dim=1)


def index_of(mask: torch.Tensor, position) -> torch.Tensor:
    """[b] token index of ``position`` ("first", "last" or an int) in each example; not checked for range."""
    if position == "first":
        return first_index(mask)
    if position == "last":
        return last_index(mask)
    return first_index(mask) + position if position >= 0 else last_index(mask) + 1 + position


def reduce(activation: torch.Tensor, mask: torch.Tensor, position, where: str, indices: torch.Tensor) -> torch.Tensor:
    """[b, t, d] -> [b, d] (or [b, t, d] for "all") at the real tokens given by ``mask``.

    ``where`` names the site and ``indices`` the examples' global indices, for the error when an
    index falls outside an example.
    """
    if activation.ndim == 2:  # already one vector per example (e.g. a pooler)
        if position == "all":
            raise CaptureError(f"site {where!r} has one vector per example; position='all' needs [n, t, d]")
        return activation
    if activation.ndim != 3 or activation.shape[:2] != mask.shape:
        raise CaptureError(
            f"site {where!r} gives activations of shape {tuple(activation.shape)}; expected "
            f"[batch, tokens, d] = [{mask.shape[0]}, {mask.shape[1]}, d]"
        )
    mask = mask.to(activation.device)
    rows = torch.arange(mask.shape[0], device=mask.device)
    if position == "all":  # zero the padding (if any), so results do not depend on the pad token
        if activation.device.type == "cpu" and bool(mask.all()):  # asking costs a GPU a sync; a CPU nothing
            return activation
        return activation * mask.unsqueeze(-1).to(activation.dtype)
    if position == "mean":
        weights = mask.unsqueeze(-1).to(activation.dtype)
        return (activation * weights).sum(1) / weights.sum(1)
    if position == "max":
        return activation.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).amax(dim=1)
    index = index_of(mask, position)
    if isinstance(position, int):
        outside = (index < first_index(mask)) | (index > last_index(mask))
        if outside.any():
            bad = indices[outside.cpu()].tolist()[:5]
            raise CaptureError(f"position {position} is outside examples {bad} at site {where!r} (too short)")
    return activation[rows, index]


def edit_mask(activation: torch.Tensor, attention_mask: torch.Tensor | None, positions) -> torch.Tensor:
    """[b, t, 1] mask (in ``activation``'s dtype) of the positions an edit applies to; an int index
    is clipped to each example's real tokens."""
    mask = real_mask(attention_mask, activation)
    if positions != "all":
        chosen = index_of(mask, positions)
        if isinstance(positions, int):
            chosen = chosen.clamp(min=first_index(mask), max=last_index(mask))
        rows = torch.arange(mask.shape[0], device=mask.device)
        mask = torch.zeros_like(mask)
        mask[rows, chosen] = 1
    return mask.unsqueeze(-1).to(activation.dtype)
