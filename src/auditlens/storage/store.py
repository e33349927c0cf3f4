"""The activation store: results keyed by (model fingerprint, data hash, interventions, what was read),
in memory under a byte budget (least recently used out first), optionally on disk.

It also remembers, per model, what has been read (the working set), which ``read_ahead`` uses to
decide what else a forward pass should keep while it runs.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import torch

from ..errors import CaptureError
from .disk import DiskCache

DEFAULT_CACHE_MB = 2048


def _env_mb(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        megabytes = int(value)
    except ValueError:
        raise CaptureError(f"environment variable {name} must be a whole number of megabytes; got {value!r}") from None
    if megabytes < 0:
        raise CaptureError(f"environment variable {name} must be 0 or more megabytes; got {megabytes}")
    return megabytes


class ActivationStore:
    """Results keyed by (model fingerprint, data hash, interventions, what was read).

    ``max_bytes`` bounds what is kept in memory (``AUDITLENS_CACHE_MB``, default 2048);
    ``read_ahead_bytes`` bounds what one forward pass may keep beyond what was asked for
    (``AUDITLENS_READ_AHEAD_MB``, default an eighth of the cache; 0 turns read-ahead off).
    """

    def __init__(self, max_bytes: int | None = None, directory: str | None = None,
                 read_ahead_bytes: int | None = None):
        self.max_bytes = _env_mb("AUDITLENS_CACHE_MB", DEFAULT_CACHE_MB) * 2**20 if max_bytes is None else max_bytes
        default_ahead = self.max_bytes // 8
        self.read_ahead_bytes = (_env_mb("AUDITLENS_READ_AHEAD_MB", default_ahead // 2**20) * 2**20
                                 if read_ahead_bytes is None else read_ahead_bytes)
        self._items: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._memory_only: set[tuple] = set()  # read ahead, not asked for yet: on disk once asked for
        self._bytes = 0
        self.working_set: dict[str, dict[tuple, None]] = {}  # fingerprint -> what was read, in order
        self.disk = None
        self.use_directory(directory if directory is not None else os.environ.get("AUDITLENS_CACHE_DIR"))

    def use_directory(self, directory: str | None) -> None:
        """Also keep entries on disk in ``directory`` (None: memory only)."""
        self.disk = DiskCache(directory) if directory else None

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: tuple) -> bool:
        """In memory (no disk lookup)."""
        return key in self._items

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: tuple) -> torch.Tensor | None:
        value = self._items.get(key)
        if value is None and self.disk is not None:
            value = self.disk.get(key)
            if value is not None:  # kept in memory too, under the same byte budget
                self._remember(key, value)
        if value is None:
            return None
        self._items.move_to_end(key)
        if key in self._memory_only:  # a read-ahead entry that turned out to be needed
            self._memory_only.discard(key)
            if self.disk is not None:
                self.disk.put(key, value)
        return value

    def put(self, key: tuple, value: torch.Tensor, *, disk: bool = True) -> None:
        """Keep ``value``; ``disk=False`` keeps it in memory only until it is first asked for
        (what a pass read ahead), so the disk holds only what was needed."""
        if disk and self.disk is not None:
            self.disk.put(key, value)
        if not disk:
            self._memory_only.add(key)
        self._remember(key, value)

    def note_read(self, fingerprint: str, what: tuple) -> None:
        """Remember that ``what`` (a site and position, or a readout) was read from this model."""
        self.working_set.setdefault(fingerprint, {})[what] = None

    def _remember(self, key: tuple, value: torch.Tensor) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= _size(old)
        self._items[key] = value
        self._bytes += _size(value)
        while len(self._items) > 1 and self._bytes > self.max_bytes:
            evicted_key, evicted = self._items.popitem(last=False)
            self._bytes -= _size(evicted)
            self._memory_only.discard(evicted_key)

    def clear(self) -> None:
        self._items.clear()
        self._memory_only.clear()
        self._bytes = 0
        self.working_set.clear()


def _size(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()

