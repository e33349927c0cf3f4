"""The verdict per model: did its behaviour rest on the intended mechanism?

- ``cheated``: an assertion on a mechanistic check (probe, erase, ablate, patch, steer, circuits,
  triggers: each check's record says so, see ``check_tags``) failed;
- ``learned``: every audit that ran passed, and each could have failed;
- ``inconclusive``: no audit ran, an audit ended in error or was lost, an audit passed vacuously
  (it could not have failed), or only non-mechanistic assertions failed; and a model some of whose
  audits never ran, or any model of a run that was interrupted (what did not run might have failed).

The reason names the strongest evidence: the check, site and metric against its threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .check_tags import is_mechanistic, mechanistic_failures
from .outcomes import NOT_RUN, normalize


@dataclass(frozen=True)
class Verdict:
    model: str
    verdict: str
    reason: str
    evidence: dict | None = None  # the deciding threshold: audit, check, site, metric, value, op, bound


def _missed(audit: dict) -> list[tuple[tuple[bool, float], dict]]:
    """((clear, how far past its bound), evidence) for every missed threshold on a mechanistic check:
    a miss whose interval straddles the bound ranks below every clear one."""
    found = []
    for check in audit.get("checks", []):
        if not is_mechanistic(check):
            continue
        for t in check.get("thresholds", []):
            if t["passed"]:
                continue
            value = check["metrics"].get(t["metric"], float("nan"))
            past = abs(value - t["value"]) / max(abs(t["value"]), 0.05)  # relative, so metrics compare
            found.append(((not t.get("uncertain"), past), {
                "audit": audit["name"], "nodeid": audit.get("nodeid"), "check": check["check"],
                "site": check.get("site"), "concept": check.get("concept"), "metric": t["metric"], "value": value,
                "op": t["op"],
                "bound": t["value"], "uncertain": bool(t.get("uncertain"))}))
    return found


def counted(n: int, noun: str) -> str:
    """``1 audit``, ``2 audits``: a count with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# what a negative value of a drop means, said where it is shown: "accuracy_drop = -0.500" alone reads as a typo
_NEGATIVE_DROPS = {"accuracy_drop": "the accuracy rose by {amount:.3f} under the intervention: the model did better "
                                    "without what it removed",
                   "min_member_drop": "removing a member raised the circuit's faithfulness, by {amount:.3f}"}


def describe(evidence: dict) -> str:
    """``patch at layer:0 on marker_swapped: flip_rate = 1.000, needed <= 0.05 (audit name)``; a negative
    drop says what it means."""
    shaky = ", uncertain" if evidence.get("uncertain") else ""
    data = f" on {evidence['concept']}" if evidence.get("concept") else ""
    value, meaning = evidence["value"], _NEGATIVE_DROPS.get(evidence["metric"])
    sign = f" (negative: {meaning.format(amount=-value)})" if meaning and value < 0 else ""
    return (f"{evidence['check']} at {evidence['site']}{data}: {evidence['metric']} = {value:.3f}{sign}, "
            f"needed {evidence['op']} {evidence['bound']:g} ({evidence['audit']}{shaky})")


def verdict_for(model: str, audits: Iterable[dict]) -> Verdict:
    """The verdict from one model's report audits (``outcome``, ``kind``, ``checks``; outcomes as pytest or
    a schema-1 report named them are read in the vocabulary of ``outcomes``)."""
    audits = [{**a, "outcome": normalize(a["outcome"], a.get("kind"))} for a in audits]
    ran = [a for a in audits if a["outcome"] not in NOT_RUN]
    by = {o: [a for a in ran if a["outcome"] == o] for o in ("passed", "failed", "error", "lost", "vacuous")}
    mechanistic = mechanistic_failures(ran)
    if mechanistic:
        missed = sorted((m for a in mechanistic for m in _missed(a)), key=lambda m: m[0], reverse=True)
        more = f"; {counted(len(mechanistic) - 1, 'more mechanistic audit')} failed" if len(mechanistic) > 1 else ""
        if missed:
            return Verdict(model, "cheated", describe(missed[0][1]) + more, missed[0][1])
        return Verdict(model, "cheated", f"{mechanistic[0]['name']} failed{more}")
    broken = by["error"] + by["lost"]
    if broken:
        first = broken[0]
        detail = f": {first['message']}" if first.get("message") else ""
        return Verdict(model, "inconclusive", f"{counted(len(broken), 'audit')} ended in error or "
                                              f"{'was' if len(broken) == 1 else 'were'} lost ({first['name']}{detail})")
    if by["vacuous"]:
        first = by["vacuous"][0]
        return Verdict(model, "inconclusive", f"{counted(len(by['vacuous']), 'audit')} could not have failed "
                                              f"({first['name']}: {first.get('vacuous')})")
    if by["failed"]:
        return Verdict(model, "inconclusive", f"{counted(len(by['failed']), 'non-mechanistic audit')} failed "
                                              f"({by['failed'][0]['name']}); behaviour alone cannot tell a cheat")
    if not by["passed"]:
        return Verdict(model, "inconclusive", "no audit ran")
    idle = ", ".join(f"{n} {o}" for o in NOT_RUN if (n := sum(a["outcome"] == o for a in audits)))
    ran = len(by["passed"])
    passed = "the 1 audit that ran passed" if ran == 1 else f"all {ran} audits that ran passed"
    return Verdict(model, "learned", passed + (f" ({idle})" if idle else ""))


def incomplete_verdict(model: str, interrupted: str | None, ended: int, not_run: list[str]) -> Verdict:
    """A run that stopped early, or a model some of whose audits never ended, decides nothing: what did
    not run might have failed."""
    missing = f"{len(not_run)} of its audits did not run" if not_run else "every audit of this model ended"
    if interrupted:
        return Verdict(model, "inconclusive", f"the run was interrupted ({interrupted}) after "
                                              f"{counted(ended, 'audit')} of this model ended; {missing}: no verdict")
    return Verdict(model, "inconclusive", f"{missing} (first: {not_run[0]}): no verdict")
