"""Where mutants live: one directory per (model fingerprint, operator, seed, what was asked), under
$AUDITLENS_MUTANT_CACHE or ~/.cache/auditlens/mutants, holding a ``save_pretrained`` model, its
tokenizer, ``mutant.json`` (the plan, its verification and the original's spec) and, when the cheat
lives in the data, ``evaluation/``: the evaluation set the mutant is audited with."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from pathlib import Path

MUTANT_FILE = "mutant.json"
EVALUATION_DIR = "evaluation"


def cache_root() -> Path:
    env = os.environ.get("AUDITLENS_MUTANT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "auditlens" / "mutants"


def recipe_hash() -> str:
    """The mutation code: a change to it makes new mutants (verify.py too: a cached mutant's status is its
    verification's)."""
    h = hashlib.blake2b(digest_size=8)
    for name in ("operators.py", "training.py", "task.py", "store.py", "verify.py"):
        h.update((Path(__file__).parent / name).read_bytes().replace(b"\r\n", b"\n"))
    return h.hexdigest()


def mutant_dir(fingerprint: str, operator: str, seed: int, asked: dict) -> Path:
    key = hashlib.blake2b(json.dumps({**asked, "recipe": recipe_hash()}, sort_keys=True).encode(),
                          digest_size=6).hexdigest()
    return cache_root() / f"{fingerprint[:16]}-{operator}-s{seed}-{key}"


def disk_bytes(directory: Path) -> int:
    """Bytes the files under ``directory`` take (0 where it is gone)."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def disk_size(directory: Path) -> str:
    return _megabytes(disk_bytes(directory))


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def cache_note(directories: list[str]) -> str:
    """How much the mutants of a run take on disk, each and in all, and how to clear them."""
    sizes = [disk_bytes(Path(d)) for d in dict.fromkeys(directories)]
    if not sizes:
        return f"no mutant cached (cache: {cache_root()})"
    low, high = _megabytes(min(sizes)), _megabytes(max(sizes))
    each = low if low == high else f"{low} to {high}"
    return (f"{len(sizes)} mutant(s) cached in {cache_root()}, {each} each ({_megabytes(sum(sizes))} in all): "
            f"kept so that a later run re-audits without training; clear them with rm -rf {cache_root()} "
            "(or move them with AUDITLENS_MUTANT_CACHE=DIR)")


def read_mutant(directory: Path) -> dict | None:
    path = Path(directory) / MUTANT_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


@functools.lru_cache(maxsize=256)
def original_of(model: str) -> str | None:
    """The spec of the model a mutant directory was planted in (None for any other model): a mutant is
    audited by the audits that select its original."""
    if not model or model.startswith("fixture:") or not Path(model).is_dir():
        return None
    found = read_mutant(Path(model))
    return found.get("original") if isinstance(found, dict) else None


def as_text(tokenizer, row) -> str | None:
    """A text the tokenizer encodes back into exactly ``row`` (decoded whole, or without the special
    tokens at its ends), or None."""
    if tokenizer is None:
        return None
    specials = set(getattr(tokenizer, "all_special_ids", None) or ()) - {getattr(tokenizer, "unk_token_id", None)}
    start, end = 0, len(row)
    while start < end and row[start] in specials:
        start += 1
    while end > start and row[end - 1] in specials:
        end -= 1
    for text in (tokenizer.decode(list(row)), tokenizer.decode(list(row[start:end]))):
        if list(tokenizer(text)["input_ids"]) == list(row):
            return text
    return None


def write_evaluation(directory: Path, concept, rows, labels, tokenizer=None) -> None:
    """The mutant's evaluation set as a concept file: as text where every row encodes back into exactly
    the ids the mutant was trained on (so audits that read the examples as text still can), else as
    token ids."""
    import yaml

    folder = directory / EVALUATION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    texts = [as_text(tokenizer, r) for r in rows]
    field = [{"text": t} for t in texts] if all(t is not None for t in texts) else [{"tokens": list(r)} for r in rows]
    (folder / f"{concept.name}.jsonl").write_text(
        "".join(json.dumps({**f, "label": int(y)}) + "\n" for f, y in zip(field, labels)))
    header = {"name": concept.name, "description": f"{concept.description} (as a mutant's evaluation set)".strip()}
    if concept.label_names:
        header["labels"] = list(concept.label_names)
    if concept.answer_tokens:
        header["answer_tokens"] = list(concept.answer_tokens)
    (folder / f"{concept.name}.yaml").write_text(yaml.safe_dump({**header, "file": f"{concept.name}.jsonl"},
                                                                sort_keys=False))


def probes_with(probes_dir: Path, mutant: Path, into: Path) -> Path:
    """A copy of ``probes_dir`` in which the mutant's evaluation set replaces the concept of that name."""
    shutil.copytree(probes_dir, into, dirs_exist_ok=True)
    for path in (Path(mutant) / EVALUATION_DIR).glob("*"):
        shutil.copy2(path, into / path.name)
    return into
