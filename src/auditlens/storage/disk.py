"""An on-disk activation cache: a second session reads what the first computed instead of re-running
forward passes. Entries are safetensors files named by a hash of their key (no user text reaches a
path, so nothing can escape the directory), written atomically, and checked against a checksum on
every read: a corrupted entry is reported, deleted and recomputed, never used."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


def _digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


class DiskCache:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.corrupted = 0
        self.failed_writes = 0

    def path(self, key: tuple) -> Path:
        name = hashlib.blake2b(repr(key).encode(), digest_size=20).hexdigest()
        return self.directory / name[:2] / f"{name}.safetensors"

    def get(self, key: tuple) -> torch.Tensor | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensor = load_file(str(path))["value"]
            if metadata.get("key") != repr(key) or metadata.get("sha256") != _digest(tensor):
                raise ValueError("checksum or key mismatch")
        except (SafetensorError, ValueError, KeyError, OSError) as exc:
            self.corrupted += 1
            warnings.warn(f"auditlens: cache entry {path} is corrupted ({exc}); it is deleted and recomputed",
                          stacklevel=2)
            path.unlink(missing_ok=True)
            return None
        return tensor

    def put(self, key: tuple, value: torch.Tensor) -> None:
        """Keep ``value`` on disk; a write that fails (a full disk) is a warning: the run goes on from memory."""
        path = self.path(key)
        value = value.detach().cpu().contiguous()
        staging = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, staging = tempfile.mkstemp(prefix=".entry-", suffix=".safetensors", dir=path.parent)
            os.close(handle)
            save_file({"value": value}, staging, metadata={"key": repr(key), "sha256": _digest(value)})
            os.replace(staging, path)
        except (OSError, SafetensorError) as exc:
            self.failed_writes += 1
            warnings.warn(f"auditlens: could not write the cache entry {path} ({exc}); going on without it",
                          stacklevel=2)
        finally:
            if staging is not None and os.path.exists(staging):
                os.unlink(staging)
