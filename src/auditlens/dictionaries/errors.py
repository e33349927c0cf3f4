"""The one error a sparse dictionary raises, and how its messages name where a dictionary came from."""

from __future__ import annotations

from pathlib import Path

from ..errors import AuditlensError


class DictionaryError(AuditlensError):
    """A sparse dictionary (SAE or transcoder) cannot be read, built, trained or used as asked."""


def describe(source: Path | None) -> str:
    """How a message names a dictionary: its file's full path, or that it was made in memory."""
    return str(Path(source).resolve()) if source is not None else "the dictionary made in memory (no file)"
