"""The verdict per model: did its behaviour rest on the intended mechanism?

- ``learned``: every audit that ran for the model passed;
- ``cheated``: an assertion on a mechanistic check (see ``registry``: probe, erase, ablate, patch, steer)
  failed;
- ``inconclusive``: no audit ran, an audit errored or was lost (its worker died), or only
  non-mechanistic assertions failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .registry import is_mechanistic


@dataclass(frozen=True)
class Verdict:
    model: str
    verdict: str
    reason: str
    passed: int = 0
    failed: int = 0
    errors: int = 0


def verdict_for(model: str, records: Iterable[dict]) -> Verdict:
    """The verdict from one model's test records (``outcome``, ``kind``, ``results`` as the plugin stores them)."""
    records = [r for r in records if r["outcome"] not in ("skipped", "xfailed")]  # expected outcomes say nothing
    passed = sum(r["outcome"] == "passed" for r in records)
    errors = [r for r in records if r["outcome"] in ("failed", "lost") and r.get("kind") != "assertion"]
    failures = [r for r in records if r["outcome"] == "failed" and r.get("kind") == "assertion"]
    mechanistic = [r for r in failures if any(is_mechanistic(c["check"]) for c in r["results"])]
    counts = {"passed": passed, "failed": len(failures), "errors": len(errors)}
    if mechanistic:
        return Verdict(model, "cheated", f"{len(mechanistic)} mechanistic audit(s) failed", **counts)
    if errors:
        return Verdict(model, "inconclusive", f"{len(errors)} audit(s) errored", **counts)
    if failures:
        return Verdict(model, "inconclusive", f"{len(failures)} non-mechanistic audit(s) failed", **counts)
    if not passed:
        return Verdict(model, "inconclusive", "no audit ran", **counts)
    return Verdict(model, "learned", f"all {passed} audits passed", **counts)

