"""Read-ahead: what else a forward pass keeps, so later checks on the same inputs need no pass of their own.

A forward pass costs the same whatever it reads, and keeping a reduced activation ([n, d]) is cheap
next to running the model again. Audits that share a model and a dataset ask for different things
from it (a probe reads ``layer:1`` at the last token, a mean ablation then reads ``embed`` averaged
over tokens, an erase check the classifier's logits), so each pass also keeps, in this order and
while the cache's ``read_ahead_bytes`` allows:

1. what has already been read from this model (the working set), at any reduced position;
2. the default readout (a classifier's logits; a causal LM's next-token logits over its vocabulary);
3. every block site (``embed``, ``layer:N``, ``attn:N``, ``mlp:N``) and every attached dictionary's
   latents (``features:SITE``) at the position asked for;
4. the same sites at the other reduced positions (``last``, ``mean``, ``first``; a dictionary's latents
   also at ``max``, the peak their top-activating examples are ranked by).

Only reduced positions are read ahead: ``position="all"`` ([n, t, d]) is kept only when asked for.
Extras are kept in memory, not on disk, and a failure to read one (a site too short for an index)
never fails the pass that asked for something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..readout import default_readout
from ..sites.features import attached
from ..sites.positions import REDUCED
from ..sites.resolve import Site, alias_table

FLOAT_BYTES = 4
BLOCK_POSITIONS = tuple(p for p in REDUCED if p != "max")  # a residual's peak is seldom read; a latent's is


@dataclass
class Extras:
    """Reads a pass adds to what was asked: (site, position) pairs and readouts."""

    sites: list[tuple[Site, object]] = field(default_factory=list)
    readouts: list = field(default_factory=list)


def plan(subject, n_examples: int, position, asked_sites: list[Site], readout, cache, key_of) -> Extras:
    """Extras for a pass over ``n_examples`` inputs; ``key_of(what)`` is the cache key of a read."""
    budget = cache.read_ahead_bytes
    extras = Extras()
    if budget <= 0:
        return extras
    asked = {(*s.key, position) for s in asked_sites}
    if readout is not None:
        asked.add(("readout", readout.key))

    def take(what: tuple, size: int | None, item) -> None:
        nonlocal budget
        if what in asked or size is None or size > budget or key_of(what) in cache:
            return
        asked.add(what)
        budget -= size
        (extras.readouts if what[0] == "readout" else extras.sites).append(item)

    def take_site(site: Site, at) -> None:
        width = _width(subject, site)
        take((*site.key, at), width and n_examples * width * FLOAT_BYTES, (site, at))

    def take_readout(candidate) -> None:
        columns = candidate.columns(subject)
        take(("readout", candidate.key), columns and n_examples * columns * FLOAT_BYTES, candidate)

    for kind, *rest in cache.working_set.get(subject.fingerprint, {}):
        if kind == "site" and rest[1] != "all":
            take_site(rest[0], rest[1])
        elif kind == "readout":
            take_readout(rest[0])
    default = default_readout(subject)
    if default is not None:
        take_readout(default)
    blocks = list(alias_table(subject.model).values())
    latents = [subject.site(f"features:{name}") for name in attached(subject.model)]
    first = position if position in REDUCED else "last"
    for at in (first, *(p for p in REDUCED if p != first)):
        for site in blocks if at in BLOCK_POSITIONS else []:
            take_site(site, at)
        for site in latents:
            take_site(site, at)
    return extras


def _width(subject, site: Site) -> int | None:
    """Floats per example that a reduced read of ``site`` keeps: a dictionary's latents (or the slice of
    them), else the model's width (None where the config does not say it)."""
    if site.dictionary is None:
        return subject.hidden_size
    return site.features[1] - site.features[0] if site.features else site.dictionary.d_sae
