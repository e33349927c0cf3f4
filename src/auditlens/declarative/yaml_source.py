"""YAML read with ``yaml.safe_load`` (plain data only), plus the line of any key for error messages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from ..errors import AuditlensError
from ..safe_files import safe_yaml


class AuditFileError(AuditlensError):
    """An audit or concept file is malformed: names the file, the line and what would be valid."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path, self.line, self.message = str(path), line, message
        self.entry: int | None = None  # the audits[] index it is about, when it is about one
        self.schema_path: list | None = None  # where in the data a schema error is
        self.covers_inside = False  # a schema error about a value as a whole: errors inside it are knock-ons
        super().__init__(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")


class YamlSource:
    """A parsed YAML file: ``data`` from safe_load, and ``line_of(path)`` from the composed node tree."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.text = safe_yaml.read_utf8(self.path)
        except OSError as exc:
            raise AuditFileError(path, None, f"cannot read the file: {exc.strerror}") from exc
        except safe_yaml.NotTextError as exc:
            raise AuditFileError(path, exc.line, str(exc)) from None
        if not self.text.strip():
            raise AuditFileError(path, 1, "the file is empty")
        try:
            self.root = safe_yaml.compose(self.text)  # nodes only, and the alias bound, before any object is built
            self.data = safe_yaml.construct(self.root)
        except yaml.constructor.ConstructorError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            raise AuditFileError(path, line, f"{exc.problem}: spec files are read with yaml.safe_load, which builds "
                                        "plain data only (mappings, lists, strings, numbers)") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise AuditFileError(path, mark.line + 1 if mark else None, f"not valid YAML: {problem}") from exc

    def line_of(self, keys: Sequence) -> int:
        """1-based line of the deepest node along ``keys`` (mapping keys and list indices) that exists."""
        return safe_yaml.line_of(self.root, keys)
