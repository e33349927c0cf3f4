"""One audit's record: what the report is built from. Built once per audit by the pytest glue, it
travels as plain data (``to_dict``), inside a test report's properties, from xdist workers to the
controller; ``build_report`` and the verdict read that plain form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .outcomes import OUTCOMES


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    nodeid: str  # without the @group suffix pytest-xdist may add
    name: str
    file: str | None  # relative to the rootdir when inside it
    line: int | None  # 1-based
    model: str
    fingerprint: str | None
    truth: str | None  # the organism's known truth, when it has one
    origin: str | None = None  # a zoo organism's: "shipped" (fixtures/) or "built on this machine"
    definition: str | None = None  # digest of what the audit asks (its code, or its YAML entry): a change
    # there makes it another audit for the baseline comparison, not the same one measuring differently
    outcome: str  # one of outcomes.OUTCOMES but "vacuous", which the report decides from the thresholds
    kind: str | None  # "assertion" for a failed assertion, "error" for anything else raised
    when: str  # the pytest phase: setup, call or teardown
    duration: float
    forward_passes: int = 0  # executed while the audit ran
    needs: tuple[str, ...] | None = ()  # accounting need ids; None: not known (a lost audit)
    repeats: tuple[dict, ...] = ()  # passes run again on inputs already run, and why (Subject.repeats)
    results: tuple[dict, ...] = ()  # each check's CheckResult.to_dict()
    message: str | None = None  # the first line of the failure, at most 500 characters

    def __post_init__(self):
        allowed = [o for o in OUTCOMES if o != "vacuous"]
        if self.outcome not in allowed:
            raise ValueError(f"outcome must be one of {', '.join(allowed)}; got {self.outcome!r}")

    @classmethod
    def lost(cls, *, nodeid: str, file: str | None, model: str, when: str, duration: float,
             message: str) -> AuditRecord:
        """An audit whose worker died while it ran: kept in the report, marked lost."""
        return cls(nodeid=nodeid, name=nodeid.split("::")[-1], file=file, line=None, model=model,
                   fingerprint=None, truth=None, outcome="lost", kind="error", when=when, duration=duration,
                   needs=None, message=message[:500])

    def to_dict(self) -> dict:
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["results"] = list(self.results)
        data["repeats"] = list(self.repeats)
        if self.needs is None:
            del data["needs"]
        else:
            data["needs"] = list(self.needs)
        return data
