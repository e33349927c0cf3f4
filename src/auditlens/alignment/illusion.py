"""The illusion check (Makelov, Lange and Nanda 2023, "Is this the subspace you are looking for?").

A subspace can pass interchange training without being where the model keeps the variable: a direction
v = (u + w)/sqrt(2) mixing a *disconnected* u (varies with the variable, but nothing downstream reads it)
and a *dormant* w (read downstream, but constant on the data) patches well, because the difference of
the sources along u is written along w, switching on a pathway the model does not use on its own.

We estimate what the rest of the model reads from the site *along the patch*: for each training pair,
the gradients of the answer logit differences (each class against the first) with respect to the site's
activation, averaged over ``PATH_POINTS`` midpoints of the straight path from the base's activation h_b
to the patched one h_b + (h_s - h_b) Bᵀ B and, where the patch changes the answer, the point (bisected)
where it does (integrated gradients, Sundararajan et al. 2017: the average gradient dotted with the patch
is the change of the logit difference the patch makes). Their span is
every direction through which the patch moves the answer; we keep the top principal subspace holding
``energy`` (99%) of their squared norm, the *read subspace* (projector P). With B the learned directions
and Δ = h_s - h_b the source-minus-base differences on the training pairs:

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

Why along the path and not at the bases alone: a norm downstream (the final LayerNorm or RMSNorm before
the head, or the next block's) is blind, to first order, to moving the activation along itself, so the
gradient at h_b has no component along h_b. Where the variable is most of the activation (the learned
count twins after block 1: |cos(learned direction, h_b)| 0.93, and the learned direction is 0.93 of the
head's own γ ⊙ (w₁ - w₀)), the patch moves h_b along itself across the decision boundary, and the gradients
at the bases held only 0.29 (routed, tail) to 0.6 (count) of the head's direction: honest subspaces scored
dormant 0.8-0.9 and IIA 0 without it. It is no norm trick: the patch leaves the norm's scale as it was
(patched/base ratio 1.0), rescaling a base to the patched norm flips no answer, and the patched direction
at the base's norm flips all. Along the path the gradient turns to the boundary's normal (rank 1, holding
the head's direction at 0.99). An answer saturated at both ends (keyword twin's [CLS] after block 0 feeding
a tanh pooler: logit differences ±8.9, gradients ~1e-4) changes in a jump narrower than 1/4000 of the path,
which fixed points miss; the bisected crossing point is why it is among the points.

Limits: a disconnected u has zero gradient at every point, so no path makes it read; a dormant w read only
once the patch switches a nonlinearity on counts as read (it is, along the path), which is why the shares
are about what Δ carries in, not about B. A second jump of the answer along the path, away from where it
finally changes, can fall between the points. In a wide residual stream the gradients of many examples
can span most of the space, so a low share is weak evidence of honesty there; ``iia_without_dormant`` is
the direct test. The read subspace is estimated on the model as it is: it says what the answer depends
on, not why.
"""

from __future__ import annotations

import torch

from ..inputs import Inputs
from ..sites.hooks import hooked
from ..sites.positions import edit_mask
from ..sites.resolve import Site
from .interchange import interchange, orthonormal_rows
from .training import frozen, scores

MAX_GRADIENTS = 2048  # rows of gradients kept for the SVD (a seeded sample beyond)
PATH_POINTS = 8  # midpoints of the base-to-patched path at which the answer's gradients are averaged
BISECTION_STEPS = 12  # halvings of the path to find where the patched answer overtakes the base's


def read_subspace(subject, site: Site, base: Inputs, source: torch.Tensor, directions: torch.Tensor, readout,
                  position, seed: int, energy: float = 0.99, points: int = PATH_POINTS,
                  batch_size: int = 64) -> torch.Tensor:
    """An orthonormal basis ([k, d], on the CPU; k = 0 when the answer does not depend on the site) of
    the directions at ``site`` through which patching ``base`` from ``source`` (captured activations, one
    row per base, as for training) along ``directions`` ([dim, d]) moves the answer: the gradients of the
    logit differences averaged over ``points`` midpoints of the path from each base to its patched self
    and, where the patch changes the answer, the point where it does."""
    path = _PatchPath(source, directions, position)
    rows = []
    with frozen(subject.model), hooked(subject.model, [(site, path.probe)]):
        for chunk in torch.arange(len(base)).split(batch_size):
            rows += path.average_gradients(subject, base, chunk, readout, points)
    gradients = torch.cat(rows).float()
    if gradients.shape[0] > MAX_GRADIENTS:
        keep = torch.randperm(gradients.shape[0], generator=torch.Generator().manual_seed(seed))[:MAX_GRADIENTS]
        gradients = gradients[keep.to(gradients.device)]
    return principal_subspace(gradients, energy).cpu()


class _PatchPath:
    """A hook putting each example of a batch at the point ``t`` ([b], set before each pass) of the straight
    path from its base activation (t = 0) to its patched one (t = 1), with a zero to take gradients at."""

    def __init__(self, source: torch.Tensor, directions: torch.Tensor, position):
        self.source, self.directions, self.position = source, directions, position
        self.t = self.zero = self.mask = None

    def probe(self, activation, batch):
        patched = interchange(activation, batch.attention_mask, self.source[batch.indices.to(self.source.device)],
                              self.directions, self.position)
        t = self.t.to(activation.device, activation.dtype).view(-1, *[1] * (activation.ndim - 1))
        point = activation + t * (patched - activation)
        self.zero = torch.zeros_like(point, dtype=torch.float32, requires_grad=True)
        self.mask = edit_mask(point, batch.attention_mask, self.position).bool().squeeze(-1) \
            if point.ndim == 3 else None
        return point + self.zero.to(point.dtype)

    def average_gradients(self, subject, base: Inputs, chunk: torch.Tensor, readout, points: int) -> list:
        """One [rows, d] tensor per contrast (class c against class 0): each example's gradients at the
        patched position(s), averaged over the path's midpoints and its crossing point (where there is one)."""
        crossing, crossed = self.crossing(subject, base, chunk, readout)
        stops = [(torch.full_like(crossing, (k + 0.5) / points), torch.ones_like(crossing)) for k in range(points)]
        stops += [(crossing, crossed.float())] if bool(crossed.any()) else []
        totals: dict[int, torch.Tensor] = {}
        for t, weight in stops:
            self.t = t
            logits = scores(subject, base, chunk, readout)
            weight = weight.to(self.zero.device).view(-1, *[1] * (self.zero.ndim - 1))
            for contrast in range(1, logits.shape[1]):
                gradient = _gradient((logits[:, contrast] - logits[:, 0]).sum(), self.zero) * weight
                totals[contrast] = totals.get(contrast, 0) + gradient
        count = (points + crossed.float()).to(self.zero.device).view(-1, *[1] * (self.zero.ndim - 1))
        return [total / count if self.mask is None else (total / count)[self.mask] for total in totals.values()]

    def crossing(self, subject, base: Inputs, chunk: torch.Tensor, readout) -> tuple[torch.Tensor, torch.Tensor]:
        """Per example, the point t ([b]) where the patched answer's logit overtakes the base answer's (by
        bisection: a saturated answer can change in a jump between two midpoints), and whether it does."""
        ends = []
        with torch.no_grad():
            for end in (0.0, 1.0):
                self.t = torch.full((len(chunk),), end)
                ends.append(scores(subject, base, chunk, readout).argmax(1, keepdim=True))
            low, high = torch.zeros(len(chunk)), torch.ones(len(chunk))
            for _ in range(BISECTION_STEPS):
                self.t = (low + high) / 2
                logits = scores(subject, base, chunk, readout)
                overtaken = (logits.gather(1, ends[1]) >= logits.gather(1, ends[0])).flatten().cpu()
                low, high = torch.where(overtaken, low, self.t), torch.where(overtaken, self.t, high)
        return (low + high) / 2, (ends[0] != ends[1]).flatten().cpu()


def _gradient(difference: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """d difference / d at; zeros where the answer does not depend on the site at all."""
    gradient = None
    if difference.requires_grad:
        (gradient,) = torch.autograd.grad(difference, at, retain_graph=True, allow_unused=True)
    return torch.zeros_like(at) if gradient is None else gradient


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
