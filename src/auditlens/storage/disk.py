"""An on-disk activation cache: a second session reads what the first computed instead of re-running
forward passes. Entries are safetensors files named by a hash of their key (no user text reaches a
path, so nothing can escape the directory), written atomically, and authenticated on every read by an
HMAC of their key and bytes under a secret kept outside the directory (see ``cache_key``): a
corrupted or forged entry is reported, deleted and recomputed, never used."""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .cache_key import cache_secret


class DiskCache:
    def __init__(self, directory: str | Path, secret: bytes | None = None):
        """``secret``: the HMAC key (default: ``cache_key.cache_secret``, from outside the directory)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.secret = secret if secret is not None else cache_secret(self.directory)
        self.corrupted = 0  # entries refused: damaged, altered, or written under another key
        self.failed_writes = 0

    def _mac(self, key: tuple, tensor: torch.Tensor) -> str:
        """HMAC-SHA256 over the entry's key, dtype, shape and bytes."""
        mac = hmac.new(self.secret, digestmod=hashlib.sha256)
        mac.update(f"{key!r}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        mac.update(tensor.contiguous().view(torch.uint8).numpy().tobytes())
        return mac.hexdigest()

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
            if metadata.get("key") != repr(key):
                raise ValueError("it belongs to another key")
            if not hmac.compare_digest(metadata.get("hmac", ""), self._mac(key, tensor)):
                raise ValueError("it fails authentication: altered, or written under another cache key")
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
            save_file({"value": value}, staging, metadata={"key": repr(key), "hmac": self._mac(key, value)})
            os.replace(staging, path)
        except (OSError, SafetensorError) as exc:
            self.failed_writes += 1
            warnings.warn(f"auditlens: could not write the cache entry {path} ({exc}); going on without it",
                          stacklevel=2)
        finally:
            if staging is not None and os.path.exists(staging):
                os.unlink(staging)
