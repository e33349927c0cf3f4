"""Site: a named place in a model where activations are read or edited (``sites`` resolves names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Site:
    """A resolved site: the name the user gave, the module path, and which side is read.

    ``features`` narrows it to a range of the last axis (one head, one hidden unit). With a
    ``dictionary`` the site is that dictionary's latents at the module side: reads are the encoded
    activations (``features`` then ranges over latents), and an edit of latents f -> f' writes
    x + decode(f') - decode(f), so what the dictionary fails to explain is kept. A transcoder reads
    its input here and writes at ``writes_to``.
    """

    name: str
    module_path: str
    reads_input: bool = False  # True: the module's first positional input, not its output
    features: tuple[int, int] | None = None  # a slice of the last axis (or of the latents): [start, stop)
    dictionary: Any = None  # an auditlens.dictionaries.Dictionary: the site is its latents
    writes_to: Site | None = None  # a transcoder's output side (its input is this site's module side)

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> tuple:
        """What is read or edited, whatever the site is called (caches and edits are keyed by it)."""
        key = (self.module_path, self.reads_input)
        if self.dictionary is not None:
            key += ("dictionary", self.dictionary.key) + ((self.writes_to.key,) if self.writes_to else ())
        return key + ((self.features,) if self.features else ())

    @property
    def module_site(self) -> Site:
        """The whole module side this site is a view of (itself when it is no slice and no dictionary)."""
        if self.features is None and self.dictionary is None:
            return self
        return Site(self.name, self.module_path, self.reads_input)

    def view(self, activation, encoded: dict | None = None):
        """What this site reads from its module side's ``activation``: the latents, the slice, or all.
        ``encoded`` (by dictionary key) keeps latents already computed from this activation, so the
        reads of many latents of one dictionary encode it once."""
        if self.dictionary is not None:
            if encoded is None:
                activation = self.dictionary.encode(activation)
            else:
                if self.dictionary.key not in encoded:
                    encoded[self.dictionary.key] = self.dictionary.encode(activation)
                activation = encoded[self.dictionary.key]
        return activation if self.features is None else activation[..., self.features[0]:self.features[1]]
