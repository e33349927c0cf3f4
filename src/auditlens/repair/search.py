"""Trying edits smallest first. An ``EditSource`` (``sources``) gives the sites that carry the shortcut, the
edit of a site at a rank, and the audit's own metric. Ranks are tried in order. Within a rank, one site comes
first (the earliest first), then the sites of one block together, then every carrying site. A try is folded
into a copy of the model and kept when the audit's metric meets its bound and the clean-accuracy change's
paired bootstrap interval lies above ``-max_loss``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from ..checks.behaviour_change import behaviour
from ..stats import Interval, paired_difference
from ..subject import Subject
from .evidence import Shortcut
from .export import RepairedModel
from .fold import repair, why_it_stays_a_hook
from .sources import EditSource

MAX_TRIES = 60  # folds tried before the search gives up
AT_CHANCE = 0.1  # clean accuracy within this of the commonest class's share is chance: the task is not done
MAX_REAUDITS = 3  # candidates re-audited by the whole suite (a pytest run each) before the search gives up


@dataclass(frozen=True)
class Trial:
    """One edit tried: where (sites joined by +), its rank and what it holds the nuisance at, the audit's
    metric on the folded model, and the clean accuracy's change with its paired bootstrap interval; ``note``
    says why it was not kept."""

    site: str
    rank: int
    held_at: str = ""
    metric: float | None = None
    silenced: bool = False
    clean_accuracy: float | None = None
    change: float | None = None
    change_ci: Interval | None = None
    kept: bool = False
    note: str = ""
    reaudit: str | None = None  # None: not re-audited; "": the suite passed; else the audits that failed


@dataclass
class Search:
    """The sites' solo flip rates, every trial in order, the carrying sites no weight can hold an edit of (with
    the reason), and the kept repair (None when none was kept)."""

    carriers: dict[str, float | None]
    trials: list[Trial] = field(default_factory=list)
    unholdable: dict[str, str] = field(default_factory=dict)  # carrying site -> why no weight holds its edit
    edits: tuple = ()
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
    """``model`` (a repaired copy of ``original``'s) as a subject with the original's tokenizer, kind, device
    and metadata, made the way every subject is (``load_subject``)."""
    from ..loading import load_subject

    subject = load_subject(model, tokenizer=original.tokenizer, kind=original.kind, device=original.device,
                           id=f"{original.id} ({label})")
    subject.metadata.update(original.metadata)
    return subject


def search(subject: Subject, source: EditSource, shortcut: Shortcut, clean: CleanData, max_loss: float, seed: int,
           say: Callable[[str], None] = lambda message: None,
           reaudit: Callable[[tuple, RepairedModel], str] | None = None) -> Search:
    """Try ``source``'s edits at its carrying sites, smallest first, until one passes the audit's bound on the
    folded model with a clean-accuracy change whose interval lies above ``-max_loss`` and, when ``reaudit`` is
    given, the whole suite (``reaudit`` returns the audits that fail, "" for none; at most MAX_REAUDITS
    candidates). A carrying site no weight can hold is said up front and passed over: the search moves on to the
    sites that can."""
    found = Search(source.carriers)
    say(f"sites carrying the shortcut: {', '.join(found.carriers) or 'none'}")
    holding = []
    for site in found.carriers:
        edit = source.edit(site, 1, source.values[0])
        reason = "no edit of it" if edit is None else why_it_stays_a_hook(subject.model, edit)
        if reason is None:
            holding.append(site)
        else:
            found.unholdable[site] = reason
            say(f"{site} carries the shortcut but cannot hold an edit: {reason}")
    if found.carriers and not holding:
        say("no site that carries the shortcut can hold an edit: nothing to try")
    for rank, value, sites in ((r, v, s) for r in source.ranks for v in source.values for s in _site_sets(holding)):
        edits = tuple(source.edit(site, rank, value) for site in sites)
        if any(e is None for e in edits):
            continue
        if len(found.trials) >= MAX_TRIES:
            return found
        trial, repaired = _try(subject, source, shortcut, clean, edits, max_loss, seed, rank, value)
        found.trials.append(trial)
        held = f" held at {value}" if value else ""
        say(f"{source.kind} rank {rank}{held} at {trial.site}: {shortcut.metric} "
            f"{'-' if trial.metric is None else f'{trial.metric:.3f}'}, clean accuracy change "
            f"{'-' if trial.change is None else f'{trial.change:+.3f}'}: "
            f"{'kept' if trial.kept else f'not kept, {trial.note}'}")
        if trial.kept and reaudit is not None:
            if sum(t.reaudit is not None for t in found.trials) >= MAX_REAUDITS:
                found.trials[-1] = replace(trial, kept=False, note=f"not re-audited: {MAX_REAUDITS} candidates "
                                           "already failed the suite")
                return found
            failing = reaudit(edits, repaired)
            trial = found.trials[-1] = replace(trial, kept=not failing, reaudit=failing,
                                               note=f"the re-audit fails: {failing}" if failing else "")
            say(f"re-audit of rank {rank}{held} at {trial.site}: "
                f"{'every audit passes' if not failing else f'fails {failing}; the search goes on'}")
        if trial.kept:
            found.edits, found.repaired = edits, repaired
            return found
    return found


def _site_sets(carriers: list[str]) -> list[tuple[str, ...]]:
    """Each site alone (earliest first), then the carrying sites of each block together, then all of them."""
    sets = [(site,) for site in carriers]
    blocks: dict[str, list[str]] = {}
    for site in carriers:
        if not site.startswith("embed"):
            blocks.setdefault(site.split(":")[1].split(".")[0], []).append(site)
    sets += [tuple(group) for group in blocks.values() if len(group) > 1]
    if len(carriers) > 1 and tuple(carriers) not in sets:
        sets.append(tuple(carriers))
    return sets


def _try(subject, source, shortcut, clean, edits, max_loss, seed, rank, value) -> tuple[Trial, RepairedModel]:
    repaired = repair(subject, *edits)
    where = dict(site=" + ".join(e.site.name for e in edits), rank=rank, held_at=value)
    if repaired.hooked:
        return Trial(**where, note=f"no weight holds it: {repaired.hooked[0].reason}"), repaired
    candidate = as_subject(subject, repaired.model, "repair candidate")
    metric = source.measure(candidate)
    after = behaviour(candidate, clean.inputs, clean.labels, answer_tokens=clean.answers).correct
    interval = paired_difference(clean.correct.numpy(), after.numpy(), seed)
    silenced, holds = shortcut.holds(metric), interval is not None and interval.low >= -max_loss
    does_the_task = float(after.mean()) > clean.chance + AT_CHANCE  # at chance is no cure, however little it lost
    if not silenced:
        note = f"{shortcut.metric} {metric:.3f} misses {shortcut.op} {shortcut.bound}"
    elif not holds:
        note = f"clean accuracy change interval {interval} reaches below -{max_loss}"
    elif not does_the_task:
        note = f"clean accuracy {float(after.mean()):.3f} is at chance ({clean.chance:.3f}): the task is not done"
    else:
        note = ""
    return Trial(**where, metric=float(metric), silenced=silenced, clean_accuracy=float(after.mean()),
                 change=float(after.mean() - clean.correct.mean()), change_ci=interval,
                 kept=silenced and holds and does_the_task, note=note), repaired


def why_not_cured(found: Search, clean: CleanData, shortcut: Shortcut, max_loss: float) -> str:
    """Why no trial was kept, from the trials: a full cheater's silencing edits leave it at chance."""
    if not found.carriers:
        return (f"no site up to {shortcut.site} carries the shortcut (patching none alone reproduces half of the "
                f"audit's {shortcut.metric} {shortcut.value:.3f}), so there is no place to edit")
    if len(found.unholdable) == len(found.carriers):
        reasons = "; ".join(f"{site}: {reason}" for site, reason in found.unholdable.items())
        return f"no site that carries the shortcut can hold an edit ({reasons})"
    rejected = [t for t in found.trials if t.reaudit]
    if rejected:
        return (f"{len(rejected)} edit(s) silenced the shortcut within the clean-accuracy bound, but the suite's "
                "re-audit failed each: " + "; ".join(f"rank {t.rank} held at {t.held_at} at {t.site} fails "
                                                     f"{t.reaudit}" for t in rejected))
    silenced = [t for t in found.trials if t.silenced and t.clean_accuracy is not None]
    if not silenced:
        tried = [t for t in found.trials if t.metric is not None]
        best = min(tried, key=lambda t: t.metric, default=None)
        return ("no edit tried silences the shortcut" + ("" if best is None else
                f"; the closest, rank {best.rank} at {best.site}, left {shortcut.metric} {best.metric:.3f}"))
    best = max(silenced, key=lambda t: t.clean_accuracy)
    before = float(clean.correct.mean())
    if best.clean_accuracy <= clean.chance + AT_CHANCE:
        return (f"without the shortcut the model does not do the task: every edit that silences it leaves clean "
                f"accuracy at chance ({before:.3f} -> at best {best.clean_accuracy:.3f}, chance {clean.chance:.3f}, "
                f"rank {best.rank} at {best.site}). It never learned the task (a full cheater), and no weight edit "
                "adds a task the model does not compute: retrain it on data where the shortcut does not pay")
    return (f"every edit that silences the shortcut costs clean accuracy beyond the allowed {max_loss:.3f}: the "
            f"best, rank {best.rank} at {best.site}, takes it from {before:.3f} to {best.clean_accuracy:.3f} "
            f"(change interval {best.change_ci})")
