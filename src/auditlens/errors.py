"""Errors meant for people: each names what was given and what would be valid."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AuditlensError(Exception):
    """Base class of every error auditlens raises on purpose."""


class ModelLoadError(AuditlensError):
    """A model spec could not be turned into a Subject."""


class SiteError(AuditlensError, KeyError):
    """A site name does not resolve to a module of the model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CaptureError(AuditlensError):
    """A capture request cannot be served (bad position, bad activation shape, NaNs)."""


class ConceptError(AuditlensError):
    """A concept or dataset is unusable (empty, one class, mismatched labels)."""


class CheckError(AuditlensError):
    """A check was called with arguments it cannot honour."""


def closest(given: str, valid: Iterable[str], n: int = 5) -> list[str]:
    """Up to ``n`` of ``valid`` closest to ``given``, best first (for 'did you mean')."""
    valid = list(valid)
    matches = difflib.get_close_matches(given, valid, n=n, cutoff=0.5)
    if len(matches) < n:  # also offer names that contain the last component asked for
        tail = given.rsplit(".", 1)[-1]
        matches += [v for v in valid if tail and tail in v and v not in matches][: n - len(matches)]
    return matches


class MutationError(AuditlensError):
    """Mutation testing cannot go on: no task data, no head to train, a budget too small, a suite that
    fails the original."""
