"""The grammar of site names, checked without torch or a model, and the 'did you mean' of an alias typo;
``sites`` resolves them against a model:

- ``embed``   the residual stream entering block 0 (the input of the first block),
- ``embed:sum`` on models that normalise their embeddings (BERT, DistilBERT, MiniLM: post-LN), the sum of
  the token, position and token-type embeddings before that LayerNorm (``embed`` is its output),
- ``layer:N`` the output of block N (the residual stream after block N; negative N counts back),
- ``attn:N``  what block N's attention sublayer writes, before the residual add,
- ``mlp:N``   what block N's feed-forward sublayer writes, before the residual add;
- ``head:L.H``, ``neurons:L``, ``neuron:L.I``: slices of the input of block L's attention or MLP output
  projection (one head; the MLP's hidden units, all or one)."""

from __future__ import annotations

import difflib
import re

INDEXED_KINDS = ("layer", "attn", "mlp")  # kind:N aliases; "embed" stands alone
EMBED_SUM = "embed:sum"  # the embeddings' sum, where a LayerNorm of the embeddings follows it
ALIAS = re.compile(r"^(layer|attn|mlp):(-?\d+|\*)$")
HEAD = re.compile(r"^head:(-?\d+|\*)\.(-?\d+|\*)$")
NEURON = re.compile(r"^neuron:(-?\d+)\.(-?\d+)$")
NEURONS = re.compile(r"^neurons:(-?\d+|\*)$")


def is_component_name(name: str) -> bool:
    """A component site or pattern by its shape: ``head:L.H`` (L, H may be negative or ``*``),
    ``neuron:L.I`` or ``neurons:L``."""
    return any(pattern.match(name) for pattern in (HEAD, NEURON, NEURONS))


def parse_alias(name: str) -> tuple[str, int | str] | None:
    """``("layer", 3)`` for ``layer:3``, ``("mlp", "*")`` for ``mlp:*``; None for any other name.
    The one grammar of indexed aliases: resolution, sweeps and the audit-file check all use it."""
    match = ALIAS.match(name)
    if not match:
        return None
    return match.group(1), "*" if match.group(2) == "*" else int(match.group(2))


_ALIAS_LIKE = re.compile(r"^\s*([A-Za-z]+)\s*[:._\- ]?\s*\[?(-?\d+|\*)\]?\s*$")
_KIND_SYNONYMS = {"layers": "layer", "block": "layer", "blocks": "layer", "attention": "attn", "ffn": "mlp"}


def alias_meant(name: str) -> str | None:
    """The indexed alias a name shaped like one most likely meant (``mlp:3`` for ``mlp.3``, ``mpl:3`` or
    ``MLP3``; ``layer:3`` for ``layers.3``), or None. The one 'did you mean' of alias typos: Python's
    unknown-site error and the audit-file check both use it."""
    match = _ALIAS_LIKE.match(name) if isinstance(name, str) else None
    if match is None:
        return None
    kind = match.group(1).lower()
    kind = _KIND_SYNONYMS.get(kind, kind)
    near = difflib.get_close_matches(kind, INDEXED_KINDS, n=1, cutoff=0.6)  # not closest(): it offers kinds holding it
    meant = f"{near[0]}:{match.group(2)}" if near else None
    return meant if meant != name else None
