"""Merging the reports of a sharded run into the report of the whole run.

The shards' audits become records again and the report is built from them as one process builds it
(``report.model.build_report``): verdicts, counts and forward-pass totals are recomputed, never added
up from the shards' summaries. Every shard of the plan must be there once, of one plan and one
auditlens version; with ``allow_partial`` the shards that are there are merged and the report says it
is partial: it is marked interrupted, so no model gets a verdict and no gate passes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import AuditlensError


class MergeError(AuditlensError):
    """Shard reports that cannot be merged: missing, duplicated, of another plan or auditlens version."""


@dataclass(frozen=True)
class ShardReport:
    path: str  # where it was read from (for errors)
    report: dict

    @property
    def mark(self) -> dict:
        return self.report["shard"]


def find_reports(paths: list[str | Path]) -> list[Path]:
    """The report.json files named: a file, a directory holding one, or a directory whose subdirectories
    hold them (how CI artifacts are downloaded: ``shards/shard-1/report.json``, ...)."""
    from ..report.writers import ReportNotFound, report_file

    found: list[Path] = []
    for given in map(Path, paths):
        try:
            found.append(report_file(given))
        except ReportNotFound:
            found += _reports_under(given)
    return list(dict.fromkeys(p.resolve() for p in found))


def _reports_under(given: Path) -> list[Path]:
    """The report.json files in the directories under ``given``; MergeError when there are none."""
    if not given.is_dir():
        raise MergeError(f"no shard report at {given}: give a report.json or a directory of them")
    inside = sorted(given.rglob("report.json"))
    if not inside:
        raise MergeError(f"{given} holds no report.json (nor does any directory under it); give shard "
                         "reports written by pytest --audit-shard K/N --audit-report DIR")
    return inside


def read_shards(paths: list[str | Path]) -> list[ShardReport]:
    from ..report import read_report

    shards = []
    for path in find_reports(paths):
        shards.append(ShardReport(str(path), read_report(path)))
    return shards


def _check(shards: list[ShardReport], allow_partial: bool) -> list[int]:
    """The shard numbers missing (empty unless ``allow_partial``); MergeError when shards disagree."""
    if not shards:
        raise MergeError("no shard report given")
    for shard in shards:
        mark = shard.report.get("shard")
        if not isinstance(mark, dict) or not {"index", "count", "plan", "accounting"} <= set(mark):
            raise MergeError(f"{shard.path} is not a shard report (no 'shard' section): write each shard with "
                             "pytest --audit-shard K/N --audit-report DIR")
    first = shards[0]
    for key, what in (("plan", "plan (models, audits, seed)"), ("count", "number of shards")):
        other = next((s for s in shards if s.mark[key] != first.mark[key]), None)
        if other is not None:
            raise MergeError(f"shards of different runs: {first.path} has {what} {first.mark[key]!r}, {other.path} "
                             f"has {other.mark[key]!r}; merge the shards of one run (same --model list, audits, "
                             "--audit-seed and --audit-shard N)")
    version = first.report["run"].get("auditlens")
    other = next((s for s in shards if s.report["run"].get("auditlens") != version), None)
    if other is not None:
        raise MergeError(f"shards of different auditlens versions: {first.path} was written by {version}, "
                         f"{other.path} by {other.report['run'].get('auditlens')}; run every shard with one version")
    seen: dict[int, str] = {}
    for shard in shards:
        index = shard.mark["index"]
        if index in seen:
            raise MergeError(f"shard {index} of {first.mark['count']} is given twice: {seen[index]} and {shard.path}; "
                             "give each shard's report once")
        seen[index] = shard.path
    missing = [k for k in range(1, first.mark["count"] + 1) if k not in seen]
    if missing and not allow_partial:
        raise MergeError(f"shard(s) {', '.join(map(str, missing))} of {first.mark['count']} missing (given: "
                         f"{', '.join(map(str, sorted(seen)))}); give every shard's report, or --allow-partial to "
                         "merge what is there into a report marked partial")
    return missing


def records_of(report: dict) -> tuple[list[dict], dict[str, str]]:
    """A shard report's audits as records again (``AuditRecord.to_dict()``, with the shard's accounting),
    and what it planned (node id -> model, those that never ended included)."""
    accounting = report["shard"]["accounting"]
    records, planned = [], {}
    for model in report["models"]:
        for audit in model["audits"]:
            kept = accounting.get(audit["nodeid"], {})
            record = {
                "nodeid": audit["nodeid"], "name": audit["name"], "file": audit.get("file"),
                "line": audit.get("line"), "model": model["id"], "fingerprint": model.get("fingerprint"),
                "truth": model.get("truth"), "origin": model.get("origin"), "definition": audit.get("definition"),
                # the report decides "vacuous" from the thresholds again
                "outcome": "passed" if audit["outcome"] == "vacuous" else audit["outcome"],
                "kind": audit.get("kind"), "when": "call", "duration": audit.get("duration") or 0.0,
                "forward_passes": audit.get("forward_passes", 0), "repeats": kept.get("repeats", []),
                "results": audit.get("checks", []), "message": audit.get("message")}
            if "needs" in kept:
                record["needs"] = kept["needs"]
            records.append(record)
            planned[audit["nodeid"]] = model["id"]
        planned.update(dict.fromkeys(model.get("not_run", []), model["id"]))
    return records, planned


def _run(shards: list[ShardReport]) -> dict:
    """The run's metadata: the first shard's, started at the earliest start, lasting the longest shard."""
    runs = [s.report["run"] for s in sorted(shards, key=lambda s: s.mark["index"])]
    run = dict(runs[0])
    starts = [r["started"] for r in runs if r.get("started")]
    run["started"] = min(starts) if starts else None
    durations = [r["duration"] for r in runs if r.get("duration") is not None]
    run["duration"] = max(durations) if durations else None
    commits = {r.get("git_commit") for r in runs}
    run["git_commit"] = commits.pop() if len(commits) == 1 else None
    interrupted = [f"shard {s.mark['index']}: {s.report['run']['interrupted']}" for s in shards
                   if s.report["run"].get("interrupted")]
    run["interrupted"] = "; ".join(interrupted) or None
    return run


def merge_shards(shards: list[ShardReport], allow_partial: bool = False) -> dict:
    """The whole run's report from its shards' reports (see the module docstring)."""
    from ..report.model import build_report

    missing = _check(shards, allow_partial)
    records, planned = [], {}
    for shard in sorted(shards, key=lambda s: s.mark["index"]):
        mine, plan = records_of(shard.report)
        records += mine
        planned.update(plan)
    mark = shards[0].mark
    run = _run(shards)
    partial = None
    if missing:
        partition = mark.get("partition") or []
        models = sorted({m for k in missing if k <= len(partition) for m in partition[k - 1]})
        lost = sum(n for k in missing if k <= len(partition) for n in partition[k - 1].values())
        partial = {"missing_shards": missing, "of": mark["count"], "models": models, "audits": lost}
        why = (f"partial merge: shard(s) {', '.join(map(str, missing))} of {mark['count']} missing, "
               f"{lost} audit(s) of {len(models)} model(s) not merged")
        run["interrupted"] = why if not run.get("interrupted") else f"{why}; {run['interrupted']}"
        for k in missing:  # their models are listed, with what did not merge, so no model silently vanishes
            for model, n in (partition[k - 1] if k <= len(partition) else {}).items():
                for i in range(1, n + 1):  # one entry per audit, so "N of its audits did not run" counts right
                    planned[f"(shard {k} of {mark['count']} not merged: audit {i} of {n} there)"] = model
    report = build_report(records, run, order=mark.get("models") or (), planned=planned)
    report["merged"] = {"shards": mark["count"], "plan": mark["plan"],
                        "from": [s.path for s in sorted(shards, key=lambda s: s.mark["index"])]}
    if partial is not None:
        report["partial"] = partial
    return report


def merge_reports(paths: list[str | Path], allow_partial: bool = False) -> dict:
    """Read the shard reports under ``paths`` and merge them (MergeError says why they cannot be)."""
    return merge_shards(read_shards(paths), allow_partial)
