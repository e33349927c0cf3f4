"""Capture: what a subject computes on inputs, at sites and at its output, served from the store
when it can be and from one forward pass per batch when it cannot.

One call of :func:`run` makes at most one forward pass per batch, whatever it reads: several
sites, the behaviour readout, under any interventions. Results already stored cost none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..accounting import need_id, note_pass
from ..errors import CaptureError, SiteError
from ..inputs import Inputs
from ..interventions import Intervention
from ..settings import default_store
from ..sites.positions import READ, check_position
from ..sites.resolve import Site
from ..storage import ActivationStore
from . import read_ahead
from .forward import forward, to_host

DEFAULT = object()  # the running session's store (settings.default_store)

DEFAULT_BATCH_SIZE = 64


def _shape(value) -> str:
    shape = getattr(value, "shape", None)
    return f" of shape {tuple(shape)}" if shape is not None else ""


@dataclass(frozen=True)
class RunResult:
    activations: dict[str, torch.Tensor]  # by site name: [n, d] or [n, t, d], float32 on CPU (or the device)
    scores: torch.Tensor | None  # [n, C] behaviour readout, float32 on CPU (or the device)


def run(
    subject,
    inputs: Inputs,
    *,
    sites: Sequence[Site | str] = (),
    position="last",
    interventions: Sequence[Intervention] = (),
    readout=None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache: ActivationStore | None = DEFAULT,
    keep_on_device: bool = False,
) -> RunResult:
    """Activations at ``sites`` and/or the ``readout`` scores of ``subject`` on ``inputs``.

    What the store (``cache``; default: the session's, None: none) holds costs no forward pass;
    otherwise one pass per batch reads everything missing, plus what ``read_ahead`` plans for later
    checks on the same inputs. Results come back on the CPU, or with ``keep_on_device`` on the
    subject's device, where a GPU consumer can use them without a copy to the host and back.
    """
    check_position(position, READ)
    if not isinstance(inputs, Inputs):
        raise CaptureError(f"inputs must be Inputs, as subject.encode(texts or token-id lists) makes them; got "
                           f"{type(inputs).__name__}{_shape(inputs)}")
    cache = default_store() if cache is DEFAULT else cache
    resolved = [subject.site(s) for s in sites]
    scope = (subject.fingerprint, inputs.digest, tuple(iv.key for iv in interventions))
    need = need_id(inputs.digest, scope[2], len(inputs), batch_size)
    subject.needs.append(need)

    def key_of(what: tuple) -> tuple:
        return scope + (("readout", what[1]) if what[0] == "readout" else ("site", *what))

    site_key = {s.name: key_of((*s.key, position)) for s in resolved}
    found = {name: cache.get(key) for name, key in site_key.items()} if cache is not None else {}
    scores = _cached_scores(cache, readout, key_of) if readout is not None else None
    missing = [s for s in resolved if found.get(s.name) is None]
    wanted = readout if readout is not None and scores is None else None
    if missing or wanted is not None:
        reads = [f"{s.name} ({position})" for s in missing] + ([f"readout {wanted.key}"] if wanted else [])
        note_pass(subject, need, ", ".join(reads), "no cache" if cache is None else "not kept by the earlier pass")
        extras = read_ahead.plan(subject, len(inputs), position, missing, wanted, cache, key_of) \
            if cache is not None else read_ahead.Extras()
        reads = [(s, position, False) for s in missing] + [(s, at, True) for s, at in extras.sites]
        readouts = ([(wanted, False)] if wanted is not None else []) + [(r, True) for r in extras.readouts]
        site_values, readout_values = forward(subject, inputs, reads, readouts, interventions, batch_size,
                                              keep_on_device=keep_on_device)
        for (site, at, optional), value in zip(reads, site_values):
            if value is None:  # an extra that could not be read
                continue
            if not optional:
                found[site.name] = value
            if cache is not None:
                cache.put(key_of((*site.key, at)), value, disk=not optional)
        for (candidate, optional), value in zip(readouts, readout_values):
            if value is None:
                continue
            if not optional:
                scores = value
            if cache is not None:
                cache.put(key_of(("readout", candidate.key)), value, disk=not optional)
    if cache is not None:  # only reads that succeeded join the working set read-ahead plans from
        for site in resolved:
            cache.note_read(subject.fingerprint, ("site", site, position))
        if readout is not None:
            cache.note_read(subject.fingerprint, ("readout", readout))
    values = [found[s.name] for s in resolved] + [scores]
    if keep_on_device:
        values = [v if v is None or v.device == subject.device else v.to(subject.device) for v in values]
    else:  # an entry a keep_on_device run stored may sit on the device
        values = to_host(values)
    return RunResult(dict(zip([s.name for s in resolved], values[:-1])), values[-1])


def _cached_scores(cache, readout, key_of) -> torch.Tensor | None:
    """The readout's scores from the cache, or derived from a cached readout they are part of."""
    if cache is None:
        return None
    scores = cache.get(key_of(("readout", readout.key)))
    base = getattr(readout, "base", None)
    if scores is None and base is not None and key_of(("readout", base.key)) in cache:
        scores = readout.from_base(cache.get(key_of(("readout", base.key))))
    return scores


def capture(subject, inputs: Inputs, at: str | Site | Sequence[str | Site], position="last", **options):
    """Activations at one site ([n, d] / [n, t, d]), or a dict of them for a list of sites."""
    if not isinstance(at, (str, Site, list, tuple)):
        raise SiteError(f"at must be a site such as 'layer:0' or a module path, or a list of them; got {at!r}")
    if isinstance(at, (str, Site)):
        return run(subject, inputs, sites=[at], position=position, **options).activations[str(at)]
    return run(subject, inputs, sites=list(at), position=position, **options).activations
