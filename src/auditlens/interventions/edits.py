"""Edits of a site's activations during the forward pass, each a frozen description (site +
parameters) with a stable ``key`` for the cache. Where an edit applies is a position of
``positions`` (all, last, first or an index)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import CheckError
from ..sites.hooks import Batch
from ..sites.positions import EDIT, check_position, edit_mask, last_index
from ..sites.resolve import Site


def tensor_key(tensor: torch.Tensor) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class Intervention:
    """Base: ``edit(activation, batch)`` returns the replacement; ``key`` identifies it for caching."""

    site: Site

    @property
    def key(self) -> str:
        raise NotImplementedError

    def edit(self, activation: torch.Tensor, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def __post_init__(self):
        # every edit at ``positions`` validates them here; edits without positions (ProjectOut) or with
        # their own vocabulary (Patch) override this
        check_position(self.positions, EDIT, name="positions")

    def _key(self, kind: str, *parameters) -> str:
        """``kind(module path,reads input,parameters...)``: where the edit is and what identifies it."""
        return f"{kind}({','.join(map(str, (*self.site.key, *parameters)))})"


def _blend(activation, replacement, batch, positions):
    if activation.ndim == 2:
        return replacement.expand_as(activation).to(activation.dtype)
    mask = edit_mask(activation, batch.attention_mask, positions)
    return activation * (1 - mask) + replacement.to(activation.dtype) * mask


@dataclass(frozen=True)
class ZeroAblation(Intervention):
    site: Site
    positions: str = "all"

    @property
    def key(self) -> str:
        return self._key("zero", self.positions)

    def edit(self, activation, batch):
        return _blend(activation, torch.zeros((), device=activation.device), batch, self.positions)


@dataclass(frozen=True)
class MeanAblation(Intervention):
    """Replace with ``mean`` ([d]), typically the mean activation over a reference dataset."""

    site: Site
    mean: torch.Tensor
    positions: str = "all"

    @property
    def key(self) -> str:
        return self._key("mean", self.positions, tensor_key(self.mean))

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

    @property
    def key(self) -> str:
        return self._key("resample", self.positions, self.seed, tensor_key(self.donors))

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
        return self._key("project", tensor_key(self.basis))

    def edit(self, activation, batch):
        basis = self.basis.to(activation.device, torch.float32)
        h = activation.float()
        return (h - (h @ basis.T) @ basis).to(activation.dtype)


@dataclass(frozen=True)
class Clamp(Intervention):
    """Hold h's coordinates along ``directions`` D ([k, d]) at ``to``'s ([d]): h - ((h - to) Rᵀ) D.

    ``reading`` R ([k, d], R Dᵀ = I) says how a coordinate is read. By default R = D, orthonormalised: the
    orthogonal clamp, a directional mean ablation when ``to`` is a mean. An oblique R = (D Σ⁺ Dᵀ)⁻¹ D Σ⁺ (Σ the
    activations' covariance) moves the other activations least, as LEACE does; ``repair`` chooses it so."""

    site: Site
    directions: torch.Tensor
    to: torch.Tensor
    reading: torch.Tensor | None = None

    def __post_init__(self):
        directions = torch.atleast_2d(self.directions.detach().double())
        if not torch.isfinite(directions).all() or directions.norm() == 0:
            raise CheckError(f"directions to clamp at {self.site.name!r} are zero or not finite")
        if self.to.ndim != 1 or self.to.shape[0] != directions.shape[-1] or not torch.isfinite(self.to).all():
            raise CheckError(f"Clamp at {self.site.name!r}: the value to clamp to has shape {tuple(self.to.shape)}; "
                             f"give a finite [{directions.shape[-1]}] vector, as wide as the directions")
        if self.reading is None:
            directions = torch.linalg.qr(directions.T).Q.T
            reading = directions
        else:
            reading = torch.atleast_2d(self.reading.detach().double())
            if reading.shape != directions.shape or not torch.allclose(
                    reading @ directions.T, torch.eye(len(directions), dtype=torch.float64), atol=1e-4):
                raise CheckError(f"Clamp at {self.site.name!r}: reading must have the directions' shape "
                                 f"{tuple(directions.shape)} and satisfy reading @ directions.T = I")
        object.__setattr__(self, "directions", directions)
        object.__setattr__(self, "reading", reading)

    @property
    def key(self) -> str:
        return self._key("clamp", tensor_key(self.directions), tensor_key(self.reading), tensor_key(self.to))

    def edit(self, activation, batch):
        h = activation.double()
        to, reading = self.to.to(h.device, torch.float64), self.reading.to(h.device)
        return (h - ((h - to) @ reading.T) @ self.directions.to(h.device)).to(activation.dtype)


@dataclass(frozen=True)
class Transform(Intervention):
    """Apply ``fn`` ([..., d] -> [..., d]) at ``positions``, e.g. a fitted LEACE eraser.

    ``name`` must identify ``fn`` uniquely: it is the cache key. A fitted object that carries its
    own ``key`` (such as :class:`~auditlens.interventions.leace.LinearEraser`) needs no name.
    """

    site: Site
    fn: Callable[[torch.Tensor], torch.Tensor]
    name: str | None = None
    positions: str | int = "all"

    def __post_init__(self):
        super().__post_init__()
        if self.name is None:
            if not isinstance(getattr(self.fn, "key", None), str):
                raise CheckError(f"Transform at {self.site.name!r}: give name= (it identifies fn in the cache), "
                                 "or pass a fitted object with a .key")
            object.__setattr__(self, "name", self.fn.key)

    @property
    def key(self) -> str:
        return self._key("transform", self.positions, self.name)

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
        check_position(self.positions, ("all", "last"), name="patch positions", indices=False)

    @property
    def key(self) -> str:
        return self._key("patch", self.positions, tensor_key(self.source))

    def edit(self, activation, batch):
        source = self.source[batch.indices].to(activation.device)
        if activation.ndim == 2:
            return source.to(activation.dtype)
        source_mask = self.source_mask[batch.indices].to(activation.device)
        if self.positions == "last":
            base_mask = edit_mask(activation, batch.attention_mask, "last").squeeze(-1).bool()
            rows = torch.arange(activation.shape[0], device=source.device)
            out = activation.clone()
            out[base_mask] = source[rows, last_index(source_mask)].to(activation.dtype)
            return out
        source = _fit_length(source, activation)
        both = edit_mask(activation, batch.attention_mask, "all") * _fit_length(
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

    @property
    def key(self) -> str:
        return self._key("steer", self.positions, repr(self.alpha), tensor_key(self.vector))

    def edit(self, activation, batch):
        vector = (self.alpha * self.vector).to(activation.device, activation.dtype)
        if activation.ndim == 2:
            return activation + vector
        return activation + edit_mask(activation, batch.attention_mask, self.positions) * vector


def _fit_length(tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Pad with zeros or cut dimension 1 of ``tensor`` to the length of ``like``'s."""
    if tensor.ndim < 3 or tensor.shape[1] == like.shape[1]:
        return tensor
    if tensor.shape[1] > like.shape[1]:
        return tensor[:, : like.shape[1]]
    pad = torch.zeros(tensor.shape[0], like.shape[1] - tensor.shape[1], *tensor.shape[2:], dtype=tensor.dtype,
                      device=tensor.device)
    return torch.cat([tensor, pad], dim=1)


@dataclass(frozen=True)
class PartialMean(Intervention):
    """Replace some feature ranges of the last axis (heads, hidden units) with their ``mean`` ([d]) at
    every position, leave the rest: how a circuit's members, or everything but them, are ablated."""

    site: Site
    mean: torch.Tensor
    ranges: tuple[tuple[int, int], ...]
    positions: str = "all"

    @property
    def key(self) -> str:
        return self._key("partial-mean", self.ranges, tensor_key(self.mean))

    def edit(self, activation, batch):
        replaced = torch.zeros(activation.shape[-1], dtype=torch.bool, device=activation.device)
        for start, stop in self.ranges:
            replaced[start:stop] = True
        mean = self.mean.to(activation.device, activation.dtype)
        return torch.where(replaced, mean, activation)
