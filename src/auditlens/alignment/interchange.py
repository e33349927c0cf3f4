"""The interchange intervention of distributed alignment search, in one place: at the chosen
position(s) the base activation h_b becomes h_b + (h_s - h_b) Bᵀ B, where B ([k, d], orthonormal rows)
spans the subspace and h_s is the source's activation at the same position. Training (with gradients
through B) and evaluation (through the engine, as an ``Intervention``) both call :func:`interchange`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import CheckError
from ..inputs import Inputs
from ..interventions import Intervention, tensor_key
from ..sites.positions import check_position, edit_mask
from ..sites.resolve import Site

POSITIONS = ("last", "first", "all")  # and int indices: where a base and its source are aligned


def check_alignment(base: Inputs, source: Inputs, position, concept: str) -> None:
    """Raise CheckError unless every pair has the token ``position`` names in both its inputs
    ("all" aligns token by token, so base and source must be equally long)."""
    check_position(position, POSITIONS, name="das position")
    base_lengths, source_lengths = base.lengths, source.lengths
    if position == "all":
        bad = (base_lengths != source_lengths).nonzero().flatten().tolist()
        if bad:
            i = bad[0]
            raise CheckError(f"das position='all' aligns base and source token by token, but pairs {bad[:5]} of "
                             f"concept {concept!r} differ in length (pair {i}: base {int(base_lengths[i])} tokens, "
                             f"source {int(source_lengths[i])}); use position='last' or an int index")
    elif isinstance(position, int):
        need = position + 1 if position >= 0 else -position
        short = ((base_lengths < need) | (source_lengths < need)).nonzero().flatten().tolist()
        if short:
            raise CheckError(f"das position {position} needs {need} tokens in every base and source; pairs "
                             f"{short[:5]} of concept {concept!r} are shorter ({len(short)} in all)")


def interchange(activation: torch.Tensor, attention_mask: torch.Tensor | None, source: torch.Tensor,
                basis: torch.Tensor, position) -> torch.Tensor:
    """``activation`` ([b, t, d] or [b, d]) with (source - activation) projected on ``basis``'s rows added at
    ``position``. ``source`` is [b, d] (one vector per example) or, for "all", [b, t', d]. Differentiable
    in ``basis``; computed in float32 and returned in the activation's dtype."""
    basis = basis.to(activation.device, torch.float32)
    if activation.ndim == 2:  # one vector per example: the position is that vector
        difference = source.to(activation.device, torch.float32) - activation.float()
        return activation + ((difference @ basis.T) @ basis).to(activation.dtype)
    if position == "all":
        width = activation.shape[1]
        source = source[:, :width]
        if source.shape[1] < width:  # a batch cut wider than its sources: those tokens are padding
            source = torch.nn.functional.pad(source, (0, 0, 0, width - source.shape[1]))
    else:
        source = source[:, None, :]
    mask = edit_mask(activation, attention_mask, position).float()
    difference = source.to(activation.device, torch.float32) - activation.float()
    return activation + (mask * ((difference @ basis.T) @ basis)).to(activation.dtype)


def orthonormal_rows(vectors: torch.Tensor, tolerance: float = 1e-6) -> torch.Tensor:
    """An orthonormal basis ([k, d]) of the span of ``vectors``' rows; k = 0 when they are all (near) zero."""
    vectors = torch.atleast_2d(vectors.detach().float())
    if vectors.numel() == 0:
        return vectors.new_zeros((0, vectors.shape[-1]))
    _, singular, right = torch.linalg.svd(vectors, full_matrices=False)
    keep = singular > tolerance * max(float(singular.max()), 1.0)
    return right[keep]


@dataclass(frozen=True)
class SubspaceInterchange(Intervention):
    """The interchange along ``basis`` ([k, d], orthonormal rows; k may be 0: no change) from ``source``
    (one row per base example, [n, d], or [n, t, d] for ``positions="all"``)."""

    site: Site
    basis: torch.Tensor
    source: torch.Tensor
    positions: str | int = "last"

    @property
    def key(self) -> str:
        return self._key("das", self.positions, tensor_key(self.basis), tensor_key(self.source))

    def edit(self, activation, batch):
        source = self.source[batch.indices.to(self.source.device)]
        return interchange(activation, batch.attention_mask, source, self.basis, self.positions)
