"""Capture: run a subject over inputs in batches, reduce activations at hook time, cache results.

One call of :func:`run` makes at most one forward pass per batch, whatever it reads: several
sites, the behaviour readout, under any interventions. Results already in the cache cost none.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

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


class ActivationCache:
    """Results keyed by (model fingerprint, data hash, interventions, what was read), least recently used first out."""

    def __init__(self, max_bytes: int | None = None, directory: str | None = None):
        default = int(os.environ.get("AUDITLENS_CACHE_MB", "2048")) * 2**20
        self.max_bytes = default if max_bytes is None else max_bytes
        self._items: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.disk = None
        self.use_directory(directory if directory is not None else os.environ.get("AUDITLENS_CACHE_DIR"))

    def use_directory(self, directory: str | None) -> None:
        """Also keep entries on disk in ``directory`` (None: memory only)."""
        from .disk_cache import DiskCache

        self.disk = DiskCache(directory) if directory else None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._items.values())

    def get(self, key: tuple) -> torch.Tensor | None:
        value = self._items.get(key)
        if value is None and self.disk is not None:
            value = self.disk.get(key)
            if value is not None:  # kept in memory too, under the same byte budget
                self._remember(key, value)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return value

    def put(self, key: tuple, value: torch.Tensor) -> None:
        if self.disk is not None:
            self.disk.put(key, value)
        self._remember(key, value)

    def _remember(self, key: tuple, value: torch.Tensor) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > 1 and self.nbytes > self.max_bytes:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


session_cache = ActivationCache()


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
    """Activations at ``sites`` and/or the ``readout`` scores of ``subject`` on ``inputs``."""
    check_position(position)
    resolved = [subject.site(s) for s in sites]
    scope = (subject.fingerprint, inputs.digest, tuple(iv.key for iv in interventions))
    keys = {s.name: scope + ("site", s.module_path, s.reads_input, position) for s in resolved}
    found = {name: cache.get(key) for name, key in keys.items()} if cache is not None else {}
    scores_key = scope + ("readout", readout.key) if readout is not None else None
    scores = cache.get(scores_key) if (cache is not None and scores_key) else None
    missing = [s for s in resolved if found.get(s.name) is None]
    if missing or (readout is not None and scores is None):
        computed, computed_scores = _forward(
            subject, inputs, missing, position, interventions, readout if scores is None else None, batch_size
        )
        for site in missing:
            found[site.name] = computed[site.name]
            if cache is not None:
                cache.put(keys[site.name], computed[site.name])
        if computed_scores is not None:
            scores = computed_scores
            if cache is not None:
                cache.put(scores_key, scores)
    return RunResult({s.name: found[s.name] for s in resolved}, scores)


def _forward(subject, inputs, sites, position, interventions, readout, batch_size):
    collected: dict[str, list[torch.Tensor]] = {s.name: [] for s in sites}
    score_batches: list[torch.Tensor] = []

    def reader(site):
        def read(activation, batch: Batch):
            mask = batch.attention_mask if batch.attention_mask is not None else torch.ones(activation.shape[:2])
            reduced = reduce(activation.detach(), mask, position, site, batch.indices)
            collected[site.name].append(reduced.to("cpu", torch.float32))
            return None

        return read

    model = subject.model
    with torch.inference_mode(), intervene(model, *interventions), hooked(model, [(s, reader(s)) for s in sites]):
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
            if readout is not None:
                score_batches.append(readout.reduce(output, Batch(indices, batch.attention_mask)).to("cpu"))
    width = inputs.input_ids.shape[1]
    activations = {name: _concat(parts, width, position) for name, parts in collected.items()}
    for name, tensor in activations.items():
        _check_finite(tensor, name, "activations")
    scores = torch.cat(score_batches) if readout is not None else None
    if scores is not None:
        _check_finite(scores, "the output", "scores")
    return activations, scores


def _concat(parts: list[torch.Tensor], width: int, position) -> torch.Tensor:
    """Join batches; for position="all", zero-pad each batch's token axis back to the inputs' width."""
    if position == "all":
        parts = [p if p.shape[1] == width else torch.nn.functional.pad(p, (0, 0, 0, width - p.shape[1]))
                 for p in parts]
    return torch.cat(parts)  # outside inference mode: the caller gets an ordinary tensor it may edit in place


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
