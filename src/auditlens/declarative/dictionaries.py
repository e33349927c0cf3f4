"""An audit file's ``dictionaries:`` map: the sparse dictionaries attached before its audits run, by the
site each reads. A value is a directory (SAELens or sparsify format, relative to the audit file and
inside its directory; ``{model}`` becomes the model's name), or ``{path: ..., writes_to: SITE}`` for a
transcoder, or ``{train: {data: [concepts], width, k, seed, position}}`` to train a TopK SAE on the
model's activations (cached by model, site, data and settings)."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckError
from ..sites.features import is_feature_name
from ..sites.names import parse_alias

DEFAULT_WIDTH, DEFAULT_K = 128, 4
OUTSIDE = "AUDITLENS_ALLOW_OUTSIDE_FILES"


@dataclass(frozen=True)
class DeclaredDictionary:
    """One entry of the map: where it reads, and a directory or how to train one."""

    audit_file: Path
    site: str
    path: str | None = None
    writes_to: str | None = None
    train: tuple = ()  # (("data", (...)), ("width", N), ...) as items, so the entry stays hashable

    def directory(self, model_name: str) -> Path:
        """The directory for ``model_name``, inside the audit file's directory (unless allowed elsewhere)."""
        base = self.audit_file.parent
        path = base / self.path.replace("{model}", directory_name(model_name))
        if os.environ.get(OUTSIDE, "") != "1" and not path.resolve().is_relative_to(base.resolve()):
            raise CheckError(f"{self.audit_file}: dictionaries.{self.site}: {self.path!r} lies outside the audit "
                             f"file's directory {base}; put the dictionary beside it or below (or set {OUTSIDE}=1 "
                             "to allow files elsewhere)")
        return path


def directory_name(name: str) -> str:
    """A model or site name as one directory name: ``fixture:count-learned@1`` -> ``count-learned@1``,
    ``layer:0`` -> ``layer-0`` (dictionaries are kept per model and site under such names)."""
    return re.sub(r"[^A-Za-z0-9@._-]+", "-", name.removeprefix("fixture:")).strip("-") or "model"


def declared_dictionaries(audit_file: Path, data: dict,
                          concepts) -> tuple[tuple[DeclaredDictionary, ...], list[tuple[str, str]]]:
    """The map's entries, and the problems found without a model: a site that is not one, a directory
    outside the audit file's or missing, an unknown concept to train on. (The schema checked the shape.)"""
    declared, problems = [], []
    for site, value in (data.get("dictionaries") or {}).items():
        where = f"dictionaries.{site}"
        whole = ":" not in site or parse_alias(site) is not None or re.fullmatch(r"neurons:-?\d+", site)
        if is_feature_name(site) or not whole:
            problems.append((site, f"{where}: {site!r} is not a site a dictionary reads; give embed, layer:N, attn:N, "
                                   "mlp:N, neurons:N or a module path"))
            continue
        value = {"path": value} if isinstance(value, str) else dict(value)
        train = value.get("train")
        entry = DeclaredDictionary(Path(audit_file), site, value.get("path"), value.get("writes_to"),
                                   tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in (train or {}).items()))
        if entry.path is not None:
            try:
                directory = entry.directory("model")
            except CheckError as exc:
                problems.append((site, f"{where}: {str(exc).split(': ', 2)[-1]}"))
                continue
            if "{model}" not in entry.path and not directory.is_dir():
                problems.append((site, f"{where}: no dictionary directory at {directory} (a directory with cfg.json "
                                       "and sae_weights.safetensors, or sparsify's cfg.json and sae.safetensors)"))
                continue
        for name in (train or {}).get("data", ()):
            if concepts is not None and name not in concepts:
                problems.append((site, f"{where}: train.data names {name!r}, which is not a concept in probes/ "
                                f"({', '.join(sorted(concepts)) or 'none'})"))
        declared.append(entry)
    return tuple(declared), problems


def attach_declared(subject, declared: tuple[DeclaredDictionary, ...], concept_of) -> None:
    """Attach each declared dictionary to ``subject`` (loaded, or trained and cached)."""
    from ..features.fit import cached_directory

    for entry in declared:
        if entry.path is not None:
            directory = entry.directory(subject.id)
            if not directory.is_dir():
                raise CheckError(f"{entry.audit_file}: dictionaries.{entry.site}: no dictionary directory at "
                                 f"{directory} for model {subject.id}; train one with `auditlens dictionary train "
                                 f"{entry.site} --model {subject.id} --data CONCEPT... --out {directory}`")
        else:
            train = dict(entry.train)
            directory = cached_directory(subject, entry.site, [concept_of(n) for n in train["data"]],
                                         width=train.get("width", DEFAULT_WIDTH), k=train.get("k", DEFAULT_K),
                                         seed=train.get("seed", 0), position=train.get("position", "all"))
        dictionary = _loaded(str(directory.resolve()), _stamp(directory))  # read once per file, not per audit
        subject.attach_dictionary(entry.site, dictionary, writes_to=entry.writes_to)


def _stamp(directory: Path) -> tuple:
    """When the directory's files last changed: a dictionary replaced on disk is read again."""
    return tuple(sorted((f.name, f.stat().st_mtime_ns) for f in directory.iterdir() if f.is_file()))


@functools.lru_cache(maxsize=16)
def _loaded(directory: str, stamp: tuple):
    from ..dictionaries import load_dictionary

    return load_dictionary(directory)
