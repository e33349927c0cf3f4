"""Load a sparse dictionary from a folder, telling its format by the files it holds."""

from __future__ import annotations

import re
from pathlib import Path

from ..safe_files.checkpoint_files import PICKLE_SUFFIXES
from . import saelens, sparsify
from .dictionary import Dictionary
from .errors import DictionaryError
from .files import CONFIG, describe_contents, pickle_error, pickles_in

_EXPECTED = (f"{CONFIG} with {saelens.WEIGHTS} (SAELens) or {CONFIG} with {sparsify.WEIGHTS} (one sparsify "
             "hookpoint folder)")


def load_dictionary(path: str | Path) -> Dictionary:
    """The SAE or transcoder in directory ``path``: ``cfg.json`` + ``sae_weights.safetensors`` is SAELens,
    ``cfg.json`` + ``sae.safetensors`` is sparsify. Never unpickles; DictionaryError, naming the path and
    what was expected, for anything else (a folder of several sparsify hookpoints lists them)."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise DictionaryError(f"{path} does not exist; give the directory holding {_EXPECTED}")
    if path.is_file():
        if path.suffix in PICKLE_SUFFIXES:
            raise pickle_error(path, _safetensors_name(path))
        raise DictionaryError(f"{path} is a file; load_dictionary takes the directory holding {_EXPECTED}: "
                              f"load_dictionary({str(path.parent)!r})")
    files = {p.name for p in path.iterdir() if p.is_file()}
    if CONFIG in files and saelens.WEIGHTS in files:
        return saelens.read_saelens(path)
    if CONFIG in files and sparsify.WEIGHTS in files:
        return sparsify.read_sparsify(path)
    if pickles := pickles_in(path):
        raise pickle_error(pickles[0], _safetensors_name(pickles[0]))
    hookpoints = sorted((sub.name for sub in path.iterdir() if sub.is_dir() and (sub / CONFIG).is_file()),
                        key=_natural)
    if CONFIG not in files and hookpoints:
        raise DictionaryError(f"{path} holds one dictionary per hookpoint: {', '.join(hookpoints)}; load one of "
                              f"them, e.g. load_dictionary({str(path / hookpoints[0])!r})")
    raise DictionaryError(f"{path} holds {describe_contents(path)}; expected {_EXPECTED}")


def _safetensors_name(pickle_path: Path) -> str:
    """The safetensors file a converted pickle should become: sparsify's for ``sae.pt``, else SAELens'."""
    return sparsify.WEIGHTS if pickle_path.stem == "sae" else saelens.WEIGHTS


def _natural(name: str) -> list:
    """Sort key putting ``layers.2`` before ``layers.10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]
