"""The report as plain data (schema ``auditlens.report/1``).

Core, for other tools: ``models`` is a list of ``{id, verdict, audits}``; each audit is
``{name, outcome, metrics}``. Around it: ``run`` (versions, seed, git commit, time), and per model
its fingerprint, truth when known, forward passes executed and their lower bound (distinct
(inputs, interventions, batch) combinations its audits needed); per audit its node id, file and line,
checks (kind, site, dataset, every metric with its interval, thresholds, examples), duration and
forward passes (executed, and the audit's own lower bound).
"""

from __future__ import annotations

import datetime
import platform
import subprocess
from collections.abc import Iterable

from ..accounting import lower_bound
from .outcomes import count, normalize
from .verdict import incomplete_verdict, verdict_for

SCHEMA = "auditlens.report/2"  # 2: one outcome vocabulary (outcomes.py), decided_by, vacuous, evidence


def run_metadata(seed: int, started: float | None = None, duration: float | None = None,
                 loading: dict | None = None) -> dict:
    """The run: versions, seed, commit, time, and ``loading`` (device, dtype, device_map the models
    were loaded with, so a reader knows whether the numbers came from bf16 weights)."""
    import torch
    import transformers

    from .. import __version__

    return {
        "auditlens": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "seed": seed, "git_commit": _git_commit(),
        "started": None if started is None else datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(),
        "duration": duration, "loading": loading or {},
    }


def _git_commit() -> str | None:
    """The checked-out commit, or None (not a repository, no commit yet: rev-parse then echoes 'HEAD')."""
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD^{commit}"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 and all(c in "0123456789abcdef" for c in commit) \
        else None


def _margin(check: dict, threshold: dict) -> float:
    """How far a check's metric is on the good side of a threshold (negative: the wrong side)."""
    value = check["metrics"].get(threshold["metric"], float("nan"))
    return value - threshold["value"] if threshold["op"] in (">=", ">") else threshold["value"] - value


def decisive_check(checks: list[dict]) -> int | None:
    """Index of the check an audit's outcome rests on: the first whose threshold was missed; else, of the
    checks held to a threshold, the one closest to missing it (in a loop, the worst case); else the last
    check (the assertion comes after it). None when the audit ran no check."""
    if not checks:
        return None
    for index, check in enumerate(checks):
        if any(not t["passed"] for t in check.get("thresholds", [])):
            return index
    held = [(min(_margin(c, t) for t in c["thresholds"]), i) for i, c in enumerate(checks) if c.get("thresholds")]
    return min(held)[1] if held else len(checks) - 1


def audit_entry(record: dict) -> dict:
    """One test record as a report audit. Its ``metrics`` are those of the check its outcome rests on
    (``decided_by`` names it: index, check, site), not a mix of every check's."""
    checks = record["results"]
    decisive = decisive_check(checks)
    chosen = record["results"][decisive] if decisive is not None else None
    metrics = dict(chosen["metrics"]) if chosen else {}
    decided_by = None if chosen is None else {"index": decisive, "check": chosen["check"], "site": chosen["site"],
                                              "of": len(record["results"])}
    outcome = normalize(record["outcome"], record.get("kind"))
    vacuous = [t["vacuous"] for c in checks for t in c.get("thresholds", []) if t.get("vacuous")]
    if outcome == "passed" and vacuous:
        outcome = "vacuous"
    return {
        "name": record["name"], "nodeid": record["nodeid"], "file": record.get("file"), "line": record.get("line"),
        "outcome": outcome, "kind": record.get("kind"), "duration": record.get("duration"),
        "vacuous": vacuous[0] if outcome == "vacuous" else None,
        "forward_passes": record.get("forward_passes", 0),
        "forward_passes_lower_bound": lower_bound(record.get("needs", [])),
        "metrics": metrics, "decided_by": decided_by, "checks": record["results"],
        "uncertain": any(t.get("uncertain") for c in record["results"] for t in c.get("thresholds", [])),
        "message": record.get("message"),
        "definition": record.get("definition"),
    }


def build_report(records: Iterable[dict], run: dict, order: Iterable[str] = (),
                 planned: dict[str, str] | None = None) -> dict:
    """The report from the plugin's per-test records. Models come in ``order`` (the run's --model
    order), then any others sorted; audits sorted by node id: the same whatever the scheduling.
    ``planned`` (node id -> model) lists what the run meant to run: each model's ``not_run`` is what
    never ended. A run whose ``run["interrupted"]`` says why it stopped gives no model a verdict, nor
    does a model some of whose audits never ended."""
    records = [r for r in records if r.get("model")]
    planned = planned or {}
    present = {r["model"] for r in records} | set(planned.values())
    ids = [m for m in dict.fromkeys(order) if m in present] + sorted(present - set(order))
    ended = {r["nodeid"] for r in records}
    report_models = []
    for model in ids:
        mine = [r for r in records if r["model"] == model]
        audits = [audit_entry(r) for r in sorted(mine, key=lambda r: r["nodeid"])]
        not_run = sorted(n for n, m in planned.items() if m == model and n not in ended)
        verdict = verdict_for(model, audits)
        if run.get("interrupted") or not_run:  # what did not run might have failed
            verdict = incomplete_verdict(model, run.get("interrupted"), len(audits), not_run)
        first = next((r for r in mine if r.get("fingerprint")), {})
        executed = sum(a["forward_passes"] for a in audits)
        bound = lower_bound(n for r in mine for n in r.get("needs", []))
        report_models.append({
            "id": model, "verdict": verdict.verdict, "reason": verdict.reason, "evidence": verdict.evidence,
            "counts": count(audits),
            "fingerprint": first.get("fingerprint"), "truth": first.get("truth"),
            "origin": first.get("origin"),
            "forward_passes": executed,
            # the union over audits: two audits asking for the same inputs need one pass, not two
            "forward_passes_lower_bound": bound,
            "passes_above_bound": above_bound(mine, executed, bound),
            "audits": audits, "not_run": not_run,
        })
    return {"schema": SCHEMA, "run": run, "models": report_models}


def above_bound(records: list[dict], executed: int, bound: int) -> list[str]:
    """Why a model's executed passes exceed the lower bound, in words: each pass run again on inputs a
    pass already ran, with the reads no earlier pass kept, and what no audit's own log explains (on
    pytest-xdist, inputs another worker also ran: each worker keeps its own cache)."""
    passes: dict[str, list[int]] = {}  # why -> the passes of each time it happened
    for record in records:
        for repeat in record.get("repeats", []):
            passes.setdefault(repeat["why"], []).append(repeat["passes"])
    lines = [f"{why} ({sum(each)} passes" + (f", {len(each)} times)" if len(each) > 1 else ")")
             for why, each in passes.items()]
    explained = sum(sum(each) for each in passes.values())
    if executed - bound > explained:
        lines.append(f"{executed - bound - explained} passes on inputs run in another process (each pytest-xdist "
                     "worker keeps its own cache), or not logged")
    return lines


def strip_timings(report: dict, forward_passes: bool = False) -> dict:
    """The report without what legitimately changes between identical runs (times, durations); with
    ``forward_passes``, also without those counts, which depend on what was already cached (by an
    earlier test on the same xdist worker, or an earlier run in the same process)."""
    dropped = {"started", "duration", "comparison"} | ({"forward_passes"} if forward_passes else set())

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in dropped and not k.startswith("seconds_")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(report)
