"""Projecting directions out of the residual stream by orthogonalising every matrix that writes it (Arditi
et al. 2024, "Refusal in language models is mediated by a single direction"): W <- W (I - Q^T Q) for
the token and position embeddings and each attention and MLP output projection, biases included.

That holds only where nothing but those writes enters the stream: pre-LN blocks (x + f(LN(x))). In a
post-LN block the stream is LayerNorm(x + f(x)), whose centring and per-unit weights put the direction
back, so there it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import CheckError
from .affine import Affine
from .places import block_paths, sublayer_projection
from .weights import fold_embedding, fold_output, shift_rows

PRE_LN = frozenset({"gpt2", "llama", "mistral", "qwen2"})
POST_LN = frozenset({"bert", "distilbert", "roberta", "xlm-roberta", "camembert", "electra", "albert"})
_POSITION_EMBEDDINGS = ("wpe",)  # learned absolute positions, added to the token embeddings


@dataclass(frozen=True)
class Writers:
    """What writes the residual stream: embedding module paths, then output projection paths (per block,
    attention then MLP); ``width`` is the stream's."""

    embeddings: tuple[str, ...]
    projections: tuple[str, ...]
    width: int

    @property
    def count(self) -> str:
        blocks = len(self.projections) // 2
        return (f"{len(self.embeddings)} embedding{'s' * (len(self.embeddings) != 1)}, {blocks} attention and "
                f"{blocks} MLP output projections")


def residual_writers(model: nn.Module, site_name: str) -> Writers | str:
    """The writers of ``model``'s residual stream, or the reason they are unknown as a sentence.
    CheckError for a post-LN architecture, where orthogonalising the writers does not remove a direction."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in POST_LN:
        raise CheckError(
            f"ProjectOut at {site_name!r}: {model_type} is post-LN (each block adds its output to the residual "
            "stream and then applies LayerNorm, whose centring and per-unit weights put the direction back), so "
            "orthogonalising the matrices that write the stream does not remove the direction and no weight edit "
            f"equals the projection. Fold it only on pre-LN models ({', '.join(sorted(PRE_LN))}); here project "
            "out at attn:N, mlp:N, head or neuron sites, which fold into their output projections")
    if model_type not in PRE_LN:
        return (f"auditlens knows which matrices write the residual stream of pre-LN {', '.join(sorted(PRE_LN))} "
                f"only, not of {model_type or type(model).__name__}")
    inputs = model.get_input_embeddings()
    modules = dict(model.named_modules())
    embeddings = [path for path, module in modules.items() if module is inputs]
    embeddings += [path for path, module in modules.items()
                   if isinstance(module, nn.Embedding) and path.rsplit(".", 1)[-1] in _POSITION_EMBEDDINGS]
    projections = [sublayer_projection(model, kind, index) for index in range(len(block_paths(model)))
                   for kind in ("attn", "mlp")]
    return Writers(tuple(embeddings), tuple(projections), inputs.embedding_dim)


def untie_output_embeddings(model: nn.Module) -> str | None:
    """Give the output embeddings their own copy of a weight tied to the input embeddings (orthogonalising
    the input embeddings must not change the readout); returns a note saying so, or None when untied."""
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    if outputs is None or outputs.weight is not inputs.weight:
        return None
    outputs.weight = nn.Parameter(inputs.weight.detach().clone(), requires_grad=False)
    config = model.config
    config.tie_word_embeddings = False
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    text_config.tie_word_embeddings = False
    return ("the output embeddings were tied to the input embeddings: untied (config.tie_word_embeddings=False), "
            "so the readout keeps the direction")


def project_out_everywhere(model: nn.Module, writers: Writers, affine: Affine) -> tuple[list[str], str]:
    """Fold ``affine`` (a projection, no shift) into every writer; the changed state-dict names and a note."""
    notes = [f"global: removed from every write to the residual stream ({writers.count}), as the literature "
             "folds it; equal to the hooked edit at every write, not at one layer alone"]
    untied = untie_output_embeddings(model)
    notes += [untied] if untied else []
    changed = []
    for path in writers.embeddings:
        changed += fold_embedding(model, path, affine)
    for path in writers.projections:
        changed += fold_output(model, path, affine)
    return changed, "; ".join(notes)


def fold_into_embeddings(model: nn.Module, writers: Writers, affine: Affine,
                         site: str = "embed") -> tuple[list[str], str]:
    """Fold ``affine`` at ``site`` (``embed`` of a pre-LN model or ``embed:sum``: the sum of the embeddings) into
    the embeddings: each table's rows times the map, the shift added once, to the last table's rows (the
    position table where there is one: every position gets it; else the token table: every token does)."""
    notes = [f"at {site}: folded into {', '.join(writers.embeddings)}"]
    untied = untie_output_embeddings(model)
    notes += [untied] if untied else []
    changed = []
    for path in writers.embeddings:
        changed += fold_embedding(model, path, affine)
    if affine.shift is not None:
        changed += shift_rows(model, writers.embeddings[-1], affine.shift)
    return changed, "; ".join(notes)
