"""``auditlens validate``: check audit and concept files without loading a model."""

from __future__ import annotations

from pathlib import Path

import jsonschema

from ..concepts.files import concept_files, read_concept_file
from ..errors import AuditlensError
from .audit_file import SUFFIXES, read_audit_file, schema
from .yaml_source import AuditFileError, YamlSource


def concept_file_errors(path: Path) -> list[AuditlensError]:
    """Every error of a concept file, in line order: its content (load_concept's rules) and its schema
    (types, keys), each once: a part the content rules named is not named again by the schema."""
    _, errors = read_concept_file(path)
    if any(error.keys is None for error in errors):  # unreadable, not YAML, not a mapping: nothing else to check
        return errors
    source = YamlSource(path)
    named = [error.keys for error in errors]
    for error in jsonschema.Draft202012Validator(schema("concept")).iter_errors(source.data):
        keys = list(error.absolute_path)
        if error.validator == "additionalProperties":  # about the unknown key, not the mapping holding it
            keys += [next(k for k in error.instance if k not in error.schema.get("properties", {}))]
        if any(_overlap(keys, other) for other in named):
            continue
        named.append(keys)
        key = ".".join(map(str, keys)) or "the file"
        errors.append(AuditFileError(path, source.line_of(keys), f"key {key!r}: {error.message}"))
    return sorted(errors, key=lambda e: e.line or 0)


def _overlap(keys: list, other: list) -> bool:
    """One part holds the other, or they are the same part (the file as a whole only when both are)."""
    if not keys or not other:
        return keys == other
    shorter = min(len(keys), len(other))
    return keys[:shorter] == other[:shorter]


def files_under(paths: list[str]) -> list[Path]:
    found = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.name.endswith(SUFFIXES))
            found += [p for p in concept_files(path) if not p.name.endswith(SUFFIXES)]
        else:
            found.append(path)
    return found


def validate_paths(paths: list[str], probes: str = "probes") -> int:
    """Print one line per file when it is valid, else one line per error (every error of an audit or concept
    file, in line order); exit code 1 if any file is invalid."""
    concepts = {p.stem for p in concept_files(probes)}
    failures = 0
    for path in files_under(paths):
        try:
            if not path.exists():
                raise AuditFileError(path, None, "no such file")
            if path.name.endswith(SUFFIXES):
                entries, errors = read_audit_file(path, concepts)
                for error in errors:
                    print(f"error {error}")
                failures += bool(errors)
                if not errors:
                    print(f"ok    {path} ({len(entries)} audit{'s' * (len(entries) != 1)})")
            else:
                errors = concept_file_errors(path)
                for error in errors:
                    print(f"error {error}")
                failures += bool(errors)
                if not errors:
                    print(f"ok    {path} (concept)")
        except AuditlensError as exc:
            failures += 1
            print(f"error {exc}")
    return 1 if failures else 0
