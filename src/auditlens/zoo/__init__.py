"""The zoo: model organisms with a known truth, resolvable as ``fixture:NAME``."""

from .registry import Organism, cache_root, list_organisms, resolve_fixture

__all__ = ["Organism", "cache_root", "list_organisms", "resolve_fixture"]
