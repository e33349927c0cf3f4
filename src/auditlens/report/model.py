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
from ..verdict import verdict_for

SCHEMA = "auditlens.report/1"


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
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def audit_entry(record: dict) -> dict:
    """One test record as a report audit; ``metrics`` flattens its checks' metrics (the first wins)."""
    metrics: dict[str, float] = {}
    for check in record["results"]:
        for name, value in check["metrics"].items():
            metrics.setdefault(name, value)
    return {
        "name": record["name"], "nodeid": record["nodeid"], "file": record.get("file"), "line": record.get("line"),
        "outcome": record["outcome"], "kind": record.get("kind"), "duration": record.get("duration"),
        "forward_passes": record.get("forward_passes", 0),
        "forward_passes_lower_bound": lower_bound(record.get("needs", [])),
        "metrics": metrics, "checks": record["results"],
        "uncertain": any(t.get("uncertain") for c in record["results"] for t in c.get("thresholds", [])),
        "message": record.get("message"),
    }


def build_report(records: Iterable[dict], run: dict, order: Iterable[str] = ()) -> dict:
    """The report from the plugin's per-test records. Models come in ``order`` (the run's --model
    order), then any others sorted; audits sorted by node id: the same whatever the scheduling."""
    records = [r for r in records if r.get("model")]
    present = {r["model"] for r in records}
    ids = [m for m in dict.fromkeys(order) if m in present] + sorted(present - set(order))
    report_models = []
    for model in ids:
        mine = [r for r in records if r["model"] == model]
        verdict = verdict_for(model, mine)
        audits = [audit_entry(r) for r in sorted(mine, key=lambda r: r["nodeid"])]
        first = next((r for r in mine if r.get("fingerprint")), {})
        report_models.append({
            "id": model, "verdict": verdict.verdict, "reason": verdict.reason,
            "counts": {"passed": verdict.passed, "failed": verdict.failed, "errors": verdict.errors,
                       "skipped": sum(a["outcome"] in ("skipped", "xfailed") for a in audits),
                       "uncertain": sum(a["uncertain"] for a in audits)},
            "fingerprint": first.get("fingerprint"), "truth": first.get("truth"),
            "forward_passes": sum(a["forward_passes"] for a in audits),
            # the union over audits: two audits asking for the same inputs need one pass, not two
            "forward_passes_lower_bound": lower_bound(n for r in mine for n in r.get("needs", [])),
            "audits": audits,
        })
    return {"schema": SCHEMA, "run": run, "models": report_models}


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
