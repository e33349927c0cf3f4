"""Each foldable edit as one affine map of a site's last axis, the form a linear layer can absorb.

A map is ``x -> x @ (scale·I - U @ V) + shift`` on row vectors (float64): zero (scale 0), mean (scale 0
and a shift), project out (U V the projection onto the directions), clamp (U V its reading times its
directions, and a shift), LEACE (U V its oblique projection,
a shift from its centring), steer (a shift), partial mean (U V selecting the replaced units). Kept
low-rank, so folding a neuron edit of a large MLP never builds a [d, d] matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import CheckError
from ..interventions.edits import Clamp, MeanAblation, PartialMean, ProjectOut, Steer, Transform, ZeroAblation
from ..interventions.leace import LinearEraser


@dataclass(frozen=True)
class Affine:
    """``x -> x @ M + shift`` with ``M = scale·I - U @ V`` on a last axis of ``width`` (float64).

    ``U`` is [width, k] and ``V`` [k, width] (both None for M = scale·I); ``shift`` is [width] or None.
    """

    width: int
    scale: float = 1.0
    U: torch.Tensor | None = None
    V: torch.Tensor | None = None
    shift: torch.Tensor | None = None

    def before(self, weight: torch.Tensor) -> torch.Tensor:
        """``M @ weight`` for a weight [width, n] that reads the edited vectors (a map's [in, out] weight)."""
        out = self.scale * weight
        return out if self.U is None else out - self.U @ (self.V @ weight)

    def after(self, weight: torch.Tensor) -> torch.Tensor:
        """``weight @ M`` for a weight [n, width] whose rows are written where the edit applies."""
        out = self.scale * weight
        return out if self.U is None else out - (weight @ self.U) @ self.V

    def on_bias(self, bias: torch.Tensor | None) -> torch.Tensor | None:
        """``bias @ M + shift``: a written bias after the edit (None when there is neither)."""
        moved = None if bias is None else self.after(bias.unsqueeze(0)).squeeze(0)
        if self.shift is None:
            return moved
        return self.shift.clone() if moved is None else moved + self.shift


def _vector(edit, tensor: torch.Tensor, what: str, width: int, where: str) -> torch.Tensor:
    """``tensor`` as a float64 [width] vector, or CheckError naming the site and both widths."""
    if tensor.ndim != 1 or tensor.shape[0] != width:
        raise CheckError(f"{type(edit).__name__} at {edit.site.name!r}: the {what} has shape {tuple(tensor.shape)}, "
                         f"but {where} is {width} wide; give a [{width}] vector")
    return tensor.detach().to(torch.float64, copy=True).cpu()


def _directions(edit: ProjectOut, width: int, where: str) -> torch.Tensor:
    basis = edit.basis
    if basis.shape[-1] != width:
        raise CheckError(f"ProjectOut at {edit.site.name!r}: the directions are {basis.shape[-1]} wide, but {where} "
                         f"is {width} wide; give directions of shape [k, {width}]")
    # re-orthonormalise in float64, so the folded projection is as exact as the weights allow
    return torch.linalg.qr(edit.directions.detach().to(torch.float64).cpu().reshape(-1, width).T).Q.T


def _eraser(edit: Transform, width: int, where: str) -> Affine:
    """x - (x - bias) Rᴴ Lᴴ, as concept-erasure's LeaceEraser computes it."""
    eraser = edit.fn.eraser_
    left, right = eraser.proj_left.detach().double().cpu(), eraser.proj_right.detach().double().cpu()
    if left.shape[0] != width or right.shape[-1] != width:
        raise CheckError(f"Transform at {edit.site.name!r}: the LEACE eraser was fitted on {right.shape[-1]}-wide "
                         f"activations, but {where} is {width} wide; fit it on this site's activations")
    U, V = right.mH, left.mH
    shift = None if eraser.bias is None else (eraser.bias.detach().double().cpu() @ U) @ V
    return Affine(width, 1.0, U, V, shift)


def _partial(edit: PartialMean, width: int, where: str) -> Affine:
    mean = _vector(edit, edit.mean, "mean", width, where)
    replaced = torch.zeros(width, dtype=torch.bool)
    for start, stop in edit.ranges:
        if not 0 <= start < stop <= width:
            raise CheckError(f"PartialMean at {edit.site.name!r}: range [{start}, {stop}) is outside {where}, "
                             f"which is {width} wide; ranges must lie in [0, {width})")
        replaced[start:stop] = True
    select = torch.eye(width, dtype=torch.float64)[replaced]  # [k, width]: one row per replaced unit
    return Affine(width, 1.0, select.T, select, torch.where(replaced, mean, 0.0))


def affine_of(edit, width: int, where: str) -> Affine | str:
    """The affine map ``edit`` applies to each ``width``-wide vector of its site (``where`` says what that
    vector is, for errors); or, when it is no fixed affine map, the reason as a sentence.
    CheckError when a mean, direction, vector or eraser has the wrong width."""
    positions = getattr(edit, "positions", "all")
    if positions != "all":
        return (f"it edits positions={positions!r} only, and a weight acts on every position; keep it as a hook "
                "or edit positions='all'")
    if isinstance(edit, ZeroAblation):
        return Affine(width, 0.0)
    if isinstance(edit, MeanAblation):
        return Affine(width, 0.0, shift=_vector(edit, edit.mean, "mean", width, where))
    if isinstance(edit, Steer):
        return Affine(width, shift=float(edit.alpha) * _vector(edit, edit.vector, "vector", width, where))
    if isinstance(edit, ProjectOut):
        basis = _directions(edit, width, where)
        return Affine(width, 1.0, basis.T, basis)
    if isinstance(edit, Clamp):
        if edit.directions.shape[-1] != width:
            raise CheckError(f"Clamp at {edit.site.name!r}: the directions are {edit.directions.shape[-1]} wide, but "
                             f"{where} is {width} wide; give directions of shape [k, {width}]")
        reading, directions = edit.reading.cpu(), edit.directions.cpu()
        value = _vector(edit, edit.to, "value", width, where)
        return Affine(width, 1.0, reading.T, directions, (value @ reading.T) @ directions)
    if isinstance(edit, PartialMean):
        return _partial(edit, width, where)
    if isinstance(edit, Transform):
        if isinstance(edit.fn, LinearEraser):
            return _eraser(edit, width, where)
        return (f"it applies an arbitrary function ({edit.name}); only a fitted LinearEraser is a known affine "
                "map that weights can hold")
    return (f"a {type(edit).__name__} depends on activations of other inputs (donors or a source run), which no "
            "weight can hold")
