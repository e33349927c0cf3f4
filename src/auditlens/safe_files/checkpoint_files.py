"""What a checkpoint directory may hold before anything in it is loaded: safetensors unless pickles
are allowed (an index may not name a pickle, nor a file outside the directory), and safetensors files
whose header reads (a truncated, garbage or header-bomb file is named, not a raw SafetensorError)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelLoadError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model")


def _check_index(directory: Path, index: str, allow_pickle: bool) -> None:
    """Every file a checkpoint index names lies inside the model directory, and is safetensors unless
    pickles are allowed: an index must not let a pickle in by the side door."""
    try:
        weight_map = json.loads((directory / index).read_text()).get("weight_map") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{directory / index} is not a readable checkpoint index: {exc}") from None
    for name in sorted(set(map(str, weight_map.values()))):
        target = (directory / name).resolve()
        if not target.is_relative_to(directory.resolve()):
            raise ModelLoadError(f"{directory / index} names {name!r}, outside the model directory; an index may "
                                 "only name files beside it")
        if not name.endswith(".safetensors") and not allow_pickle:
            raise ModelLoadError(f"{directory / index} names {name!r}, a pickle checkpoint; loading a pickle can "
                                 "run arbitrary code. Convert it to safetensors, or pass allow_pickle=True "
                                 "(--audit-allow-pickle) if you trust it")


def check_weights(directory: Path, allow_pickle: bool) -> None:
    files = [p.name for p in directory.iterdir() if p.is_file()]
    safe = [f for f in files if f.endswith(".safetensors") or f.endswith(".safetensors.index.json")]
    pickled = [f for f in files if f.endswith(PICKLE_SUFFIXES) and f not in TOKENIZER_FILES]
    for index in (f for f in files if f.endswith(".index.json")):
        _check_index(directory, index, allow_pickle)
    for name in sorted(f for f in files if f.endswith(".safetensors")):
        _check_safetensors(directory / name)
    if safe:
        return
    if pickled and not allow_pickle:
        raise ModelLoadError(
            f"{directory} holds only pickle checkpoints ({', '.join(sorted(pickled))}); loading a pickle "
            "can run arbitrary code. Convert it to safetensors, or pass allow_pickle=True "
            "(--audit-allow-pickle) if you trust it"
        )
    if not pickled:
        raise ModelLoadError(f"{directory} has no model weights (*.safetensors); is it a save_pretrained directory?")


def _check_safetensors(path: Path) -> None:
    """The header reads and covers the file (safetensors refuses oversized headers before reading them)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"{path} is not a readable safetensors file ({str(exc).splitlines()[0][:200]}); "
                             "it may be truncated or damaged: save or download the checkpoint again") from None
