"""Sites: named places in a model where activations are read or edited. A site is a raw module path
(``transformer.h.1.attn``, whose *output* is the activation) or an alias (``sites.names`` holds their grammar
and meaning), resolved here per architecture to a module and, for components, a slice of its input."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

from ..errors import SiteError, closest
from .names import EMBED_SUM, HEAD, NEURON, NEURONS, alias_meant, parse_alias
from .site import Site

# Child paths of a block, tried in order; the first that exists is the alias' module. BERT's ``attention``
# and ``output`` include the residual add and LayerNorm, so its sublayer writes are the ``dense`` inside them.
_ATTENTION_CHILDREN = ("attention.output.dense", "attn", "self_attn", "attention", "self_attention")
_MLP_CHILDREN = ("mlp", "ffn", "feed_forward", "output.dense")
_EMBEDDING_NORMS = ("LayerNorm", "layer_norm", "norm", "ln")  # a sibling of the token embeddings
# the attention's output projection, whose input is every head's output side by side (per block)
_OUTPUT_PROJECTIONS = ("attn.c_proj", "self_attn.o_proj", "attention.output.dense", "attention.out_lin",
                       "self_attention.dense")
# the MLP's output projection, whose input is its hidden units after the nonlinearity (per block)
_MLP_PROJECTIONS = ("mlp.c_proj", "mlp.down_proj", "output.dense", "ffn.lin2", "mlp.dense_4h_to_h")


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """The ModuleList of transformer blocks (the longest one; ties go to the shallowest)."""
    from torch.nn import ModuleList

    n_layers, best = _config_layers(model), None
    for path, module in model.named_modules():
        if not isinstance(module, ModuleList) or len(module) == 0:
            continue
        if n_layers is not None and len(module) != n_layers:
            continue
        if best is None or len(module) > len(best[1]):
            best = (path, module)
    return best


def config_int(model: nn.Module, *keys: str) -> int | None:
    """The first of ``keys`` that the model's config holds as an int (configs name things differently)."""
    config = getattr(model, "config", None)
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None


def _config_layers(model: nn.Module) -> int | None:
    return config_int(model, "num_hidden_layers", "n_layer", "n_layers", "num_layers")


def _child_path(block: nn.Module, candidates: tuple[str, ...]) -> str | None:
    modules = dict(block.named_modules())
    return next((c for c in candidates if c in modules), None)


_TABLES: weakref.WeakKeyDictionary[nn.Module, tuple[dict[str, Site], int]] = weakref.WeakKeyDictionary()


def alias_table(model: nn.Module) -> dict[str, Site]:
    """Every alias this model supports, mapped to its Site (computed once per model: walking the
    module tree for every site of every pass cost 1.5% of a GPT-2 forward)."""
    return _aliases_and_count(model)[0]


def n_layers(model: nn.Module) -> int:
    return _aliases_and_count(model)[1]


def _aliases_and_count(model: nn.Module) -> tuple[dict[str, Site], int]:
    known = _TABLES.get(model)
    if known is None:
        found = find_blocks(model)
        known = _TABLES[model] = (_build_alias_table(model, found), 0 if found is None else len(found[1]))
    return known


def embedding_norm(model: nn.Module) -> tuple[str, tuple[str, ...]] | None:
    """Where the embeddings are summed and then normalised (BERT's ``bert.embeddings``): the LayerNorm's path and
    the paths of the tables summed before it (token, position, token type); None where the token embeddings'
    module has no LayerNorm of its own (GPT-2, Llama: there ``embed`` is already the sum)."""
    from torch.nn import Embedding

    try:
        tokens = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    found = find_blocks(model)
    modules = dict(model.named_modules())
    path = next((p for p, m in modules.items() if m is tokens and p), None)
    if path is None or "." not in path or found is None:
        return None
    owner = path.rsplit(".", 1)[0]
    if found[0].startswith(owner + "."):  # the blocks' parent (Llama's model.norm is the final norm)
        return None
    norm = next((f"{owner}.{name}" for name in _EMBEDDING_NORMS if f"{owner}.{name}" in modules), None)
    if norm is None or type(modules[norm]).__name__ not in ("LayerNorm", "RMSNorm"):
        return None
    tables = tuple(p for p, m in modules.items() if p.startswith(owner + ".") and isinstance(m, Embedding)
                   and p.count(".") == owner.count(".") + 1)
    return norm, tables


def _build_alias_table(model: nn.Module, found) -> dict[str, Site]:
    if found is None:
        return {}
    path, blocks = found
    table = {"embed": Site("embed", f"{path}.0", reads_input=True)}
    normalised = embedding_norm(model)
    if normalised is not None:
        table[EMBED_SUM] = Site(EMBED_SUM, normalised[0], reads_input=True)
    for index, block in enumerate(blocks):
        table[f"layer:{index}"] = Site(f"layer:{index}", f"{path}.{index}")
        for kind, candidates in (("attn", _ATTENTION_CHILDREN), ("mlp", _MLP_CHILDREN)):
            child = _child_path(block, candidates)
            if child is not None:
                table[f"{kind}:{index}"] = Site(f"{kind}:{index}", f"{path}.{index}.{child}")
    return table


_PROJECTIONS: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def input_width(module: nn.Module) -> int | None:
    """The width of a projection's input: a Linear's in_features, GPT-2's Conv1D nx (its weight is [in, out])."""
    weight = getattr(module, "weight", None)
    return getattr(module, "in_features", None) or getattr(module, "nx", None) or (
        weight.shape[0] if weight is not None and type(module).__name__ == "Conv1D" else None)


def _projections(model: nn.Module, candidates: tuple[str, ...], what: str) -> tuple[list[str], int]:
    """Per block, the path of the first of ``candidates`` it has, and that module's input width (found
    once per model: every head or neuron site of every pass resolves through here)."""
    known = _PROJECTIONS.setdefault(model, {})
    if candidates in known:
        return known[candidates]
    found = find_blocks(model)
    if found is None:
        raise SiteError(f"{what} sites need a list of transformer blocks; {type(model).__name__} has none")
    path, blocks = found
    projections = []
    for index, block in enumerate(blocks):
        child = _child_path(block, candidates)
        if child is None:
            owner = "attention heads" if what == "head" else "an MLP"
            raise SiteError(f"{what} sites: block {index} of {type(model).__name__} ({path}.{index}) has no "
                            f"{owner} auditlens knows (none of {', '.join(candidates)}); its blocks are still "
                            f"sites: layer:0..{len(blocks) - 1}")
        projections.append(f"{path}.{index}.{child}")
    width = input_width(model.get_submodule(projections[0]))
    if not width:
        raise SiteError(f"{what} sites: cannot tell the input width of {projections[0]}")
    known[candidates] = projections, width
    return known[candidates]


def _index(name: str, value: int, count: int, owner: str, items: str, noun: str) -> int:
    """``value`` as an index into ``count`` things (negative counts back), or SiteError naming the range."""
    if not -count <= value < count:
        raise SiteError(f"site {name!r}: {owner} has {count} {items}, so the {noun} must be in {-count}..{count - 1}")
    return value % count


def head_layout(model: nn.Module) -> tuple[list[str], int, int]:
    """Per block, the path of the attention's output projection; the number of heads; each head's width.
    SiteError when the model has no blocks, no projection this knows, or no head count in its config."""
    projections, width = _projections(model, _OUTPUT_PROJECTIONS, "head")
    heads = config_int(model, "num_attention_heads", "n_head", "n_heads")
    if not heads or width % heads:
        raise SiteError(f"head sites: cannot tell the heads of {type(model).__name__} (heads {heads}, projection "
                        f"input width {width})")
    return projections, heads, width // heads


def _neuron_site(model: nn.Module, name: str, layer: int, unit: int | None) -> Site:
    """``neurons:L`` (every hidden unit of block L's MLP, after the nonlinearity) or ``neuron:L.I``."""
    projections, width = _projections(model, _MLP_PROJECTIONS, "neuron")
    path = projections[_index(name, layer, len(projections), type(model).__name__, "blocks", "layer")]
    if unit is not None:
        unit = _index(name, unit, width, "each MLP", "hidden units", "unit")
    return Site(name, path, reads_input=True, features=None if unit is None else (unit, unit + 1))


def _head_site(model: nn.Module, name: str, layer: int, head: int) -> Site:
    projections, heads, width = head_layout(model)
    path = projections[_index(name, layer, len(projections), type(model).__name__, "blocks", "layer")]
    head = _index(name, head, heads, "each block", "heads", "head")
    return Site(name, path, reads_input=True, features=(head * width, (head + 1) * width))


def resolve_site(model: nn.Module, name: str | Site) -> Site:
    """Turn a site name into a Site, or raise SiteError listing what would be valid."""
    if isinstance(name, Site):
        return name
    if not isinstance(name, str) or not name:
        raise SiteError(f"a site must be a non-empty string such as 'layer:0'; got {name!r}")
    if name.startswith("head:"):
        match = HEAD.match(name)
        if match is None or "*" in name:
            what = "a pattern: give it to a sweep (at=...)" if match else "not of the form head:LAYER.HEAD"
            raise SiteError(f"site {name!r} is {what}; e.g. head:1.0 (head 0 of block 1), head:1.* or head:*.*")
        return _head_site(model, name, int(match.group(1)), int(match.group(2)))
    if name.startswith(("neuron:", "neurons:")):
        one, every = NEURON.match(name), NEURONS.match(name)
        if every and every.group(1) != "*":
            return _neuron_site(model, name, int(every.group(1)), None)
        if one:
            return _neuron_site(model, name, int(one.group(1)), int(one.group(2)))
        what = ("a pattern: give it to a sweep (at=...)" if every
                else "not of the form neuron:LAYER.UNIT or neurons:LAYER")
        raise SiteError(f"site {name!r} is {what}; e.g. neuron:1.7 (hidden unit 7 of block 1's MLP) or neurons:1")
    table = alias_table(model)
    alias = parse_alias(name)
    if alias and alias[1] != "*" and table:
        kind, index = alias
        count = n_layers(model)
        if -count <= index < count and f"{kind}:{index % count}" in table:
            site = table[f"{kind}:{index % count}"]
            return Site(name, site.module_path, site.reads_input)
        if any(key.startswith(kind + ":") for key in table):
            raise SiteError(
                f"site {name!r}: {type(model).__name__} has {count} blocks, so the index must be in "
                f"{-count}..{count - 1}"
            )
    elif name in table:
        return table[name]
    elif name == EMBED_SUM and "embed" in table:
        raise SiteError(f"site {EMBED_SUM!r} is the embeddings' sum before their LayerNorm, but "
                        f"{type(model).__name__} does not normalise its embeddings: 'embed' is already their sum")
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return Site(name, name)
    raise SiteError(_unknown_site_message(model, name, table, modules))


def _unknown_site_message(model, name, table, modules) -> str:
    count = n_layers(model)
    kinds = sorted({key.split(":")[0] for key in table if ":" in key and key != EMBED_SUM})
    aliases = [name for name in ("embed", EMBED_SUM) if name in table] + [f"{k}:0..{count - 1}" for k in kinds]
    meant = alias_meant(name)  # offered only where this model has it: mlp.7 on a 3-block model is no mlp:7
    hint = f"; did you mean {meant!r}?" if meant and _resolves(model, meant) else "."
    lines = [f"unknown site {name!r} in {type(model).__name__}{hint}"]
    if aliases:
        lines.append(f"  valid aliases: {', '.join(aliases)}")
    else:
        lines.append("  no aliases: this model has no list of transformer blocks; use a module path")
    near = closest(name, [m for m in modules if m])
    if near:
        lines.append(f"  closest module paths: {', '.join(near)}")
    lines.append("  any module path from model.named_modules() is also a valid site")
    return "\n".join(lines)


def _resolves(model: nn.Module, name: str) -> bool:
    try:
        expand_sites(model, name)
    except SiteError:
        return False
    return True


def expand_sites(model: nn.Module, pattern: str) -> list[Site]:
    """``layer:*`` / ``attn:*`` / ``mlp:*`` become one Site per block, ``head:L.*`` one per head of
    block L, ``head:*.H`` head H of every block, ``head:*.*`` every head; other names one Site."""
    head = HEAD.match(pattern) if isinstance(pattern, str) else None
    if head is not None and "*" in pattern:
        projections, heads, _ = head_layout(model)
        layers = range(len(projections)) if head.group(1) == "*" else [int(head.group(1))]
        chosen = range(heads) if head.group(2) == "*" else [int(head.group(2))]
        return [resolve_site(model, f"head:{layer}.{h}") for layer in layers for h in chosen]
    if pattern == "neurons:*":
        return [resolve_site(model, f"neurons:{layer}") for layer in range(n_layers(model))]
    alias = parse_alias(pattern) if isinstance(pattern, str) else None
    if alias is None or alias[1] != "*":
        return [resolve_site(model, pattern)]
    count = n_layers(model)
    if count == 0:
        raise SiteError(f"{pattern!r} needs a list of transformer blocks; {type(model).__name__} has none")
    return [resolve_site(model, f"{alias[0]}:{i}") for i in range(count)]


def get_module(model: nn.Module, site: Site) -> nn.Module:
    try:
        return model.get_submodule(site.module_path)
    except AttributeError as exc:
        raise SiteError(f"site {site.name!r} points at {site.module_path!r}, which is not in the model") from exc
