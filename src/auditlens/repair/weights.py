"""Writing an affine map into a linear map's or an embedding's weights, computed in float64 on the CPU (which
every device's weights can be copied to; MPS has no float64) and copied back in each weight's dtype and
device; and adding the bias a constant needs where the architecture's config allows one."""

from __future__ import annotations

import torch
from torch import nn

from .affine import Affine
from .places import block_paths, in_out, is_linear

# model type -> {the block's child that owns a projection: the config flag that gives all its Linears a bias}
_BIAS_FLAGS = {"llama": {"self_attn": "attention_bias", "mlp": "mlp_bias"}}


def _io_weight(module: nn.Module) -> torch.Tensor:
    """A linear map's weight as [in, out] in float64 (Conv1D stores it so; nn.Linear stores [out, in])."""
    weight = _exact(module.weight)
    return weight.T if isinstance(module, nn.Linear) else weight


def _exact(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", torch.float64)


def _write(parameter: torch.Tensor, value: torch.Tensor) -> None:
    with torch.no_grad():
        parameter.copy_(value.to(parameter.dtype))


def _write_io_weight(module: nn.Module, weight: torch.Tensor) -> None:
    _write(module.weight, weight.T if isinstance(module, nn.Linear) else weight)


def _write_bias(module: nn.Module, bias: torch.Tensor | None) -> None:
    if bias is None:
        return
    if module.bias is None:  # only after add_biases, or when the planner found one unnecessary
        raise RuntimeError(f"{module} has no bias to write; plan_bias should have said so")
    _write(module.bias, bias)


def fold_input(model: nn.Module, path: str, affine: Affine, features: tuple[int, int]) -> list[str]:
    """Fold ``affine`` on ``features`` of linear map ``path``'s input into it: W_s <- M W_s, b <- b + shift W_s.
    Returns the state-dict names it changed."""
    module = model.get_submodule(path)
    weight = _io_weight(module).clone()
    start, stop = features
    part = weight[start:stop]
    bias = None if module.bias is None else _exact(module.bias)
    if affine.shift is not None:
        constant = affine.shift @ part
        bias = constant if bias is None else bias + constant
    weight[start:stop] = affine.before(part)
    _write_io_weight(module, weight)
    _write_bias(module, bias)
    return _names(path, module)


def fold_output(model: nn.Module, path: str, affine: Affine) -> list[str]:
    """Fold ``affine`` on linear map ``path``'s output into it: W <- W M, b <- b M + shift."""
    module = model.get_submodule(path)
    _write_io_weight(module, affine.after(_io_weight(module)))
    _write_bias(module, affine.on_bias(None if module.bias is None else _exact(module.bias)))
    return _names(path, module)


def fold_embedding(model: nn.Module, path: str, affine: Affine) -> list[str]:
    """Fold a map without shift into embedding ``path``, whose rows are written to the residual stream."""
    module = model.get_submodule(path)
    _write(module.weight, affine.after(_exact(module.weight)))
    return [f"{path}.weight"]


def shift_rows(model: nn.Module, path: str, shift) -> list[str]:
    """Add ``shift`` to every row of embedding ``path``."""
    module = model.get_submodule(path)
    _write(module.weight, _exact(module.weight) + shift)
    return [f"{path}.weight"]


def _names(path: str, module: nn.Module) -> list[str]:
    return [f"{path}.weight"] + ([f"{path}.bias"] if module.bias is not None else [])


def shared_elsewhere(model: nn.Module, path: str) -> list[str]:
    """The other state-dict names under which linear map ``path``'s weight or bias is also used (tied
    weights): folding into it would edit those places too."""
    own = {id(p) for p in model.get_submodule(path).parameters(recurse=False)}
    return [name for name, p in model.named_parameters(remove_duplicate=False)
            if id(p) in own and not name.startswith(path + ".")]


def needs_bias(model: nn.Module, path: str, affine: Affine) -> bool:
    """Whether folding ``affine`` into linear map ``path`` leaves a constant that it has no bias to hold."""
    return affine.shift is not None and model.get_submodule(path).bias is None


def bias_flag(model: nn.Module, path: str) -> tuple[str, str] | str:
    """(the block child that owns ``path``, the config flag that gives its Linears biases), or the reason a
    bias cannot be added as a sentence (an exported model must load it from its config)."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    child = _block_child(model, path)
    flag = _BIAS_FLAGS.get(model_type, {}).get(child)
    if flag is None or not hasattr(config, flag):
        known = "; ".join(f"{kind}: {', '.join(flags.values())}" for kind, flags in _BIAS_FLAGS.items())
        return (f"{path} has no bias to hold the constant it would add, and auditlens knows no config flag of "
                f"{model_type or type(model).__name__} that gives it one (it knows {known})")
    return child, flag


def add_biases(model: nn.Module, child: str, flag: str) -> list[str]:
    """Give every Linear under ``child`` of every block a zero bias and set ``config.<flag>``, so a model saved
    and loaded again builds the same biases (adding only the one a constant needs would not load back)."""
    added = []
    for block in block_paths(model):
        owner = f"{block}.{child}"
        for name, module in model.get_submodule(owner).named_modules():
            if is_linear(module) and module.bias is None:
                weight = module.weight
                module.bias = nn.Parameter(torch.zeros(in_out(module)[1], dtype=weight.dtype, device=weight.device),
                                           requires_grad=False)
                added.append(f"{owner}.{name}.bias" if name else f"{owner}.bias")
    setattr(model.config, flag, True)
    return added


def _block_child(model: nn.Module, path: str) -> str | None:
    for block in block_paths(model):
        if path.startswith(block + "."):
            return path[len(block) + 1:].split(".")[0]
    return None
