"""Where captured results are kept: in memory under a byte budget, and optionally on disk."""

from .disk import DiskCache
from .store import ActivationStore

__all__ = ["ActivationStore", "DiskCache"]
