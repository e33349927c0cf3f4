"""From the hook name a dictionary file gives to the auditlens site that reads the same activation."""

from __future__ import annotations

import re

from .errors import DictionaryError

# TransformerLens names (SAELens' hook_name): the four that are auditlens aliases
_TRANSFORMER_LENS = re.compile(r"^blocks\.(\d+)\.(hook_resid_post|hook_resid_pre|hook_mlp_out|hook_attn_out)$")
# every other TransformerLens name: no module of a Hugging Face model carries it, so it has no site
_OTHER_TRANSFORMER_LENS = re.compile(r"^(blocks\.\d+\.(.+\.)?hook_\w+|hook_embed|hook_pos_embed|hook_tokens"
                                     r"|ln_final\.hook_\w+)$")
# sparsify hookpoints: module paths relative to the base model (``layers.6``, ``layers.6.mlp``)
_SPARSIFY = re.compile(r"^layers\.(\d+)(?:\.(mlp|self_attn|attn))?$")
_SPARSIFY_KINDS = {None: "layer", "mlp": "mlp", "self_attn": "attn", "attn": "attn"}


def site_for_hook(hook_name: str, n_layers: int | None = None) -> str | None:
    """The auditlens site for a dictionary's hook name:

    - ``blocks.N.hook_resid_post`` -> ``layer:N``; ``blocks.N.hook_resid_pre`` -> ``embed`` for N == 0,
      else ``layer:{N-1}`` (the residual stream entering block N is block N-1's output);
    - ``blocks.N.hook_mlp_out`` -> ``mlp:N``; ``blocks.N.hook_attn_out`` -> ``attn:N``;
    - sparsify hookpoints ``layers.N`` -> ``layer:N``, ``layers.N.mlp`` -> ``mlp:N``,
      ``layers.N.self_attn`` / ``layers.N.attn`` -> ``attn:N``;
    - any other TransformerLens name (``blocks.N.ln2.hook_normalized``, ``blocks.N.attn.hook_z``,
      ``hook_embed``, ...) -> None: no auditlens alias reads it, and no module of a Hugging Face model
      is called that, so the caller should say the dictionary's site is unsupported;
    - anything else (an ``hf_hook_name`` such as ``model.layers.3``, ``h.3.mlp``, or an auditlens site such
      as ``layer:3``, which dictionaries trained here carry) -> returned unchanged, for the caller to
      resolve against the model as a site (a module path reads that module's output).

    With ``n_layers``, a block index outside 0..n_layers-1 raises DictionaryError. A sparsify
    transcoder reads the *input* of its module (``Dictionary.reads_input``): the caller must read the
    input of the module this names, not its output."""
    name = hook_name.strip()
    if match := _TRANSFORMER_LENS.match(name):
        block, kind = _block(match.group(1), name, n_layers), match.group(2)
        if kind == "hook_resid_pre":
            return "embed" if block == 0 else f"layer:{block - 1}"
        return {"hook_resid_post": "layer", "hook_mlp_out": "mlp", "hook_attn_out": "attn"}[kind] + f":{block}"
    if _OTHER_TRANSFORMER_LENS.match(name):
        return None
    if match := _SPARSIFY.match(name):
        return f"{_SPARSIFY_KINDS[match.group(2)]}:{_block(match.group(1), name, n_layers)}"
    return name


def _block(index: str, hook_name: str, n_layers: int | None) -> int:
    block = int(index)
    if n_layers is not None and block >= n_layers:
        raise DictionaryError(f"hook {hook_name!r} names block {block}, but the model has {n_layers} blocks "
                              f"(0..{n_layers - 1}); the dictionary was made for a different (deeper) model")
    return block
