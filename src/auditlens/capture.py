"""Capture: run a subject over inputs in batches, reduce activations at hook time, cache results.

One call of :func:`run` makes at most one forward pass per batch, whatever it reads: several
sites, the behaviour readout, under any interventions. Results already in the cache cost none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from . import read_ahead
from .accounting import need_id
from .activation_cache import ActivationCache, session_cache
from .errors import CaptureError
from .hooks import Batch, current_batch, hooked
from .inputs import Inputs
from .interventions import Intervention, intervene
from .sites import Site

POSITIONS = ("last", "first", "mean", "all")
DEFAULT_BATCH_SIZE = 64


def check_position(position) -> None:
    if isinstance(position, bool) or not (isinstance(position, int) or position in POSITIONS):
        raise CaptureError(f"position must be one of {', '.join(POSITIONS)} or an int index; got {position!r}")


def reduce(activation: torch.Tensor, mask: torch.Tensor, position, site: Site, indices) -> torch.Tensor:
    """[b, t, d] -> [b, d] (or [b, t, d] for "all") at the real tokens given by ``mask``."""
    if activation.ndim == 2:  # already one vector per example (e.g. a pooler)
        if position == "all":
            raise CaptureError(f"site {site.name!r} has one vector per example; position='all' needs [n, t, d]")
        return activation
    if activation.ndim != 3 or activation.shape[:2] != mask.shape:
        raise CaptureError(
            f"site {site.name!r} gives activations of shape {tuple(activation.shape)}; expected "
            f"[batch, tokens, d] = [{mask.shape[0]}, {mask.shape[1]}, d]"
        )
    mask = mask.to(activation.device)
    t = mask.shape[1]
    arange = torch.arange(t, device=mask.device)
    rows = torch.arange(mask.shape[0], device=mask.device)
    if position == "all":  # zero the padding (if any), so results do not depend on the pad token
        return activation if bool(mask.all()) else activation * mask.unsqueeze(-1).to(activation.dtype)
    if position == "mean":
        weights = mask.unsqueeze(-1).to(activation.dtype)
        return (activation * weights).sum(1) / weights.sum(1)
    first = mask.argmax(dim=1)
    last = (mask * arange).argmax(dim=1)
    if position == "first":
        return activation[rows, first]
    if position == "last":
        return activation[rows, last]
    index = first + position if position >= 0 else last + 1 + position
    outside = (index < first) | (index > last)
    if outside.any():
        bad = indices[outside.cpu()].tolist()[:5]
        raise CaptureError(f"position {position} is outside examples {bad} at site {site.name!r} (too short)")
    return activation[rows, index]




@dataclass(frozen=True)
class RunResult:
    activations: dict[str, torch.Tensor]  # by site name: [n, d] or [n, t, d], float32 on CPU
    scores: torch.Tensor | None  # [n, C] behaviour readout, float32 on CPU


def run(
    subject,
    inputs: Inputs,
    *,
    sites: Sequence[Site | str] = (),
    position="last",
    interventions: Sequence[Intervention] = (),
    readout=None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache: ActivationCache | None = session_cache,
) -> RunResult:
    """Activations at ``sites`` and/or the ``readout`` scores of ``subject`` on ``inputs``.

    What the cache holds costs no forward pass; otherwise one pass per batch reads everything
    missing, plus what ``read_ahead`` plans for later checks on the same inputs.
    """
    check_position(position)
    resolved = [subject.site(s) for s in sites]
    scope = (subject.fingerprint, inputs.digest, tuple(iv.key for iv in interventions))
    subject.needs.append(need_id(inputs.digest, scope[2], len(inputs), batch_size))

    def key_of(what: tuple) -> tuple:
        return scope + (("readout", what[1]) if what[0] == "readout" else ("site", *what))

    site_key = {s.name: key_of((s.module_path, s.reads_input, position)) for s in resolved}
    found = {name: cache.get(key) for name, key in site_key.items()} if cache is not None else {}
    scores = _cached_scores(cache, readout, key_of) if readout is not None else None
    missing = [s for s in resolved if found.get(s.name) is None]
    wanted = readout if readout is not None and scores is None else None
    if cache is not None:
        for site in resolved:
            cache.note_read(subject.fingerprint, ("site", site, position))
        if readout is not None:
            cache.note_read(subject.fingerprint, ("readout", readout))
    if missing or wanted is not None:
        extras = read_ahead.plan(subject, len(inputs), position, missing, wanted, cache, key_of) \
            if cache is not None else read_ahead.Extras()
        reads = [(s, position, False) for s in missing] + [(s, at, True) for s, at in extras.sites]
        readouts = ([(wanted, False)] if wanted is not None else []) + [(r, True) for r in extras.readouts]
        site_values, readout_values = _forward(subject, inputs, reads, readouts, interventions, batch_size)
        for (site, at, optional), value in zip(reads, site_values):
            if value is None:  # an extra that could not be read
                continue
            if not optional:
                found[site.name] = value
            if cache is not None:
                cache.put(key_of((site.module_path, site.reads_input, at)), value, disk=not optional)
        for (candidate, optional), value in zip(readouts, readout_values):
            if value is None:
                continue
            if not optional:
                scores = value
            if cache is not None:
                cache.put(key_of(("readout", candidate.key)), value, disk=not optional)
    return RunResult({s.name: found[s.name] for s in resolved}, scores)


def _cached_scores(cache, readout, key_of) -> torch.Tensor | None:
    """The readout's scores from the cache, or derived from a cached readout they are part of."""
    if cache is None:
        return None
    scores = cache.get(key_of(("readout", readout.key)))
    base = getattr(readout, "base", None)
    if scores is None and base is not None and key_of(("readout", base.key)) in cache:
        scores = readout.from_base(cache.get(key_of(("readout", base.key))))
    return scores


class _Filler:
    """Writes batches of one read into a preallocated [n, ...] tensor: no list of parts, no final copy."""

    def __init__(self, n_examples: int, width: int | None):
        self.n_examples, self.width = n_examples, width  # width: the inputs' token axis, for position="all"
        self.tensor: torch.Tensor | None = None
        self.filled = 0
        self.failed = False

    def add(self, start: int, part: torch.Tensor) -> None:
        if self.tensor is None:
            shape = (self.n_examples, *part.shape[1:])
            if self.width is not None:
                shape = (self.n_examples, self.width, *part.shape[2:])
            with torch.inference_mode(False):  # an ordinary tensor: the caller may edit it in place
                self.tensor = torch.empty(shape, dtype=torch.float32)
        rows = slice(start, start + part.shape[0])
        if self.width is None:
            self.tensor[rows].copy_(part.detach())
        else:  # a batch cut to its longest example: zero the token positions beyond it
            self.tensor[rows, : part.shape[1]].copy_(part.detach())
            self.tensor[rows, part.shape[1]:].zero_()
        self.filled += part.shape[0]

    def result(self) -> torch.Tensor | None:
        return self.tensor if not self.failed and self.filled == self.n_examples else None


def _forward(subject, inputs, reads, readouts, interventions, batch_size):
    """One pass per batch. ``reads``: (site, position, optional) triples; ``readouts``: (readout,
    optional) pairs. Returns their values in order; an optional read that failed gives None."""
    n_examples, width = len(inputs), inputs.input_ids.shape[1]
    site_fillers = [_Filler(n_examples, width if at == "all" else None) for _, at, _ in reads]
    readout_fillers = [_Filler(n_examples, None) for _ in readouts]
    by_module: dict[tuple, list[int]] = {}
    for index, (site, _, _) in enumerate(reads):
        by_module.setdefault((site.module_path, site.reads_input), []).append(index)

    def reader(indices: list[int]):
        def read(activation, batch: Batch):
            mask = batch.attention_mask if batch.attention_mask is not None else torch.ones(activation.shape[:2])
            start = int(batch.indices[0])
            for index in indices:
                site, at, optional = reads[index]
                filler = site_fillers[index]
                if filler.failed:
                    continue
                try:
                    filler.add(start, reduce(activation, mask, at, site, batch.indices))
                except CaptureError:
                    if not optional:
                        raise
                    filler.failed = True
            return None

        return read

    hooks = [(reads[indices[0]][0], reader(indices)) for indices in by_module.values()]
    model = subject.model
    with torch.inference_mode(), intervene(model, *interventions), hooked(model, hooks):
        for indices, batch in inputs.batches(batch_size):
            token = current_batch.set(Batch(indices, batch.attention_mask))
            try:
                output = model(
                    input_ids=batch.input_ids.to(subject.device),
                    attention_mask=batch.attention_mask.to(subject.device),
                )
            finally:
                current_batch.reset(token)
            subject.forward_passes += 1
            for (candidate, _), filler in zip(readouts, readout_fillers):
                filler.add(int(indices[0]), candidate.reduce(output, Batch(indices, batch.attention_mask)))
    site_values = [_checked(f, site.name, "activations", optional) for f, (site, _, optional) in zip(site_fillers, reads)]
    readout_values = [_checked(f, "the output", "scores", optional) for f, (_, optional) in zip(readout_fillers, readouts)]
    return site_values, readout_values


def _checked(filler: _Filler, where: str, what: str, optional: bool) -> torch.Tensor | None:
    """The filled tensor, checked: NaN or inf fails what was asked for; an extra holding them is dropped."""
    value = filler.result()
    if value is None:
        if not optional:
            raise CaptureError(f"{what} at {where!r} were not produced for every example: was the module called "
                               f"once per forward pass ({filler.filled} of {filler.n_examples} rows)?")
        return None
    if not optional:
        _check_finite(value, where, what)
        return value
    return value if bool(torch.isfinite(value.sum())) else None


def _check_finite(tensor: torch.Tensor, where: str, what: str) -> None:
    if bool(torch.isfinite(tensor.sum())):  # one reduction clears the common case
        return
    bad = ~torch.isfinite(tensor)
    if bad.any():
        rows = bad.reshape(bad.shape[0], -1).any(dim=1).nonzero().flatten().tolist()
        raise CaptureError(f"{what} at {where!r} hold NaN or inf for examples {rows[:5]} ({len(rows)} in all)")


def capture(subject, inputs: Inputs, at: str | Site | Sequence[str | Site], position="last", **options):
    """Activations at one site ([n, d] / [n, t, d]), or a dict of them for a list of sites."""
    if isinstance(at, (str, Site)):
        return run(subject, inputs, sites=[at], position=position, **options).activations[str(at)]
    return run(subject, inputs, sites=list(at), position=position, **options).activations
