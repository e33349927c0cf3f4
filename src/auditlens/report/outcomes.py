"""One vocabulary of audit outcomes, used by the report, its summaries, the verdict and the terminal.

- ``passed``: every assertion held, and one of them could have failed;
- ``failed``: an assertion about the model did not hold (a finding);
- ``error``: the audit raised something other than an assertion (no finding either way);
- ``vacuous``: it passed, but a "must not change" condition held only because there was nothing to
  change (behaviour at chance, or one class predicted for every input): it proves nothing;
- ``lost``: the worker running it died;
- ``skipped`` and ``xfail`` (an expected failure that did fail).

``uncertain`` is not an outcome but a flag on passed or failed audits: a metric's interval straddles
its threshold, so another sample could have decided the other way.
"""

from __future__ import annotations

from collections.abc import Iterable

OUTCOMES = ("passed", "failed", "error", "vacuous", "lost", "skipped", "xfail")
GOOD = ("passed", "xfail")  # outcomes a later run may not fall from without it being a regression
NOT_RUN = ("skipped", "xfail")  # say nothing about the model


def normalize(outcome: str, kind: str | None = None) -> str:
    """The vocabulary's name for an outcome as pytest or a report of schema 1 named it."""
    if outcome == "failed" and kind == "error":
        return "error"
    return {"xfailed": "xfail", "xpassed": "passed"}.get(outcome, outcome)


def count(audits: Iterable[dict]) -> dict[str, int]:
    """Audits per outcome (these add up to ``total``), and how many of them are ``uncertain``."""
    audits = list(audits)
    counts = {outcome: sum(a["outcome"] == outcome for a in audits) for outcome in OUTCOMES}
    return {**counts, "uncertain": sum(bool(a.get("uncertain")) for a in audits), "total": len(audits)}
