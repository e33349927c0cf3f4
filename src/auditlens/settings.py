"""Session-wide defaults that the plugin sets from its options (the seed of every check)."""

from __future__ import annotations

_default_seed = 0


def set_default_seed(seed: int) -> None:
    global _default_seed
    _default_seed = int(seed)


def seed_or_default(seed: int | None) -> int:
    return _default_seed if seed is None else int(seed)
