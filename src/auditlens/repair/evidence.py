"""What a report says about a model to repair: its record (matched by spec and fingerprint), the failed
audit that names the shortcut, and the failed audits no edit can answer.

A shortcut repair can remove is named by a failed audit with a ``<=`` bound of one of two kinds. A *patch*
audit's flip rate had to stay low: counterfactual pairs that differ only in the nuisance moved the decision.
An *erase* audit's accuracy drop had to stay low: erasing a concept the decision must not rest on moved it.
Other failures are of two kinds. A ``>=`` bound missed says the intended mechanism is missing (no edit adds
one). A ``<=`` bound on another check (an ablation, a trigger search) names a shortcut in a form repair does
not take yet.
Torch-free: the CLI reads reports before it loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import AuditlensError, CheckError

FAILED = ("failed", "error")


@dataclass(frozen=True)
class Shortcut:
    """A failed ``check`` (patch or erase) of ``model``: ``concept`` (the pairs, or the concept erased),
    ``site`` and ``positions`` it edited, the bound it missed (``metric`` ``op`` ``bound``), and the ``value``
    the model had."""

    audit: str
    model: str
    concept: str
    site: str
    positions: str
    metric: str
    op: str
    bound: float
    value: float
    check: str = "patch"

    def holds(self, value: float) -> bool:
        """Whether ``value`` of the metric meets the audit's bound."""
        return value <= self.bound if self.op == "<=" else value >= self.bound


@dataclass(frozen=True)
class Refusal:
    """Why no repair is tried or accepted, in a sentence a reviewer can check against the report."""

    reason: str


def read_report(path: str | Path) -> dict:
    """A report.json (a file, or a directory holding one), read and shape-checked by the report package's own
    reader; CheckError naming the path when it is missing or is no auditlens report."""
    from ..report.writers import ReportNotFound, report_file
    from ..report.writers import read_report as read_any

    try:
        file = report_file(path)
    except ReportNotFound:
        raise CheckError(f"--from {path}: no report there; give the report.json an audit run wrote "
                         "(pytest audits --audit-report DIR writes DIR/report.json)") from None
    try:
        return read_any(file)
    except AuditlensError as error:
        raise CheckError(f"--from {file}: not an auditlens report ({error})") from None


def model_record(report: dict, spec: str, fingerprint: str, where: str) -> dict:
    """The report's record of the model ``spec`` whose weights have ``fingerprint``; CheckError when the report
    audited no such model, or audited other weights under that name (a report from another model)."""
    models = report.get("models") or []
    named = [m for m in models if m.get("id") == spec]
    same_weights = [m for m in models if m.get("fingerprint") == fingerprint]
    if named and named[0].get("fingerprint") not in (None, fingerprint):
        raise CheckError(f"--from {where}: it audited {spec} with weights of fingerprint "
                         f"{named[0]['fingerprint']}, but {spec} now has fingerprint {fingerprint}: a report from "
                         "another model (or another build of it); audit this model and repair from that report")
    if named:
        return named[0]
    if len(same_weights) == 1:
        return same_weights[0]
    audited = ", ".join(m.get("id", "?") for m in models) or "none"
    raise CheckError(f"--from {where}: it has no record of {spec} (fingerprint {fingerprint}); it audited: {audited}")


def short_name(audit: dict, model_id: str) -> str:
    return audit["name"].removesuffix(f"[{model_id}]")


def names_the_audit(given: str, audit: dict, model_id: str) -> bool:
    """Whether ``given`` names ``audit``: its name as the report or summary.md prints it (with or without
    ``[model]``, with summary.md's Markdown escapes or emphasis), its node id, or the node id's last part."""
    text = given.replace("`", "").replace("**", "").replace("\\", "").strip()
    text = text.removeprefix(f"{model_id} ").strip()
    nodeid = audit.get("nodeid") or ""
    forms = {short_name(audit, model_id), audit["name"], nodeid, nodeid.split("::")[-1]}
    forms |= {form.removesuffix(f"[{model_id}]") for form in set(forms)}
    return text in forms or text.removesuffix(f"[{model_id}]") in forms


def find_shortcut(record: dict, audit_name: str | None, where: str) -> Shortcut | Refusal:
    """The failed audit ``audit_name`` (default: the one the model's verdict names, else the first failed patch
    audit) as a Shortcut; a Refusal when no failed audit names a shortcut repair can remove. CheckError for an
    audit the report lacks, one that passed, or a model whose audits all passed."""
    audits = record.get("audits") or []
    failed = [a for a in audits if a.get("outcome") in FAILED]
    if not failed:
        raise CheckError(f"--from {where}: every audit of {record['id']} passed; there is nothing to repair")
    if audit_name is not None:
        chosen = [a for a in audits if names_the_audit(audit_name, a, record["id"])]
        if not chosen:
            names = "\n".join(f"  - {short_name(a, record['id'])} ({a.get('outcome')})" for a in audits)
            raise CheckError(f"--audit {audit_name!r}: {record['id']} has no such audit in {where}; its audits:\n"
                             f"{names}")
        if chosen[0].get("outcome") not in FAILED:
            raise CheckError(f"--audit {audit_name!r} {chosen[0].get('outcome')} on {record['id']}: repair answers a "
                             "failed audit")
        candidates = chosen
    else:
        named = (record.get("evidence") or {}).get("audit")
        candidates = sorted(failed, key=lambda a: short_name(a, record["id"]) != named)
    for audit in candidates:
        shortcut = _as_shortcut(audit, record["id"])
        if shortcut is not None:
            return shortcut
    return Refusal(_why_not(candidates, record["id"]))


REMOVABLE = {"patch": "flip_rate", "erase": "accuracy_drop"}  # check -> the metric its <= bound names a shortcut by


def _as_shortcut(audit: dict, model_id: str) -> Shortcut | None:
    for check in audit.get("checks") or []:
        kind = check.get("check")
        for bound in check.get("thresholds") or []:
            if (bound.get("metric") == REMOVABLE.get(kind) and bound.get("op") == "<=" and bound.get("passed") is False
                    and check.get("concept")):
                positions = check.get("positions", "all") if kind == "patch" else check.get("position", "last")
                return Shortcut(short_name(audit, model_id), model_id, check["concept"], check["site"],
                                str(positions), bound["metric"], "<=", float(bound["value"]),
                                float(check["metrics"][bound["metric"]]), kind)
    return None


def _why_not(audits: list[dict], model_id: str) -> str:
    missing, other = [], []
    for audit in audits:
        bounds = [(c.get("check"), b) for c in audit.get("checks") or [] for b in c.get("thresholds") or []
                  if b.get("passed") is False]
        words = "; ".join(f"{check} {b['metric']} {b['op']} {b['value']}" for check, b in bounds)
        words = words or audit.get("outcome")
        entry = f"'{short_name(audit, model_id)}' ({words})"
        (other if any(b["op"] == "<=" for _, b in bounds) else missing).append(entry)
    parts = []
    if missing:
        parts.append("the intended mechanism is missing: " + ", ".join(missing) + " failed, and an edit removes "
                     "what a model computes, it adds nothing it does not")
    if other:
        parts.append("a shortcut is named only in a form repair does not take yet (it takes a failed patch "
                     "or erase audit: pairs or a concept that must not move the decision): " + ", ".join(other))
    return f"no failed audit of {model_id} names a shortcut repair can remove: " + "; ".join(parts)


def audit_files(record: dict) -> list[str]:
    """The files the model's audits came from, in the report's order: the suite the repair is re-audited by."""
    return list(dict.fromkeys(a["file"] for a in record.get("audits") or [] if a.get("file")))
