"""Interventions: edits of a site's activations during the forward pass.

Each intervention is a frozen description (site + parameters) with a stable ``key`` for the
cache; :func:`intervene` installs any number of them as a context manager that always removes
its hooks. Builders that need activations (mean, resample, patch) take a Subject and capture them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .errors import CheckError
from .hooks import Batch, hooked
from .sites import Site

POSITIONS = ("all", "last", "first")


def tensor_key(tensor: torch.Tensor) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _position_mask(activation: torch.Tensor, batch: Batch, positions: str) -> torch.Tensor:
    """[b, t, 1] mask of the positions an edit applies to."""
    b, t = activation.shape[:2]
    mask = batch.attention_mask
    mask = torch.ones(b, t, dtype=torch.long) if mask is None else mask
    mask = mask.to(activation.device)
    if positions != "all":
        if positions == "last":
            chosen = (mask * torch.arange(t, device=mask.device)).argmax(dim=1)
        elif positions == "first":
            chosen = mask.argmax(dim=1)
        else:  # an index into the real tokens, negative from the end; clipped to each example
            first, last = mask.argmax(dim=1), (mask * torch.arange(t, device=mask.device)).argmax(dim=1)
            chosen = (first + positions if positions >= 0 else last + 1 + positions).clamp(min=first, max=last)
        mask = torch.zeros_like(mask)
        mask[torch.arange(b), chosen] = 1
    return mask.unsqueeze(-1).to(activation.dtype)


def _check_positions(positions) -> None:
    if isinstance(positions, bool) or not (isinstance(positions, int) or positions in POSITIONS):
        raise CheckError(f"positions must be one of {', '.join(POSITIONS)} or an int index; got {positions!r}")


class Intervention:
    """Base: ``edit(activation, batch)`` returns the replacement; ``key`` identifies it for caching."""

    site: Site

    @property
    def key(self) -> str:
        raise NotImplementedError

    def edit(self, activation: torch.Tensor, batch: Batch) -> torch.Tensor:
        raise NotImplementedError


def _blend(activation, replacement, batch, positions):
    if activation.ndim == 2:
        return replacement.expand_as(activation).to(activation.dtype)
    mask = _position_mask(activation, batch, positions)
    return activation * (1 - mask) + replacement.to(activation.dtype) * mask


@dataclass(frozen=True)
class ZeroAblation(Intervention):
    site: Site
    positions: str = "all"

    def __post_init__(self):
        _check_positions(self.positions)

    @property
    def key(self) -> str:
        return f"zero({self.site.module_path},{self.site.reads_input},{self.positions})"

    def edit(self, activation, batch):
        return _blend(activation, torch.zeros((), device=activation.device), batch, self.positions)


@dataclass(frozen=True)
class MeanAblation(Intervention):
    """Replace with ``mean`` ([d]), typically the mean activation over a reference dataset."""

    site: Site
    mean: torch.Tensor
    positions: str = "all"

    def __post_init__(self):
        _check_positions(self.positions)

    @property
    def key(self) -> str:
        return f"mean({self.site.module_path},{self.site.reads_input},{self.positions},{tensor_key(self.mean)})"

    def edit(self, activation, batch):
        return _blend(activation, self.mean.to(activation.device), batch, self.positions)


@dataclass(frozen=True)
class ResampleAblation(Intervention):
    """Replace each example's activation with a donor's ([n_ref, t, d]), drawn by a seeded permutation.

    Donor choice depends only on the example's index and the seed, never on the batching.
    """

    site: Site
    donors: torch.Tensor
    seed: int = 0
    positions: str = "all"

    def __post_init__(self):
        _check_positions(self.positions)

    @property
    def key(self) -> str:
        return f"resample({self.site.module_path},{self.site.reads_input},{self.positions},{self.seed},{tensor_key(self.donors)})"

    def donor_index(self, indices: torch.Tensor) -> torch.Tensor:
        n = self.donors.shape[0]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        return order[indices % n]

    def edit(self, activation, batch):
        donors = self.donors[self.donor_index(batch.indices)].to(activation.device)
        return _blend(activation, _fit_length(donors, activation), batch, self.positions)


@dataclass(frozen=True)
class ProjectOut(Intervention):
    """Remove the span of ``directions`` ([k, d]): h - h Q Qᵀ with Q an orthonormal basis."""

    site: Site
    directions: torch.Tensor
    basis: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        directions = torch.atleast_2d(self.directions.detach().float())
        if not torch.isfinite(directions).all() or directions.norm() == 0:
            raise CheckError(f"directions to project out at {self.site.name!r} are zero or not finite")
        basis = torch.linalg.qr(directions.T).Q.T  # [k, d], orthonormal rows
        object.__setattr__(self, "basis", basis)

    @property
    def key(self) -> str:
        return f"project({self.site.module_path},{self.site.reads_input},{tensor_key(self.basis)})"

    def edit(self, activation, batch):
        basis = self.basis.to(activation.device, torch.float32)
        h = activation.float()
        return (h - (h @ basis.T) @ basis).to(activation.dtype)


@dataclass(frozen=True)
class Transform(Intervention):
    """Apply ``fn`` ([..., d] -> [..., d]) at ``positions``, e.g. a fitted LEACE eraser.

    ``name`` must identify ``fn`` uniquely: it is the cache key.
    """

    site: Site
    fn: Callable[[torch.Tensor], torch.Tensor]
    name: str
    positions: str | int = "all"

    def __post_init__(self):
        _check_positions(self.positions)

    @property
    def key(self) -> str:
        return f"transform({self.site.module_path},{self.site.reads_input},{self.positions},{self.name})"

    def edit(self, activation, batch):
        edited = self.fn(activation.float()).to(activation.dtype)
        if self.positions == "all" or activation.ndim == 2:
            return edited
        return _blend(activation, edited, batch, self.positions)


@dataclass(frozen=True)
class Patch(Intervention):
    """Replace activations with those of a source run ([n, t, d]) on other inputs, example by example.

    ``positions="all"`` copies every position both inputs have (aligned by index);
    ``"last"`` copies the source's last token onto the base's last token.
    """

    site: Site
    source: torch.Tensor
    source_mask: torch.Tensor
    positions: str = "all"

    def __post_init__(self):
        if self.positions not in ("all", "last"):
            raise CheckError(f"patch positions must be one of all, last; got {self.positions!r}")

    @property
    def key(self) -> str:
        return f"patch({self.site.module_path},{self.site.reads_input},{self.positions},{tensor_key(self.source)})"

    def edit(self, activation, batch):
        source = self.source[batch.indices].to(activation.device)
        if activation.ndim == 2:
            return source.to(activation.dtype)
        source_mask = self.source_mask[batch.indices].to(activation.device)
        if self.positions == "last":
            b, t = activation.shape[:2]
            base_mask = _position_mask(activation, batch, "last").squeeze(-1).bool()
            src_last = (source_mask * torch.arange(source_mask.shape[1], device=source_mask.device)).argmax(1)
            out = activation.clone()
            out[base_mask] = source[torch.arange(b, device=source.device), src_last].to(activation.dtype)
            return out
        source = _fit_length(source, activation)
        both = _position_mask(activation, batch, "all") * _fit_length(
            source_mask.unsqueeze(-1).to(activation.dtype), activation[..., :1]
        )
        return activation * (1 - both) + source.to(activation.dtype) * both


@dataclass(frozen=True)
class Steer(Intervention):
    """Add ``alpha * vector`` ([d]) at the chosen positions."""

    site: Site
    vector: torch.Tensor
    alpha: float = 1.0
    positions: str = "all"

    def __post_init__(self):
        _check_positions(self.positions)

    @property
    def key(self) -> str:
        return f"steer({self.site.module_path},{self.site.reads_input},{self.positions},{self.alpha!r},{tensor_key(self.vector)})"

    def edit(self, activation, batch):
        vector = (self.alpha * self.vector).to(activation.device, activation.dtype)
        if activation.ndim == 2:
            return activation + vector
        return activation + _position_mask(activation, batch, self.positions) * vector


def _fit_length(tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Pad with zeros or cut dimension 1 of ``tensor`` to the length of ``like``'s."""
    if tensor.ndim < 3 or tensor.shape[1] == like.shape[1]:
        return tensor
    if tensor.shape[1] > like.shape[1]:
        return tensor[:, : like.shape[1]]
    pad = torch.zeros(tensor.shape[0], like.shape[1] - tensor.shape[1], *tensor.shape[2:], dtype=tensor.dtype,
                      device=tensor.device)
    return torch.cat([tensor, pad], dim=1)


@contextmanager
def intervene(subject_or_model, *interventions: Intervention) -> Iterator[None]:
    """Apply ``interventions`` (in order) to every forward pass inside the block; hooks always removed."""
    from .subject import Subject

    model = subject_or_model.model if isinstance(subject_or_model, Subject) else subject_or_model
    with hooked(model, [(iv.site, iv.edit) for iv in interventions]):
        yield
