"""das: distributed alignment search. Is there a ``dim``-dimensional subspace at a site that, patched from
counterfactual sources, makes the model answer as the concept's pairs expect (Geiger et al. 2023)?

The subspace is learned by interchange training on a seeded share of the pairs and judged on the
rest (IIA, with a Wilson interval). Two checks keep it honest: a control run of the same training
on labels shuffled across pairs (labels that carry no variable: ``selectivity = iia - control_iia``),
and the illusion check of Makelov et al. 2023 (``auditlens.alignment.illusion``: ``dormant_share``,
``iia_without_dormant``)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch

from ..alignment.illusion import dormant_share, pair_differences, read_part, read_subspace, unread_share
from ..alignment.interchange import SubspaceInterchange, check_alignment
from ..alignment.training import Budget, train_directions
from ..concepts.concept import Concept
from ..engine import run
from ..errors import CheckError, ConceptError
from ..readout import readout_for
from ..results import CheckResult, Example
from ..settings import seed_or_default
from ..stats import Interval, bootstrap_mean, wilson
from .behaviour_change import behaviour
from .das_sweep import DASSweep, sweep_sites

MIN_HELD_OUT = 10  # held-out pairs (and training pairs) at least: fewer make IIA's interval uninformative


@dataclass(frozen=True, kw_only=True)
class DASResult(CheckResult):
    """Held-out IIA of a learned ``dim``-dimensional subspace at a site, its shuffled-label control, and the
    illusion check. Fractions in [0, 1]; intervals 95% (Wilson for IIAs, bootstrap for selectivity)."""

    mechanistic = True
    figure_metrics = ("iia", "control_iia")
    saved_tensors = ("directions",)  # a session writes them beside its report (report.tensors)

    concept: str = ""
    dim: int = 1
    position: str = "last"
    iia: float = 0.0  # held-out pairs whose patched prediction is the expected label
    iia_ci: Interval | None = None
    control_iia: float = 0.0  # the same, trained and judged on labels shuffled across pairs
    control_iia_ci: Interval | None = None
    selectivity: float = 0.0  # iia - control_iia
    selectivity_ci: Interval | None = None
    unpatched_iia: float = 0.0  # held-out pairs whose base alone already gives the expected label
    dormant_share: float = 0.0  # share of what the interchange transfers through the unread part (alignment.illusion)
    unread_share: float = 0.0  # share of the subspace itself outside what the answer reads (0: all read)
    iia_without_dormant: float = 0.0  # IIA with only the read part of the subspace
    iia_without_dormant_ci: Interval | None = None
    seconds_at_site: float = 0.0  # wall time of the whole check at this site (seconds_*: a timing, not a result)
    train_pairs: int = 0
    held_out_pairs: int = 0
    steps: int = 0  # optimizer steps of the main training
    stopped: str = ""  # why the main training stopped: plateau, max_steps, max_seconds or unread (see Fit)
    directions: torch.Tensor | None = dataclasses.field(default=None, repr=False, compare=False)  # [dim, d]
    examples: tuple[Example, ...] = ()

    def headline(self) -> str:
        return (f"DAS at {self.site} (dim {self.dim}, position {self.position}) for {self.concept!r} on "
                f"{self.subject}: trained on {self.train_pairs} pairs, judged on {self.held_out_pairs} held out")

    def vacuous_reason(self, metric: str, op: str) -> str | None:
        """A lower bound on IIA proves nothing when the unpatched bases meet it as well."""
        if metric != "iia" or op not in (">=", ">") or float(self.unpatched_iia) < float(self.iia) - 0.05:
            return None
        return (f"the bases alone give the expected label on {float(self.unpatched_iia):.3f} of the held-out pairs "
                f"(IIA {float(self.iia):.3f}): the pairs expect what the model says without any patch")

    def note(self) -> str | None:
        notes = []
        works = float(self.iia) > float(self.unpatched_iia) + 0.05  # an illusion is a patch that works
        # ...and works through what the answer does not read: the read part alone must lose IIA (a subspace with
        # unread slack whose read part keeps every answer is no illusion, however large dormant_share is)
        if works and float(self.iia_without_dormant) < float(self.iia) - 0.1:
            notes.append(f"{float(self.dormant_share):.0%} of what the patch transfers passes through directions the "
                         f"answer does not read, and with only the read part IIA is "
                         f"{float(self.iia_without_dormant):.3f} (not {float(self.iia):.3f}): the "
                         "subspace may work by switching on a dormant pathway (an interpretability illusion, "
                         "Makelov et al. 2023), not where the model keeps the variable")
        if float(self.unpatched_iia) >= float(self.iia) - 0.05:
            notes.append(f"the bases alone already give the expected label on {float(self.unpatched_iia):.0%} of the "
                         "held-out pairs: IIA shows nothing the patch did")
        if float(self.control_iia) >= float(self.iia) - 0.1:
            notes.append(f"training on shuffled labels reaches IIA {float(self.control_iia):.3f}: the subspace "
                         "fits labels that carry no variable as well, so its IIA shows no variable at this site")
        if self.stopped == "unread":
            notes.append("the answer does not depend on this site at all: no subspace of it can move the answer")
        if self.stopped in ("max_steps", "max_seconds"):
            notes.append(f"training stopped at its budget ({self.stopped}) before the loss levelled off: IIA "
                         "may be underestimated")
        return "; ".join(notes) or None

    def to_dict(self) -> dict:
        data = super().to_dict()
        if self.directions is not None:  # the directions themselves: save_directions
            data["directions_shape"] = list(self.directions.shape)
        return data


def das(subject, pairs: Concept, at: str, dim: int = 1, position="last", *, seed: int | None = None,
        train_share: float = 0.7, max_steps: int = 1000, max_seconds: float = 120.0, patience: int = 10,
        batch_size: int = 64, learning_rate: float | None = None, read_energy: float = 0.99
        ) -> DASResult | DASSweep:
    """Learn ``dim`` orthonormal directions at ``at`` by interchange training on ``pairs`` and report IIA
    on held-out pairs.

    ``pairs``: a concept with counterfactual pairs (base, source, expected label). ``at``: any site
    (block, sublayer, ``head:L.H``, a dictionary's latents), or ``layer:*`` for one DAS per block (a
    ``DASSweep``). ``position``: "last" (last real token of base and of source), "first", an int index,
    or "all" (every token; bases and sources of equal length). Training: Adam on the cross-entropy of the
    answer against the expected label, ``train_share`` of the pairs (seeded), until the loss levels off
    (``patience`` epochs) or ``max_steps`` / ``max_seconds`` (each per training run: the main one and the
    control). ``read_energy``: the share of gradient energy the illusion check's read subspace holds.
    Deterministic for a seed on one device.
    """
    seed = seed_or_default(seed)
    _check_arguments(dim, train_share, max_steps, max_seconds, patience, batch_size, read_energy)
    base, source, expected = pairs.pair_inputs(subject)
    check_alignment(base, source, position, pairs.name)
    train, held_out = _split(len(expected), train_share, seed, pairs.name)
    readout = readout_for(subject, pairs.answer_token_ids(subject))
    sites = sweep_sites(subject, at)
    started = time.perf_counter()
    sources = run(subject, source, sites=sites, position=position, keep_on_device=True).activations
    bases = run(subject, base, sites=sites, position=position, keep_on_device=True).activations
    capture_seconds = (time.perf_counter() - started) / len(sites)
    budget = Budget(max_steps, max_seconds, patience, batch_size=batch_size, learning_rate=learning_rate)
    shuffled = expected[torch.randperm(len(expected), generator=torch.Generator().manual_seed(seed + 1))]
    context = _Context(subject, pairs, base, expected, shuffled, train, held_out, readout, position, dim, seed,
                       budget, read_energy)

    def at_site(site):
        return _das_at_site(context, site, bases[site.name], sources[site.name], capture_seconds)

    if len(sites) == 1 and "*" not in at:
        return at_site(sites[0])
    return DASSweep.of(subject, pairs, at, dim, position, sites, at_site)


@dataclass(frozen=True)
class _Context:
    """What every site of one das call shares: the pairs, their split, the readout and the settings."""

    subject: object
    pairs: Concept
    base: object
    expected: torch.Tensor
    shuffled: torch.Tensor
    train: torch.Tensor
    held_out: torch.Tensor
    readout: object
    position: object
    dim: int
    seed: int
    budget: Budget
    read_energy: float


def _das_at_site(c: _Context, site, base: torch.Tensor, source: torch.Tensor, capture_seconds: float) -> DASResult:
    started = time.perf_counter()
    width = source.shape[-1]
    if c.dim > width:
        raise CheckError(f"das dim={c.dim} at {site.name!r}: the site's activation is {width} wide, so dim must be "
                         f"1..{width}")
    train_base, held_base = c.base.select(c.train), c.base.select(c.held_out)
    train_source, held_source = source[c.train.to(source.device)], source[c.held_out.to(source.device)]

    def fit(labels, seed):
        return train_directions(c.subject, site, train_base, train_source, labels[c.train], c.readout, c.position,
                                c.dim, seed, c.budget)

    main, control = fit(c.expected, c.seed), fit(c.shuffled, c.seed + 2)
    read = read_subspace(c.subject, site, train_base, train_source, main.directions, c.readout, c.position, c.seed,
                         c.read_energy)
    differences = pair_differences(base[c.train.to(base.device)], train_source, train_base.attention_mask)
    answers, held_labels = c.pairs.answer_token_ids(c.subject), c.expected[c.held_out]

    def patched(basis, labels):
        interchange = SubspaceInterchange(site, basis.to(source.device), held_source, c.position)
        return behaviour(c.subject, held_base, labels, [interchange], answer_tokens=answers)

    clean = behaviour(c.subject, held_base, held_labels, answer_tokens=answers)
    learned = patched(main.directions, held_labels)
    follows = learned.correct
    control_follows = patched(control.directions, c.shuffled[c.held_out]).correct
    without = patched(read_part(main.directions, read), held_labels)
    n = len(held_labels)
    return DASResult(
        check="das", subject=c.subject.id, site=site.name, n=len(c.expected), concept=c.pairs.name, dim=c.dim,
        position=str(c.position), iia=float(follows.mean()), iia_ci=wilson(int(follows.sum()), n),
        control_iia=float(control_follows.mean()), control_iia_ci=wilson(int(control_follows.sum()), n),
        selectivity=float(follows.mean() - control_follows.mean()),
        selectivity_ci=bootstrap_mean((follows - control_follows).numpy(), c.seed, what="DAS selectivity"),
        unpatched_iia=float(clean.correct.mean()), dormant_share=dormant_share(main.directions, read, differences),
        unread_share=unread_share(main.directions, read),
        iia_without_dormant=float(without.correct.mean()),
        iia_without_dormant_ci=wilson(int(without.correct.sum()), n),
        seconds_at_site=time.perf_counter() - started + capture_seconds, train_pairs=len(c.train), held_out_pairs=n,
        steps=main.steps, stopped=main.stopped, directions=main.directions,
        examples=_examples(c, held_base, clean.predictions, learned.predictions, held_labels),
        per_example={"iia": follows, "control_iia": control_follows, "selectivity": follows - control_follows,
                     "iia_without_dormant": without.correct},
        data_digest=f"{c.base.digest}:{held_base.digest}",
    )


def _examples(c: _Context, held_base, clean, patched, expected, limit: int = 5) -> tuple[Example, ...]:
    """Held-out pairs as evidence, those the subspace failed first."""
    order = sorted(range(len(expected)), key=lambda i: (bool(patched[i] == expected[i]), i))[:limit]
    source = c.pairs.pair_inputs(c.subject)[1].select(c.held_out)
    name = c.pairs.label_name
    return tuple(Example(f"{held_base.describe(i)}  <=  {source.describe(i)}",
                         f"patched prediction {name(int(patched[i]))} (expected {name(int(expected[i]))}; "
                         f"base alone {name(int(clean[i]))})") for i in order)


def _split(n: int, train_share: float, seed: int, concept: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded indices of the training and the held-out pairs."""
    n_train = int(n * train_share)
    if n_train < MIN_HELD_OUT or n - n_train < MIN_HELD_OUT:
        raise ConceptError(f"das trains on {train_share:.0%} of the pairs and judges on the rest, and needs at least "
                           f"{MIN_HELD_OUT} of each; concept {concept!r} has {n} pairs ({n_train} to train, "
                           f"{n - n_train} held out). Add pairs or change train_share=")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:n_train].sort().values, order[n_train:].sort().values


def _check_arguments(dim, train_share, max_steps, max_seconds, patience, batch_size, read_energy) -> None:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise CheckError(f"das dim is the number of directions to learn, a whole number from 1 to the site's width; "
                         f"got {dim!r}")
    checks = [("train_share", train_share, 0 < train_share < 1, "between 0 and 1 (exclusive)"),
              ("max_steps", max_steps, max_steps >= 1, "at least 1"),
              ("max_seconds", max_seconds, max_seconds > 0, "above 0"),
              ("patience", patience, patience >= 1, "at least 1"),
              ("batch_size", batch_size, batch_size >= 1, "at least 1"),
              ("read_energy", read_energy, 0 < read_energy <= 1, "in (0, 1]")]
    for name, value, valid, allowed in checks:
        if not valid:
            raise CheckError(f"das {name} must be {allowed}; got {value!r}")


def save_directions(result: DASResult, path) -> None:
    """Write ``result``'s directions ([dim, d], float32) to a safetensors file under the key ``directions``,
    with the site, dim, position, subject, concept and IIA as metadata."""
    from safetensors.torch import save_file

    if not isinstance(result, DASResult) or result.directions is None:
        raise CheckError(f"save_directions needs a DASResult with directions; got {type(result).__name__} (from a "
                         "sweep, save one site's result: sweep['layer:1'])")
    metadata = {"site": result.site, "dim": str(result.dim), "position": result.position, "subject": result.subject,
                "concept": result.concept, "iia": f"{float(result.iia):.6f}", "format": "auditlens.das/1"}
    save_file({"directions": result.directions.float().contiguous()}, str(path), metadata=metadata)
