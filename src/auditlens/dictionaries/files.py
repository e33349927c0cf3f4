"""Reading a dictionary's files safely: JSON with the line of a mistake, safetensors only (never a pickle,
whose loading can run code), and typed config values with errors that name the file and key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..safe_files.checkpoint_files import PICKLE_SUFFIXES
from .errors import DictionaryError

CONFIG = "cfg.json"


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; DictionaryError naming the file (and line) when it cannot be one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DictionaryError(f"{path.resolve()} cannot be read ({exc}); check the file is there and is text") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DictionaryError(f"{path.resolve()} is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}; "
                              "fix the file or export the dictionary again") from None
    if not isinstance(value, dict):
        raise DictionaryError(f"{path.resolve()} holds a JSON {type(value).__name__}; a dictionary config is a JSON "
                              'object such as {"d_in": 64, "d_sae": 512, ...}')
    return value


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor in the safetensors file ``path``, on the CPU, as stored."""
    from safetensors.torch import load_file

    if path.suffix in PICKLE_SUFFIXES:
        raise pickle_error(path, path.with_suffix(".safetensors").name)
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types, OSError and ValueError alike
        raise DictionaryError(f"{path.resolve()} is not a readable safetensors file ({type(exc).__name__}: {exc}); "
                              "download or export it again") from None


def pickle_error(pickle_path: Path, safetensors_name: str) -> DictionaryError:
    """The error for a pickle found where a safetensors file belongs, with the one-line conversion."""
    pickle_path = pickle_path.resolve()
    target = pickle_path.parent / safetensors_name
    return DictionaryError(
        f"{pickle_path} is a pickle, and auditlens never unpickles a file: loading a pickle can run arbitrary code. "
        f"If you trust it, convert it once yourself, in a trusted environment: "
        f"safetensors.torch.save_file(torch.load({str(pickle_path)!r}), {str(target)!r}) "
        "(the pickle must hold a dict of tensor names to tensors), then load the directory again")


def pickles_in(directory: Path) -> list[Path]:
    """The pickle files directly inside ``directory``, sorted."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def config_int(cfg: dict[str, Any], key: str, path: Path, *, default: int | None = None) -> int:
    """``cfg[key]`` as a positive int (``default`` when absent and a default is given)."""
    value = cfg.get(key, default)
    if value is None:
        raise DictionaryError(f"{path.resolve()} has no {key!r}; it must give {key} as a positive integer")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DictionaryError(f"{path.resolve()}: {key} is {value!r}; it must be a positive integer")
    return value


def config_bool(cfg: dict[str, Any], key: str, path: Path, *, default: bool) -> bool:
    """``cfg[key]`` as a bool (``default`` when absent or null)."""
    value = cfg.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise DictionaryError(f"{path.resolve()}: {key} is {value!r}; it must be true or false")
    return value


def describe_contents(directory: Path, limit: int = 12) -> str:
    """The names directly inside ``directory`` for an error message (folders end in ``/``)."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    if not names:
        return "nothing (it is empty)"
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
