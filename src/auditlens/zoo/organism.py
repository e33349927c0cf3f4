"""A model organism: a named, deterministic recipe (or a shipped model) with a known truth, and where
its build lives in the zoo cache."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

METADATA_FILE = "organism.json"


@dataclass(frozen=True)
class Organism:
    """A named model organism.

    ``build(directory, seed)`` writes the model there and returns its metadata (datasets, truth);
    ``locate()`` instead returns a directory that already exists (a model a package ships).
    """

    name: str
    family: str
    description: str
    truth: str | None = None  # "learned" | "cheated" | None (not known: a real model)
    seed: int = 0
    build: Callable[[Path, int], dict] | None = field(default=None, compare=False)
    locate: Callable[[], Path] | None = field(default=None, compare=False)
    # the source files of the recipe: a change to any of them means a rebuild (default: the whole zoo)
    recipe_sources: tuple[Path, ...] = field(default=(), compare=False)
    # concept files (in probes/) by role: in_distribution, concepts, counterfactual
    datasets: dict = field(default_factory=dict, compare=False)

    @property
    def recipe_hash(self) -> str:
        """Changes when the recipe's sources, the seed or the name change: then it is rebuilt (and a shipped
        build is stale). Line endings are not the recipe: a checkout with CRLF gets the same hash."""
        h = hashlib.blake2b(digest_size=6)
        h.update(f"{self.name}:{self.seed}".encode())
        if self.build is not None:
            for source in sorted(self.recipe_sources or Path(__file__).parent.glob("*.py")):
                h.update(Path(source).read_bytes().replace(b"\r\n", b"\n"))
        return h.hexdigest()


def cache_root() -> Path:
    """Where organisms are built: $AUDITLENS_ZOO_CACHE, else ~/.cache/auditlens/zoo."""
    env = os.environ.get("AUDITLENS_ZOO_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "auditlens" / "zoo"


def canonical_name(organism: Organism) -> str:
    """``NAME`` for seed 0, ``NAME@SEED`` for the others: the name its shipped directory has."""
    base = organism.name.partition("@")[0]
    return base if organism.seed == 0 else f"{base}@{organism.seed}"


def organism_dir(organism: Organism) -> Path:
    """The cache directory of ``organism``'s build on this machine's kernels: one per recipe and per CPU
    capability torch runs with (``ATEN_CPU_CAPABILITY=default`` builds on its portable kernels, and so
    gives other weights than an AVX-512 build of the same recipe)."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability().lower()
    return cache_root() / f"{organism.name}-{organism.recipe_hash}-{capability}"
