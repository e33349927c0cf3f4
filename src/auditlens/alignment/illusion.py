"""The illusion check (Makelov, Lange and Nanda 2023, "Is this the subspace you are looking for?").

A subspace can pass interchange training without being where the model keeps the variable: a direction
v = (u + w)/sqrt(2) mixing a *disconnected* u (varies with the variable, but nothing downstream reads it)
and a *dormant* w (read downstream, but constant on the data) patches well, because the difference of
the sources along u is written along w, switching on a pathway the model does not use on its own.

We estimate what the rest of the model reads from the site *locally*: the gradients of the answer
logit differences (each class against the first) with respect to the site's activation, at the
patched position(s) of the training bases. Their span is every direction a small change of the
activation moves the answer through; we keep the top principal subspace holding ``energy`` (99%) of
their squared norm, the *read subspace* (projector P). With B the learned directions and
Δ = h_s - h_b the source-minus-base differences on the training pairs:

- ``unread_share``: the share of the subspace itself outside the read subspace, 1 - ||B P||²_F / dim.
  Geometry only: it also counts directions along which base and source never differ, which no patch
  uses, so a learned subspace carrying such harmless slack scores high without any illusion;
- ``dormant_share``: the share of what the interchange *transfers* that passes through the unread
  part: sum ||B (I - P) Δ||² / (sum ||B P Δ||² + sum ||B (I - P) Δ||²). In the illusion the variable's
  difference enters only through the disconnected u (unread) and leaves through the dormant w (read,
  but equal in base and source), so the share is near 1; an honest subspace transfers through what is
  read, near 0. High means likely illusory;
- ``iia_without_dormant`` (in the check): IIA when the interchange uses only B's part inside the read
  subspace. An honest subspace keeps its IIA; an illusory one loses it, since its read part (the dormant
  w) does not differ between base and source. This is the direct test; the shares say where to look.

Limits: gradients are first-order and taken at the bases: a direction read only once a nonlinearity
switches on (a ReLU off on every base) counts as unread, so a high share calls for a look, not a
verdict. In a wide residual stream the gradients of many examples can span most of the space, so a
low share is weak evidence of honesty there; ``iia_without_dormant`` is the direct test. The read
subspace is estimated on the model as it is: it says what the answer depends on, not why.
"""

from __future__ import annotations

import torch

from ..inputs import Inputs
from ..sites.hooks import hooked
from ..sites.positions import edit_mask
from ..sites.resolve import Site
from .interchange import orthonormal_rows
from .training import frozen, scores

MAX_GRADIENTS = 2048  # rows of gradients kept for the SVD (a seeded sample beyond)


def read_subspace(subject, site: Site, base: Inputs, readout, position, seed: int, energy: float = 0.99,
                  batch_size: int = 64) -> torch.Tensor:
    """An orthonormal basis ([k, d], on the CPU; k = 0 when the answer does not depend on the site) of
    the directions at ``site`` the answer reads locally, estimated from gradients on ``base``."""
    rows = []
    current: dict[str, torch.Tensor] = {}

    def probe(activation, batch):
        current["zero"] = torch.zeros_like(activation, dtype=torch.float32, requires_grad=True)
        current["mask"] = edit_mask(activation, batch.attention_mask, position).bool().squeeze(-1) \
            if activation.ndim == 3 else None
        return activation + current["zero"].to(activation.dtype)

    with frozen(subject.model), hooked(subject.model, [(site, probe)]):
        for chunk in torch.arange(len(base)).split(batch_size):
            logits = scores(subject, base, chunk, readout)
            for contrast in range(1, logits.shape[1]):
                difference = (logits[:, contrast] - logits[:, 0]).sum()
                gradient = None  # the answer need not depend on the site at all
                if difference.requires_grad:
                    (gradient,) = torch.autograd.grad(difference, current["zero"], retain_graph=True,
                                                      allow_unused=True)
                gradient = torch.zeros_like(current["zero"]) if gradient is None else gradient
                rows.append(gradient if current["mask"] is None else gradient[current["mask"]])
    gradients = torch.cat(rows).float()
    if gradients.shape[0] > MAX_GRADIENTS:
        keep = torch.randperm(gradients.shape[0], generator=torch.Generator().manual_seed(seed))[:MAX_GRADIENTS]
        gradients = gradients[keep.to(gradients.device)]
    return principal_subspace(gradients, energy).cpu()


def principal_subspace(vectors: torch.Tensor, energy: float) -> torch.Tensor:
    """The fewest top right-singular vectors of ``vectors`` ([N, d]) holding ``energy`` of their squared
    norm, as rows ([k, d]); none when the vectors are all (near) zero."""
    if vectors.numel() == 0 or float(vectors.abs().max()) == 0.0:
        return vectors.new_zeros((0, vectors.shape[-1]))
    _, singular, right = torch.linalg.svd(vectors.double(), full_matrices=False)
    share = torch.cumsum(singular**2, 0) / (singular**2).sum()
    k = int((share < energy).sum()) + 1
    k = min(k, int((singular > 1e-6 * singular[0]).sum()))
    return right[:k].float()


def unread_share(directions: torch.Tensor, read: torch.Tensor) -> float:
    """Share (0..1) of ``directions``' squared norm ([dim, d], orthonormal rows) outside the span of ``read``'s
    orthonormal rows: how much of the subspace lies where the answer does not read the site."""
    inside = (directions.float() @ read.float().T).pow(2).sum() if read.shape[0] else torch.zeros(())
    return float(min(max(1.0 - float(inside) / directions.shape[0], 0.0), 1.0))


def dormant_share(directions: torch.Tensor, read: torch.Tensor, differences: torch.Tensor) -> float:
    """Share (0..1) of what the interchange transfers that arrives through the unread part of the subspace.

    ``differences`` ([N, d]): source minus base activation at the patched positions of the training pairs.
    The interchange writes the coefficients c = B (h_s - h_b); split B = B P + B (I - P) (P projects onto the
    read subspace), the share is sum ||B (I - P) Δ||² / (sum ||B P Δ||² + sum ||B (I - P) Δ||²). 0 when the
    pairs do not differ at all along the subspace (nothing is transferred)."""
    directions, differences = directions.double(), differences.double().to("cpu")
    read_projector = read.double().T @ read.double() if read.shape[0] else torch.zeros(2 * (directions.shape[1],),
                                                                                      dtype=torch.float64)
    through_read = (differences @ read_projector @ directions.T).pow(2).sum()
    through_unread = (differences @ (torch.eye(directions.shape[1], dtype=torch.float64) - read_projector)
                      @ directions.T).pow(2).sum()
    total = float(through_read + through_unread)
    return float(through_unread) / total if total > 0 else 0.0


def read_part(directions: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of ``directions`` projected onto the read subspace (fewer rows, or none,
    where part of it lies outside)."""
    if read.shape[0] == 0:
        return directions.new_zeros((0, directions.shape[-1]))
    return orthonormal_rows((directions.float() @ read.float().T) @ read.float(), tolerance=1e-3)


def pair_differences(base: torch.Tensor, source: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Source minus base activation at the patched positions ([N, d]): the captured [n, d] vectors, or
    every real token of [n, t, d] (position "all"; ``attention_mask`` [n, t] of the bases)."""
    difference = source.float() - base.float()
    if difference.ndim == 2:
        return difference
    return difference[attention_mask.to(difference.device)[:, : difference.shape[1]].bool()]
