"""Registry of model organisms: each is loaded from its shipped build in fixtures/, or else built
from its recipe into a cache directory, once per recipe and CPU capability.

A built organism is a ``save_pretrained`` directory (safetensors, tokenizer) plus
``organism.json``: its truth (learned / cheated), family, seed, datasets and how it was built.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from filelock import FileLock

from ..errors import ModelLoadError, closest
from ..progress import quiet_transformers, report
from .organism import METADATA_FILE, Organism, cache_root, organism_dir
from .organisms import BUILTIN
from .shipped import build_environment, find_shipped, is_shipped, zoo_source
from .training import deterministic_training

__all__ = ["METADATA_FILE", "Organism", "build", "cache_root", "get", "list_organisms", "needs_training",
           "organism_dir", "register", "resolve_fixture"]


_REGISTRY: dict[str, Organism] = {organism.name: organism for organism in BUILTIN}


def register(organism: Organism) -> Organism:
    """Add an organism of your own (resolvable as ``fixture:NAME``)."""
    _REGISTRY[organism.name] = organism
    return organism


def list_organisms() -> list[Organism]:
    return list(_REGISTRY.values())


def get(name: str) -> Organism:
    """``NAME`` or ``NAME@SEED`` (the same recipe trained from another seed)."""
    base, _, seed = name.partition("@")
    if seed:
        if not seed.isdigit() or int(seed) >= 2**32:
            raise ModelLoadError(f"fixture {name!r}: the part after '@' is a seed, a whole number from 0 to "
                                 f"{2**32 - 1}; got {seed!r}")
        if int(seed) == 0:  # NAME@0 is NAME: one build, one shipped directory
            return get(base)
        return dataclasses.replace(get(base), name=f"{base}@{int(seed)}", seed=int(seed))
    if name not in _REGISTRY:
        near = closest(name, _REGISTRY)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise ModelLoadError(
            f"no fixture named {name!r}.{hint} Known fixtures: {', '.join(sorted(_REGISTRY))} "
            "(see `auditlens zoo list`)"
        )
    return _REGISTRY[name]


def needs_training(organism: Organism) -> bool:
    """Whether loading ``organism`` would train it: a recipe neither shipped (or ignored) nor in the cache."""
    if organism.build is None or (zoo_source() == "shipped" and is_shipped(organism)):
        return False  # a shipped build is loaded (checked then: a stale one is refused with the fix)
    return not (organism_dir(organism) / METADATA_FILE).is_file()


def resolve_fixture(name: str) -> tuple[Path, dict]:
    """The directory of fixture ``name`` and its metadata: the build shipped in fixtures/ where there
    is one, else the cache's build, trained first if needed. ``origin`` in the metadata says which. The
    directory is the build itself, not the link to it: a rebuild that swaps in a new one does not pull
    it away."""
    organism = get(name)
    if organism.locate is not None:
        if "@" in name:
            shipped = organism.name.partition("@")[0]
            raise ModelLoadError(f"fixture {shipped!r} is shipped, not trained: it has no seeds")
        return organism.locate(), {"fixture": name, "family": organism.family, "truth": organism.truth,
                                   "origin": "shipped by a package"}
    shipped = find_shipped(organism)
    if shipped is not None:
        directory, metadata = shipped
        return directory.resolve(), {**metadata, "datasets": organism.datasets, "origin": "shipped"}
    directory = organism_dir(organism)
    if not (directory / METADATA_FILE).is_file():
        started = time.perf_counter()
        report(f"training fixture:{name} on first use (not shipped in fixtures/; cached in {directory.parent}) ...")
        build(organism)
        report(f"fixture:{name} built in {time.perf_counter() - started:.1f} s")
    directory = directory.resolve()
    metadata = json.loads((directory / METADATA_FILE).read_text())
    capability = (metadata.get("built_with") or {}).get("cpu_capability")
    origin = "built on this machine" + (f" ({capability} kernels)" if capability else "")
    return directory, {**metadata, "datasets": organism.datasets, "origin": origin}


def build(organism: Organism, force: bool = False) -> Path:
    """Build ``organism`` into its cache directory. One process builds it at a time (a lock per
    organism; the others wait, then find it built); the build goes into a directory of its own and a
    link is swapped onto it in one step, so a reader never sees a missing or half-built organism, even
    with ``force``. Builds superseded more than GRACE_SECONDS ago, and staging left by killed builds,
    are removed by the next build."""
    directory = organism_dir(organism)
    if organism.build is None or ((directory / METADATA_FILE).is_file() and not force):
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(directory.parent / f".{directory.name}.lock"):
        if (directory / METADATA_FILE).is_file() and not force:  # built while this process waited
            return directory
        _remove_stale_builds(directory)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.build-", dir=directory.parent))
        try:
            with quiet_transformers(), deterministic_training():
                metadata = organism.build(staging, organism.seed)
            metadata = {
                "fixture": organism.name, "family": organism.family, "truth": organism.truth,
                "seed": organism.seed, "recipe": organism.recipe_hash, "built_with": build_environment(), **metadata,
            }
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=1, sort_keys=True))
            _swap_in(staging, directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return directory


GRACE_SECONDS = 600  # how long a superseded build stays for readers that resolved it before the swap


def _swap_in(build_dir: Path, directory: Path) -> None:
    """Point ``directory`` (a symbolic link) at ``build_dir`` in one rename."""
    link = directory.parent / f".{directory.name}.link-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(build_dir.name)
    if directory.is_dir() and not directory.is_symlink():  # a build from before builds were linked
        directory.rename(directory.parent / f".{directory.name}.build-old-{os.getpid()}")
    os.replace(link, directory)


def _remove_stale_builds(directory: Path) -> None:
    """Under the organism's lock: builds nothing links to any more, once past their grace period."""
    current = directory.resolve().name if directory.is_symlink() else None
    for old in directory.parent.glob(f".{directory.name}.build-*"):
        if old.name != current and time.time() - old.stat().st_mtime > GRACE_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
