"""``auditlens validate``: check audit and concept files without loading a model."""

from __future__ import annotations

from pathlib import Path

import jsonschema

from ..concept_file import concept_files, load_concept
from ..errors import AuditlensError
from .audit_file import SUFFIXES, read_audit_file, schema
from .yaml_source import AuditFileError, YamlSource


def validate_concept_file(path: Path) -> None:
    """Schema first (types, keys; with the line), then the content rules of load_concept."""
    source = YamlSource(path)
    errors = sorted(jsonschema.Draft202012Validator(schema("concept")).iter_errors(source.data),
                    key=lambda e: len(e.absolute_path))
    if errors:
        error = errors[0]
        key = ".".join(map(str, error.absolute_path)) or "the file"
        raise AuditFileError(path, source.line_of(list(error.absolute_path)), f"key {key!r}: {error.message}")
    load_concept(path)


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
    """Print one line per file when it is valid, else one line per error (every error of an audit file,
    in line order); exit code 1 if any file is invalid."""
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
                    print(f"ok    {path} ({len(entries)} audits)")
            else:
                validate_concept_file(path)
                print(f"ok    {path} (concept)")
        except AuditlensError as exc:
            failures += 1
            print(f"error {exc}")
    return 1 if failures else 0
