"""Sites: the named places in a model where activations are read or edited.

``names`` is the grammar of site names (no torch, no model), ``resolve`` finds a name's module in a
model, ``features`` adds the latents of an attached dictionary as sites, ``positions`` says which
tokens are read or edited, and ``hooks`` installs and always removes the hooks that do it."""

from .site import Site

__all__ = ["Site"]
