"""Where an edit of a site lands in the weights: a slice of a linear map's input, a linear map's output,
the residual stream (which LayerNorm reads, so only a global projection folds there), or the embeddings'
sum before a LayerNorm of the embeddings (``embed:sum`` of post-LN models: a linear sum of table rows)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import SiteError
from ..sites.names import parse_alias
from ..sites.resolve import alias_table, embedding_norm, find_blocks, get_module, head_layout, resolve_site
from ..sites.site import Site


@dataclass(frozen=True)
class Target:
    """A foldable place. ``kind``: "input" (``features`` of linear map ``path``'s input), "output" (the
    output of linear map ``path``), "residual" (the stream at block module ``path``) or "embeddings" (the sum
    of ``tables`` that LayerNorm ``path`` reads). ``width`` is the
    edited vector's width; ``what`` says in words what it is, for errors."""

    kind: str
    path: str
    width: int
    what: str
    features: tuple[int, int] | None = None
    tables: tuple[str, ...] = ()


def is_linear(module: nn.Module) -> bool:
    """An nn.Linear, or GPT-2's Conv1D (a linear map whose weight is stored [in, out])."""
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def in_out(module: nn.Module) -> tuple[int, int]:
    """A linear map's input and output widths."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    return module.weight.shape[0], module.weight.shape[1]


def sublayer_projection(model: nn.Module, kind: str, block: int) -> str:
    """The module path of block ``block``'s attention ("attn") or MLP ("mlp") output projection."""
    if kind == "attn":
        return head_layout(model)[0][block]
    return resolve_site(model, f"neurons:{block}").module_path


def block_paths(model: nn.Module) -> list[str]:
    found = find_blocks(model)
    return [] if found is None else [f"{found[0]}.{index}" for index in range(len(found[1]))]


def locate(model: nn.Module, site: Site) -> Target | str:
    """The place ``site``'s edits fold into, or the reason none does, as a sentence."""
    if site.dictionary is not None:
        return ("its site is a sparse dictionary's latents: the edit passes through the dictionary's nonlinear "
                "encoder, which no weight of the model can hold. To fold a feature's removal, remove its decoder "
                "directions instead: ProjectOut or Clamp at the dictionary's own site with "
                "dictionary.W_dec[latents] (it also removes what else lies along them)")
    module = get_module(model, site)
    normalised = embedding_norm(model)
    if normalised is not None and site.reads_input and site.module_path == normalised[0] and site.features is None:
        norm, tables = normalised
        width = model.get_submodule(tables[0]).embedding_dim
        return Target("embeddings", norm, width, f"the embeddings' sum before {norm}", tables=tables)
    if is_linear(module):
        width_in, width_out = in_out(module)
        if site.reads_input:
            start, stop = site.features or (0, width_in)
            return Target("input", site.module_path, stop - start,
                          f"the input of {site.module_path} [{start}, {stop})", (start, stop))
        if site.features is None:
            return Target("output", site.module_path, width_out, f"the output of {site.module_path}")
        return f"it edits a slice of {site.module_path}'s output, which auditlens does not fold"
    if site.features is not None:
        return f"it edits a slice of {site.module_path}, which is no linear map auditlens knows"
    blocks = block_paths(model)
    if site.module_path in blocks:  # a block's input or output: the residual stream
        return Target("residual", site.module_path, 0, f"the residual stream at {site.module_path}")
    return _sublayer(model, site) or (f"{site.module_path} is no linear map nor an attention or MLP sublayer "
                                      "auditlens knows, so it cannot tell which weight writes it")


def _sublayer(model: nn.Module, site: Site) -> Target | None:
    """The output of an attention or MLP sublayer (``attn:N``, ``mlp:N`` or its module path): the output of
    its output projection, the sublayer's last linear map (only dropout, off in eval, follows it)."""
    if site.reads_input:
        return None
    for name, aliased in alias_table(model).items():
        parsed = parse_alias(name)
        if parsed is None or parsed[0] not in ("attn", "mlp") or aliased.module_path != site.module_path:
            continue
        try:
            path = sublayer_projection(model, parsed[0], parsed[1])
        except SiteError:
            return None
        if not path.startswith(site.module_path + "."):
            return None
        width = in_out(model.get_submodule(path))[1]
        return Target("output", path, width, f"the output of {site.module_path} (written by {path})")
    return None
