"""The organisms shipped in ``fixtures/``: the same weights on every machine.

torch picks its CPU kernels by instruction set (AVX2, AVX-512, ...), and their float results differ, so
a recipe trained on two machines gives two different models. The tests, the repo's audits and the
README's figures therefore load the builds shipped in ``fixtures/``, one directory per organism
(``count-learned``, ``count-learned@1``, ...): config, safetensors weights, tokenizer, the concept files
of its family (``concepts/``) and ``organism.json`` (truth, recipe hash, sha256 of each weights file,
how it was built). Recipes stay the source of truth: ``auditlens zoo ship`` rebuilds and re-ships,
``auditlens zoo verify`` rebuilds and compares by behaviour.

``$AUDITLENS_FIXTURES`` names another fixtures directory; ``$AUDITLENS_ZOO_SOURCE=rebuild`` ignores the
shipped builds and trains every organism from its recipe into the zoo cache (a rebuild on this
machine's kernels, or on torch's portable ones under ``ATEN_CPU_CAPABILITY=default``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

from ..errors import ModelLoadError
from .organism import METADATA_FILE, Organism, canonical_name

FIXTURES_VARIABLE = "AUDITLENS_FIXTURES"
SOURCE_VARIABLE = "AUDITLENS_ZOO_SOURCE"
SOURCES = ("shipped", "rebuild")
CONCEPTS_DIR = "concepts"
SHIPPED_SEEDS = 3  # seeds 0, 1 and 2 of each organism: the benches' (detection, circuits, triggers)
_CHECKOUT_FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"  # src/auditlens/zoo -> the checkout


def zoo_source() -> str:
    """``shipped`` (default: load fixtures/ where an organism is shipped) or ``rebuild`` (train every one)."""
    value = os.environ.get(SOURCE_VARIABLE, "shipped").strip() or "shipped"
    if value not in SOURCES:
        raise ModelLoadError(f"{SOURCE_VARIABLE} must be one of {', '.join(SOURCES)}; got {value!r}")
    return value


def fixtures_root() -> Path:
    """Where shipped organisms live: $AUDITLENS_FIXTURES, else the checkout's fixtures/."""
    value = os.environ.get(FIXTURES_VARIABLE)
    return Path(value) if value else _CHECKOUT_FIXTURES


def shipped_dir(organism: Organism) -> Path:
    return fixtures_root() / canonical_name(organism)


def is_shipped(organism: Organism) -> bool:
    return organism.build is not None and (shipped_dir(organism) / METADATA_FILE).is_file()


def find_shipped(organism: Organism) -> tuple[Path, dict] | None:
    """The shipped build of ``organism`` and its metadata, checked against the recipe and the weights'
    hashes; None where it is not shipped, or where $AUDITLENS_ZOO_SOURCE=rebuild."""
    if zoo_source() == "rebuild" or not is_shipped(organism):
        return None
    directory = shipped_dir(organism)
    metadata = read_metadata(directory)
    if metadata.get("recipe") != organism.recipe_hash:
        raise ModelLoadError(
            f"fixture:{organism.name}: the build shipped in {directory} was trained from recipe "
            f"{metadata.get('recipe')!r}, but its recipe is now {organism.recipe_hash!r} (its sources changed: "
            f"{', '.join(Path(s).name for s in organism.recipe_sources) or 'the zoo'}). Re-ship it with "
            f"`auditlens zoo ship {organism.name}`, or set {SOURCE_VARIABLE}=rebuild to train every fixture "
            "from its recipe")
    check_weights(directory, metadata)
    return directory, metadata


def read_metadata(directory: Path) -> dict:
    path = directory / METADATA_FILE
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: not a readable organism file ({exc})") from exc
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"{path}: an organism file holds a JSON object; got {type(metadata).__name__}")
    return metadata


def weight_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every safetensors file in ``directory``, by file name."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.glob("*.safetensors"))}


def check_weights(directory: Path, metadata: dict) -> None:
    """The weights are the bytes that were shipped (not a git LFS pointer, a partial checkout or an edit)."""
    expected = metadata.get("weights_sha256")
    if not isinstance(expected, dict) or not expected:
        raise ModelLoadError(f"{directory / METADATA_FILE}: no weights_sha256; re-ship it with "
                             f"`auditlens zoo ship {metadata.get('fixture', directory.name)}`")
    found = weight_hashes(directory)
    for name, digest in expected.items():
        if found.get(name) != digest:
            what = "is missing" if name not in found else f"has sha256 {found[name][:12]}..., not {digest[:12]}..."
            raise ModelLoadError(
                f"{directory / name} {what} as organism.json records: a git LFS pointer, a partial checkout or "
                f"an edited file? Restore it (git checkout -- {directory}) or re-ship it with "
                f"`auditlens zoo ship {metadata.get('fixture', directory.name)}`")


def build_environment() -> dict:
    """How a build was made: its weights depend on these (torch's CPU kernels differ by instruction set)."""
    import torch

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine()}


def ship(organism: Organism, build_dir: Path, probes: Path) -> Path:
    """Copy the cache build ``build_dir`` of ``organism`` into fixtures/, with its family's concept files
    from ``probes`` and the weights' hashes; the old shipped build is replaced in one rename."""
    target = shipped_dir(organism)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.ship-", dir=target.parent))
    try:
        shutil.copytree(build_dir.resolve(), staging, dirs_exist_ok=True)
        concepts = _copy_concepts(organism, probes, staging / CONCEPTS_DIR)
        metadata = read_metadata(staging)
        metadata.update(weights_sha256=weight_hashes(staging), concept_files=concepts)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n")
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _copy_concepts(organism: Organism, probes: Path, into: Path) -> list[str]:
    """The concept files (YAML and the JSONL each names) of the organism's datasets."""
    import yaml

    roles = organism.datasets
    names = dict.fromkeys([roles.get("in_distribution"), *roles.get("concepts", ()), *roles.get("counterfactual", ())])
    into.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in filter(None, names):
        spec = probes / f"{name}.yaml"
        if not spec.is_file():
            raise ModelLoadError(f"fixture:{organism.name} names the concept {name!r}, but {spec} does not exist")
        files = [spec]
        header = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
        files += [probes / header[key] for key in ("file", "pair_file") if isinstance(header.get(key), str)]
        for path in files:
            shutil.copy2(path, into / path.name)
            copied.append(f"{CONCEPTS_DIR}/{path.name}")
    return copied
