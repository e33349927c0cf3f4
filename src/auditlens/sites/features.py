"""Feature sites: the latents of a sparse dictionary (an SAE or a transcoder) attached to a site.

- ``features:SITE``   every latent of the dictionary attached at SITE (``features:layer:3``),
- ``feature:SITE/F``  latent F of it (``feature:layer:3/1234``),
- ``feature:SITE/*``  a pattern: one site per latent (sweeps, ``attribute``, ``discover``).

A dictionary is attached to a model (``attach``), keyed by the module side it reads, so ``layer:3``,
``layer:-1`` and the module path name the same attachment. Names are checked without torch.
"""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING

from ..errors import SiteError
from .resolve import config_int, expand_sites, input_width, resolve_site
from .site import Site

if TYPE_CHECKING:
    from torch import nn

_ONE = re.compile(r"^feature:(.+)/(-?\d+|\*)$")
_ALL = re.compile(r"^features:(.+)$")
EXAMPLES = "features:layer:3 (every latent of the dictionary at layer:3) or feature:layer:3/12 (latent 12)"

# model -> {(module path, reads input) of the site it was attached at: (the dictionary, the site it reads,
# the site it writes to or None for an SAE, the name it was attached at)}
_ATTACHED: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple]] = weakref.WeakKeyDictionary()


def is_feature_name(name) -> bool:
    return isinstance(name, str) and name.startswith(("feature:", "features:"))


def parse_feature_name(name: str) -> tuple[str, int | str | None]:
    """(the site the dictionary is attached to, the latent: an index, ``*``, or None for all), or
    SiteError showing the spelling."""
    one, every = _ONE.match(name), _ALL.match(name)
    if one:
        latent = one.group(2)
        return one.group(1), "*" if latent == "*" else int(latent)
    if every and "/" not in every.group(1):
        return every.group(1), None
    raise SiteError(f"site {name!r} is not a feature site; write {EXAMPLES}")


def attach(model: nn.Module, at: str | Site | None, dictionary, writes_to: str | Site | None = None) -> Site:
    """Attach ``dictionary`` at site ``at`` of ``model`` (None: the site its file names); a transcoder reads
    ``at`` and writes ``writes_to`` (None: the site its file names; a sparsify transcoder reads the input of
    the module ``at`` names and writes its output). Returns the ``features:`` site. Checks what it can
    without a forward pass: the widths, and that the file's own site is the one given."""
    named = _named_site(dictionary.hook_name)
    if at is None:
        if named is None:
            raise SiteError(f"{_source(dictionary)} names no site auditlens can read (hook "
                            f"{dictionary.hook_name!r}); attach it at a site: attach_dictionary(SITE, ...)")
        at = named
    site = resolve_site(model, at)
    if site.features is not None or is_feature_name(site.name):
        raise SiteError(f"a dictionary is attached to a whole site (layer:N, mlp:N, attn:N, embed, neurons:N or a "
                        f"module path), not to {site.name!r}, a slice of one")
    if named is not None and named != at and _side(model, named) not in (None, _side(model, site)):
        raise SiteError(f"{_source(dictionary)} was made for {named} (hook {dictionary.hook_name!r}), not {site.name}; "
                        f"attach it at {named}, or pass the site it truly reads")
    reads, output = site, None
    if dictionary.is_transcoder:
        if getattr(dictionary, "reads_input", False):  # sparsify: the module's input in, its output out
            reads, writes_to = Site(site.name, site.module_path, reads_input=True), writes_to or site
        writes_to = writes_to or _named_site(dictionary.hook_name_out)
        if writes_to is None:
            raise SiteError(f"{_source(dictionary)} is a transcoder: say where it writes (writes_to=..., YAML "
                            "'writes_to:'), e.g. mlp:N for an MLP transcoder reading layer:N-1")
        output = resolve_site(model, writes_to)
    elif writes_to is not None:
        raise SiteError(f"{_source(dictionary)} is a sparse autoencoder: it reads and writes {site.name}; "
                        "writes_to is for transcoders")
    _check_width(model, reads, dictionary.d_in, dictionary, "reads")
    if output is not None:
        _check_width(model, output, dictionary.d_out, dictionary, "writes")
    _ATTACHED.setdefault(model, {})[(site.module_path, site.reads_input)] = (dictionary, reads, output, site.name)
    return resolve_feature_site(model, f"features:{site.name}")


def _named_site(hook_name: str | None) -> str | None:
    """The auditlens site a file's hook name maps to (None: no hook, or none auditlens reads)."""
    if not hook_name:
        return None
    from ..dictionaries import site_for_hook

    return site_for_hook(hook_name, None)


def _side(model: nn.Module, site: str | Site) -> tuple | None:
    """The module side a site reads, or None where it does not resolve in this model (another naming)."""
    try:
        resolved = resolve_site(model, site)
    except SiteError:
        return None
    return resolved.module_path, resolved.reads_input


def attached(model: nn.Module) -> dict[str, object]:
    """The dictionaries attached to ``model``, by the site name they were attached at."""
    return {name: dictionary for dictionary, _, _, name in _ATTACHED.get(model, {}).values()}


def _source(dictionary) -> str:
    return f"the dictionary {dictionary.source}" if getattr(dictionary, "source", None) else "the dictionary"


def _site_width(model: nn.Module, site: Site) -> int | None:
    """The width of a site's activations where it is known without a forward pass."""
    if site.reads_input:
        return input_width(model.get_submodule(site.module_path))
    hidden = config_int(model, "hidden_size", "n_embd", "d_model", "dim")
    alias = site.name.split(":")[0]
    return hidden if alias in ("layer", "attn", "mlp", "embed") else None


def _check_width(model: nn.Module, site: Site, width: int, dictionary, side: str) -> None:
    known = _site_width(model, site)
    if known is not None and known != width:
        raise SiteError(f"{_source(dictionary)} {side} vectors of width {width}, but {site.name} of "
                        f"{type(model).__name__} is {known} wide: was it trained on another model or site?")


def resolve_feature_site(model: nn.Module, name: str) -> Site:
    """``features:SITE`` or ``feature:SITE/F`` as a Site over the attached dictionary's latents."""
    base, latent = parse_feature_name(name)
    if latent == "*":
        raise SiteError(f"site {name!r} is a pattern: give it to a sweep or attribute(over=...), or name one "
                        f"latent: {EXAMPLES}")
    site = resolve_site(model, base)
    found = _ATTACHED.get(model, {}).get((site.module_path, site.reads_input))
    if found is None:
        have = ", ".join(sorted(attached(model))) or "none"
        raise SiteError(f"site {name!r}: no dictionary is attached at {base} (attached: {have}); attach one with "
                        "subject.attach_dictionary(SITE, PATH) or a 'dictionaries:' map in the audit file")
    dictionary, reads, output, _ = found
    features = None
    if latent is not None:
        index = dictionary.check_latent(latent, f"site {name!r}")
        features = (index, index + 1)
    return Site(name, reads.module_path, reads.reads_input, features=features, dictionary=dictionary,
                writes_to=output)


def expand_feature_sites(model: nn.Module, pattern: str) -> list[Site]:
    """``feature:SITE/*`` as one Site per latent; any other feature name as its one Site."""
    base, latent = parse_feature_name(pattern)
    if latent != "*":
        return [resolve_feature_site(model, pattern)]
    whole = resolve_feature_site(model, f"features:{base}")
    return [resolve_feature_site(model, f"feature:{base}/{i}") for i in range(whole.dictionary.d_sae)]


def resolve_any(model: nn.Module, name: str | Site) -> Site:
    """Any site name, feature sites included, as a Site."""
    return resolve_feature_site(model, name) if is_feature_name(name) else resolve_site(model, name)


def expand_any(model: nn.Module, pattern: str) -> list[Site]:
    """Any site or pattern (``layer:*``, ``head:1.*``, ``feature:layer:0/*``) as its Sites."""
    return expand_feature_sites(model, pattern) if is_feature_name(pattern) else expand_sites(model, pattern)
