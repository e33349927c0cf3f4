"""Where a shortcut lives and how to remove it, from each kind of evidence a failed audit gives.

- A **patch** audit gives counterfactual pairs that differ only in the nuisance. The carrying sites are
  those whose patch alone reproduces at least half the audit's flips: where the stream begins (``embed``,
  or on a model that normalises its embeddings ``embed:sum``, their sum before that LayerNorm: the same
  flips, at a place weights can hold), then per block the attention (and, when it carries, each of its
  heads) and the MLP. At a site the pairs' differences span D, and the edit is an oblique clamp
  that holds the coordinates along D at a value h: the bases' mean where the pairs differ, else either
  side of the nuisance's values (HELD_AT). The reading R = (D M⁺ Dᵀ)⁻¹ D M⁺, M the activations' second
  moment about h (LEACE's reading when h is their mean), so the nuisance stops varying and the other
  activations move least.
- An **erase** audit gives a labelled concept the decision must not rest on. The carrying sites are the
  attention and MLP outputs up to the audit's block, and the edit is the concept's LEACE eraser fitted
  there on every real token.

Either way the measure is the audit's own metric, re-run on a candidate model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..checks.erase import erase
from ..checks.patch import patch
from ..engine import capture
from ..interventions import LinearEraser, Transform
from ..interventions.edits import Clamp
from ..sites.names import EMBED_SUM
from ..sites.resolve import alias_table, expand_sites
from .evidence import Shortcut

CARRIES = 0.5  # a site carries the shortcut when its patch alone flips at least this share of the audit's flips
CLAMP_RANKS = (1, 2, 4)
# What a clamp holds the nuisance's coordinates at, tried in this order: the bases' mean where the pairs differ
# (the value in the inputs whose decision the audit expects: a neutral name where a deciding one is swapped in),
# then each side of the nuisance's values split at their median along the first direction (a marker swapped
# both ways has two values, and the midpoint between them may be neither: hold it at one of them).
HELD_AT = ("the bases' mean", "the low side", "the high side")
NUMERICAL_RANK = 1e-3  # a direction of the differences counts when its singular value is this share of the top one


@dataclass
class EditSource:
    """The carrying sites (site -> what patching it alone did, or None), the ranks and held values to try, the
    edit of a site at a rank and value (None beyond its span), and the audit's metric on a candidate subject."""

    kind: str
    carriers: dict[str, float | None]
    ranks: tuple[int, ...]
    edit: Callable[[str, int, str], object | None]
    measure: Callable[[object], float]
    values: tuple[str, ...] = ("",)  # what the edit holds the nuisance at, tried in order ("" for none)


def from_patch(subject, pairs, shortcut: Shortcut, seed: int) -> EditSource:
    last = block_of(shortcut.site, subject.n_layers)

    def flips(name: str) -> float:
        return patch(subject, pairs, name, shortcut.positions, seed=seed).flip_rate

    def carries(rate: float) -> bool:
        return rate >= CARRIES * shortcut.value and rate > 0

    rates = {stream_entry(subject): flips(stream_entry(subject))}
    for layer in range(last + 1):
        rates[f"attn:{layer}"] = flips(f"attn:{layer}")
        if carries(rates[f"attn:{layer}"]):  # a head carries it through its block's attention
            rates.update({s.name: flips(s.name) for s in _heads(subject, layer)})
        rates[f"mlp:{layer}"] = flips(f"mlp:{layer}")
    ordered = sorted(rates, key=lambda name: (block_of(name, subject.n_layers), not name.startswith(("embed", "head"))))
    carriers = {name: rates[name] for name in ordered if carries(rates[name])}
    spans = {site: _span(subject, pairs, site) for site in carriers}

    @functools.cache  # one fit per (site, rank, value): a site recurs in the block's and the all-sites tries
    def edit(site: str, rank: int, value: str):
        return None if rank > _rank(spans[site][0]) else _clamp(subject, site, rank, value, *spans[site])

    def measure(candidate) -> float:
        return getattr(patch(candidate, pairs, shortcut.site, shortcut.positions, seed=seed), shortcut.metric)

    return EditSource("clamp", carriers, CLAMP_RANKS, edit, measure, HELD_AT)


def from_erase(subject, concept, data, shortcut: Shortcut, seed: int) -> EditSource:
    last = block_of(shortcut.site, subject.n_layers)
    carriers = {f"{kind}:{layer}": None for layer in range(last + 1) for kind in ("attn", "mlp")}
    inputs, labels = concept.inputs(subject), concept.label_tensor()

    @functools.cache  # one eraser per site: a site recurs in the block's and the all-sites tries
    def edit(site: str, rank: int, value: str = ""):
        features = capture(subject, inputs, site, position="all")
        real = inputs.attention_mask.bool()
        eraser = LinearEraser.fit(features[real], labels[:, None].expand_as(real)[real], concept.n_classes)
        return Transform(subject.site(site), eraser)

    position = int(shortcut.positions) if shortcut.positions.lstrip("-").isdigit() else shortcut.positions

    def measure(candidate) -> float:
        result = erase(candidate, concept, shortcut.site, position, data=data, seed=seed)
        return getattr(result, shortcut.metric)

    return EditSource("LEACE", carriers, (1,), edit, measure)


def stream_entry(subject) -> str:
    """Where the residual stream begins, at a place weights can hold an edit: ``embed:sum`` where the model
    normalises its embeddings (post-LN: ``embed`` is that LayerNorm's output), else ``embed``."""
    return EMBED_SUM if EMBED_SUM in alias_table(subject.model) else "embed"


def _heads(subject, layer: int) -> list:
    from ..errors import SiteError

    try:
        return expand_sites(subject.model, f"head:{layer}.*")
    except SiteError:  # no head layout this knows: the sublayer is still a site
        return []


def _span(subject, pairs, site) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pairs' differences at ``site`` ([m, d], at the real positions where they differ), the bases'
    activations there ([m, d]: the value the nuisance is held at) and every real activation of both members
    ([n, d]: their covariance)."""
    base, source, _ = pairs.pair_inputs(subject)
    at_base = capture(subject, base, site, position="all")
    at_source = capture(subject, source, site, position="all")
    if at_base.ndim == 2:  # one vector per example
        real = torch.ones(at_base.shape[0], dtype=torch.bool)
    else:
        real = base.attention_mask.bool() & source.attention_mask.bool()
    gaps = at_source[real] - at_base[real]
    differ = gaps.norm(dim=1) > 1e-4 * gaps.norm(dim=1).max().clamp_min(1e-12)
    return gaps[differ], at_base[real][differ], torch.cat([at_base[real], at_source[real]])


def _rank(differences: torch.Tensor) -> int:
    """The number of directions the differences really span (a swapped token differs along one)."""
    values = torch.linalg.svdvals(differences.double())
    return int((values > NUMERICAL_RANK * values[0]).sum()) if len(values) and values[0] > 0 else 0


def _clamp(subject, site: str, rank: int, value: str, differences: torch.Tensor, bases: torch.Tensor,
           activations: torch.Tensor) -> Clamp:
    """Hold the top ``rank`` directions D of the differences at ``value`` (one of HELD_AT). The edit moves an
    activation x by R(x - h) along D, so the reading R = (D M⁺ Dᵀ)⁻¹ D M⁺, with M the second moment of every
    activation about the held value h, is the one that moves them least on average (LEACE's oblique reading
    when h is their mean)."""
    directions = torch.linalg.svd(differences.double(), full_matrices=False).Vh[:rank]
    held = _held_value(value, bases.double(), differences.double(), directions)
    centred = activations.double() - held
    inverse = torch.linalg.pinv(centred.T @ centred / len(centred), hermitian=True, rtol=1e-6)
    reading = torch.linalg.solve(directions @ inverse @ directions.T, directions @ inverse)
    return Clamp(subject.site(site), directions, held, reading)


def _held_value(value: str, bases: torch.Tensor, differences: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """The activation the clamp holds the coordinates at: the bases' mean, or the mean of the low or high side of
    both members' values (bases and sources where the pairs differ) split at the median of the first coordinate."""
    if value == HELD_AT[0]:
        return bases.mean(0)
    members = torch.cat([bases, bases + differences])
    first = members @ directions[0]
    low = first <= first.median()
    side = low if value == HELD_AT[1] else ~low
    if not side.any():  # every value on one side of the median: there is one value
        side = low
    return members[side].mean(0)


def block_of(site: str, layers: int) -> int:
    """The last block a site lies in (-1 for ``embed``; every block for a module path)."""
    for kind in ("layer:", "attn:", "mlp:", "neurons:", "neuron:", "head:"):
        if site.startswith(kind):
            return int(site.removeprefix(kind).split(".")[0]) % layers
    return -1 if site in ("embed", EMBED_SUM) else layers - 1
