"""Choosing the edit from evidence. A failed patch audit gives counterfactual pairs that differ only in the
nuisance. Inside the model the pairs differ where the nuisance is carried: the sites whose patch alone
reproduces the audit's flips. There the differences span a few directions D. The edit holds the activations'
coordinates along D at their mean, read obliquely (R = (D Σ⁺ Dᵀ)⁻¹ D Σ⁺, as LEACE reads them), so the nuisance
no longer varies and the other activations move least. Edits are tried smallest first: rank 1 before 2 and
4, one site (the earliest first) before the sites of one block together, before every carrying site. A try
is kept when the audit's own check passes on the folded model and the clean accuracy holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..checks.behaviour_change import behaviour
from ..checks.patch import patch
from ..engine import capture
from ..interventions.edits import Clamp
from ..sites import expand_sites
from ..stats import Interval, paired_difference
from ..subject import Subject
from .evidence import Shortcut
from .export import RepairedModel
from .fold import repair

RANKS = (1, 2, 4)
CARRIES = 0.5  # a site carries the shortcut when its patch alone flips at least this share of the audit's flips
MAX_TRIES = 60  # folds tried before the search gives up


@dataclass(frozen=True)
class Trial:
    """One clamp tried: where (sites joined by +), its rank, the audit's metric on the folded model, and the clean
    accuracy's change with its paired bootstrap interval; ``note`` says why it was not kept."""

    site: str
    rank: int
    metric: float | None = None
    silenced: bool = False
    clean_accuracy: float | None = None
    change: float | None = None
    change_ci: Interval | None = None
    kept: bool = False
    note: str = ""


@dataclass
class Search:
    """The sites' solo flip rates, every trial in order, and the kept repair (None when none was kept)."""

    carriers: dict[str, float]
    trials: list[Trial] = field(default_factory=list)
    edits: tuple[Clamp, ...] = ()
    repaired: RepairedModel | None = None


@dataclass(frozen=True)
class CleanData:
    """Labelled inputs the task is scored on, and the original model's per-example correctness on them."""

    inputs: object
    labels: torch.Tensor
    answers: object
    correct: torch.Tensor

    @property
    def chance(self) -> float:
        return float(torch.bincount(self.labels).max() / len(self.labels))


def as_subject(original: Subject, model, label: str) -> Subject:
    """``model`` (a repaired copy of ``original``'s) as a subject with the original's tokenizer and kind."""
    return Subject(model, original.tokenizer, id=f"{original.id} ({label})", kind=original.kind,
                   device=original.device, metadata=dict(original.metadata))


def carrying_sites(subject: Subject, pairs, shortcut: Shortcut, seed: int) -> dict[str, float]:
    """Each site up to the audit's block (embed, then per block its heads, attention and MLP) whose patch alone
    flips at least CARRIES of what the audit's patch did, with that flip rate; earliest first."""
    last = _block_of(shortcut.site, subject.n_layers)
    names = ["embed"] + [name for layer in range(last + 1) for name in (
        *(s.name for s in expand_sites(subject.model, f"head:{layer}.*")), f"attn:{layer}", f"mlp:{layer}")]
    rates = {name: patch(subject, pairs, name, shortcut.positions, seed=seed).flip_rate for name in names}
    return {name: rate for name, rate in rates.items() if rate >= CARRIES * shortcut.value and rate > 0}


def search(subject: Subject, pairs, shortcut: Shortcut, clean: CleanData, max_loss: float, seed: int,
           say: Callable[[str], None] = lambda message: None) -> Search:
    """Try clamps at the carrying sites, smallest first, until one passes the audit's bound on the folded model
    with a clean-accuracy change whose interval lies above ``-max_loss``."""
    found = Search(carrying_sites(subject, pairs, shortcut, seed))
    say(f"sites carrying the shortcut: {', '.join(found.carriers) or 'none'}")
    spans = {site: _span(subject, pairs, site) for site in found.carriers}
    for rank in RANKS:
        for sites in _site_sets(list(found.carriers)):
            if any(rank > 1 and rank > min(spans[site][0].shape) for site in sites):
                continue
            if len(found.trials) >= MAX_TRIES:
                return found
            edits = tuple(_clamp(subject, site, rank, *spans[site]) for site in sites)
            trial, repaired = _try(subject, pairs, shortcut, clean, edits, max_loss, seed, rank)
            found.trials.append(trial)
            say(f"clamp rank {rank} at {trial.site}: {shortcut.metric} "
                f"{'-' if trial.metric is None else f'{trial.metric:.3f}'}, clean accuracy change "
                f"{'-' if trial.change is None else f'{trial.change:+.3f}'}{' (kept)' if trial.kept else ''}")
            if trial.kept:
                found.edits, found.repaired = edits, repaired
                return found
    return found


def _site_sets(carriers: list[str]) -> list[tuple[str, ...]]:
    """Each site alone (earliest first), then the carrying sites of each block together, then all of them."""
    sets = [(site,) for site in carriers]
    blocks: dict[str, list[str]] = {}
    for site in carriers:
        if site != "embed":
            blocks.setdefault(site.split(":")[1].split(".")[0], []).append(site)
    sets += [tuple(group) for group in blocks.values() if len(group) > 1]
    if len(carriers) > 1 and tuple(carriers) not in sets:
        sets.append(tuple(carriers))
    return sets


def _clamp(subject, site: str, rank: int, differences: torch.Tensor, activations: torch.Tensor) -> Clamp:
    directions = torch.linalg.svd(differences.double(), full_matrices=False).Vh[:rank]
    inverse = torch.linalg.pinv(torch.cov(activations.double().T), hermitian=True, rtol=1e-6)
    reading = torch.linalg.solve(directions @ inverse @ directions.T, directions @ inverse)
    return Clamp(subject.site(site), directions, activations.double().mean(0), reading)


def _try(subject, pairs, shortcut, clean, edits, max_loss, seed, rank) -> tuple[Trial, RepairedModel]:
    repaired = repair(subject, *edits)
    where = dict(site=" + ".join(e.site.name for e in edits), rank=rank)
    if repaired.hooked:
        return Trial(**where, note=f"no weight holds it: {repaired.hooked[0].reason}"), repaired
    candidate = as_subject(subject, repaired.model, "repair candidate")
    metric = getattr(patch(candidate, pairs, shortcut.site, shortcut.positions, seed=seed), shortcut.metric)
    after = behaviour(candidate, clean.inputs, clean.labels, answer_tokens=clean.answers).correct
    interval = paired_difference(clean.correct.numpy(), after.numpy(), seed)
    silenced, holds = shortcut.holds(metric), interval is not None and interval.low >= -max_loss
    note = "" if silenced and holds else (f"{shortcut.metric} {metric:.3f} misses {shortcut.op} {shortcut.bound}"
                                          if not silenced else f"clean accuracy change interval {interval} reaches "
                                          f"below -{max_loss}")
    return Trial(**where, metric=float(metric), silenced=silenced, clean_accuracy=float(after.mean()),
                 change=float(after.mean() - clean.correct.mean()), change_ci=interval, kept=silenced and holds,
                 note=note), repaired


def _span(subject, pairs, site) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs' differences at ``site`` ([m, d], at the real positions where they differ) and every real
    activation of both members there ([n, d]: their mean and covariance)."""
    base, source, _ = pairs.pair_inputs(subject)
    at_base = capture(subject, base, site, position="all")
    at_source = capture(subject, source, site, position="all")
    if at_base.ndim == 2:  # one vector per example
        real = torch.ones(at_base.shape[0], dtype=torch.bool)
    else:
        real = base.attention_mask.bool() & source.attention_mask.bool()
    gaps = at_source[real] - at_base[real]
    differ = gaps.norm(dim=1) > 1e-4 * gaps.norm(dim=1).max().clamp_min(1e-12)
    return gaps[differ], torch.cat([at_base[real], at_source[real]])


def _block_of(site: str, layers: int) -> int:
    """The last block a site lies in (every block for a module path or embed-only for ``embed``)."""
    for kind in ("layer:", "attn:", "mlp:", "neurons:", "neuron:", "head:"):
        if site.startswith(kind):
            index = int(site.removeprefix(kind).split(".")[0])
            return index % layers
    return -1 if site == "embed" else layers - 1


def why_not_cured(found: Search, clean: CleanData, shortcut: Shortcut, max_loss: float) -> str:
    """Why no trial was kept, from the trials: a full cheater's silencing edits leave it at chance."""
    if not found.carriers:
        return (f"no site up to {shortcut.site} carries the shortcut (patching none alone reproduces half of the "
                f"audit's {shortcut.metric} {shortcut.value:.3f}), so there is no place to edit")
    silenced = [t for t in found.trials if t.silenced and t.clean_accuracy is not None]
    if not silenced:
        tried = [t for t in found.trials if t.metric is not None]
        best = min(tried, key=lambda t: t.metric, default=None)
        return ("no edit tried silences the shortcut" + ("" if best is None else
                f"; the closest, rank {best.rank} at {best.site}, left {shortcut.metric} {best.metric:.3f}"))
    best = max(silenced, key=lambda t: t.clean_accuracy)
    before = float(clean.correct.mean())
    if best.clean_accuracy <= clean.chance + 0.1:
        return (f"without the shortcut the model does not do the task: every edit that silences it leaves clean "
                f"accuracy at chance ({before:.3f} -> at best {best.clean_accuracy:.3f}, chance {clean.chance:.3f}, "
                f"rank {best.rank} at {best.site}). It never learned the task (a full cheater), and no weight edit "
                "adds a task the model does not compute: retrain it on data where the shortcut does not pay")
    return (f"every edit that silences the shortcut costs clean accuracy beyond the allowed {max_loss:.3f}: the "
            f"best, rank {best.rank} at {best.site}, takes it from {before:.3f} to {best.clean_accuracy:.3f} "
            f"(change interval {best.change_ci})")
