"""Sharded audit runs on the zoo: the repo's suite in one process, as 4 shards in sequence, and as 4 shards
on a local Ray instance with 2 workers; each set of shard reports merged and compared with the
one-process report (timings and shard marks aside).

The shards are costed with ``--audit-shard-costs`` by the one-process run's durations (as a CI run
would use its last release's report). Work per shard = the sum of its audits' durations in its own
report (model loading and process start-up are not audits' work); balance = max / mean over shards.
Merge time: 100 shard reports (25 copies of the 4 real ones, models renamed) read, checked and
recomputed into one report, in process; rendering the HTML is timed apart.

    python bench/shards.py [--no-ray] [--keep DIR]   # --keep: the reports stay in DIR

Last line: ``shards: merged equals single True/False, ray equals single True/False, shard balance B
(max/mean work), merge T s``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audit_suite import ROOT, run_audit_suite

SHARDS = 4


def comparable(report: dict) -> dict:
    """The report without timings and shard marks, through JSON (so that NaN metrics compare equal)."""
    from auditlens.report.model import strip_timings

    return json.loads(json.dumps({k: v for k, v in strip_timings(report).items() if k not in ("merged", "shard")}))


def differences(a, b, path: str = "", found: list | None = None) -> list[str]:
    """Where two reports differ (the first few paths), to say why they are not equal."""
    found = [] if found is None else found
    if len(found) >= 8:
        return found
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                found.append(f"{path}.{key}: only in the {'merged' if key in a else 'single'} report")
            else:
                differences(a[key], b[key], f"{path}.{key}", found)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b)):
            differences(x, y, f"{path}[{index}]", found)
    elif a != b:
        found.append(f"{path}: {str(a)[:100]} != {str(b)[:100]}")
    return found


def same(merged: dict, single: dict, what: str) -> bool:
    a, b = comparable(merged), comparable(single)
    if a != b:
        print(f"{what} differs from single:\n  " + "\n  ".join(differences(a, b)))
    return a == b


def run_shards(costs: Path, out: Path) -> tuple[float, list[Path]]:
    started, paths = time.perf_counter(), []
    for k in range(1, SHARDS + 1):
        directory = out / f"shard-{k}"
        done = subprocess.run([sys.executable, "-m", "pytest", "audits", "-q", "-p", "no:cacheprovider",
                               "--audit-shard", f"{k}/{SHARDS}", "--audit-shard-costs", str(costs),
                               "--audit-report", str(directory)], cwd=ROOT, capture_output=True, text=True)
        if done.returncode > 1 or not (directory / "report.json").exists():
            sys.exit(f"shard {k} did not run (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        paths.append(directory / "report.json")
    return time.perf_counter() - started, paths


def balance(paths: list[Path]) -> tuple[float, list[float]]:
    work = []
    for path in paths:
        seconds = {m["id"]: sum(a.get("duration") or 0.0 for a in m["audits"])
                   for m in json.loads(path.read_text())["models"]}
        work.append(sum(seconds.values()))
        costliest = sorted(seconds.items(), key=lambda item: -item[1])[:3]
        print(f"  {path.parent.name}: {work[-1]:.1f} s of audits, {len(seconds)} models; costliest "
              f"{', '.join(f'{m} {s:.1f} s' for m, s in costliest)}")
    return max(work) / (sum(work) / len(work)), work


def renamed(report: dict, suffix: str, index: int, count: int) -> dict:
    """A shard report with every model renamed ``id#suffix``, as shard ``index`` of ``count``."""
    report = copy.deepcopy(report)
    names = {m["id"]: f"{m['id']}#{suffix}" for m in report["models"]}

    def rename(nodeid: str) -> str:
        for old, new in names.items():
            nodeid = nodeid.replace(f"[{old}]", f"[{new}]")
        return nodeid

    for model in report["models"]:
        model["id"] = names[model["id"]]
        for audit in model["audits"]:
            audit["nodeid"] = rename(audit["nodeid"])
    mark = report["shard"]
    mark["accounting"] = {rename(n): v for n, v in mark["accounting"].items()}
    mark.update(index=index, count=count, plan="bench-100", partition=[], models=[])
    return report


def time_100_shards(paths: list[Path], out: Path) -> float:
    from auditlens.sharding.merge import merge_reports

    shards = [json.loads(p.read_text()) for p in paths]
    copies = 100 // len(shards)
    for c in range(copies):
        for k, shard in enumerate(shards):
            index = c * len(shards) + k + 1
            (out / f"{index:03d}").mkdir()
            (out / f"{index:03d}" / "report.json").write_text(
                json.dumps(renamed(shard, str(c), index, copies * len(shards))))
    started = time.perf_counter()
    merged = merge_reports([out])
    seconds = time.perf_counter() - started
    print(f"100 shard reports ({sum(p.stat().st_size for p in out.rglob('*.json')) / 1e6:.0f} MB, "
          f"{len(merged['models'])} models): merged in {seconds:.2f} s")
    return seconds


def main(argv: list[str]) -> None:
    sys.stdout.reconfigure(line_buffering=True)
    from auditlens.report import write_report
    from auditlens.sharding.merge import ShardReport, merge_reports, merge_shards

    keep = argv[argv.index("--keep") + 1] if "--keep" in argv else None
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(keep or scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        seconds, single = run_audit_suite([])
        (scratch / "single.json").write_text(json.dumps(single))
        print(f"one process: {seconds:.1f} s, {sum(len(m['audits']) for m in single['models'])} audits")
        shard_seconds, paths = run_shards(scratch / "single.json", scratch / "matrix")
        ratio, work = balance(paths)
        print(f"{SHARDS} shards in sequence: {shard_seconds:.1f} s; audits' seconds per shard "
              f"{', '.join(f'{w:.1f}' for w in work)}")
        started = time.perf_counter()
        merged = merge_reports(paths)
        merge_seconds = time.perf_counter() - started
        started = time.perf_counter()
        write_report(merged, scratch / "merged")
        print(f"merge of the {SHARDS}: {merge_seconds:.2f} s; rendering report.html etc.: "
              f"{time.perf_counter() - started:.1f} s")
        matrix_equal = same(merged, single, "merged")
        print(f"merged equals single: {matrix_equal}")
        ray_equal = None
        if "--no-ray" not in argv:
            from auditlens.sharding.on_ray import run_on_ray

            started = time.perf_counter()
            outcome = run_on_ray("local", SHARDS, ["audits", "-q", "-p", "no:cacheprovider", "--audit-shard-costs",
                                                   str(scratch / "single.json")], cwd=str(ROOT),
                                 init_options={"num_cpus": 2, "include_dashboard": False})
            print(f"ray, {SHARDS} shards on 2 workers: {time.perf_counter() - started:.1f} s "
                  f"(exits {[r.returncode for r in outcome.runs]})")
            shards = [ShardReport(f"task {r.index}", r.report) for r in outcome.runs if r.report_text is not None]
            ray_equal = not outcome.broken and same(merge_shards(shards), single, "ray")
            print(f"ray equals single: {ray_equal}")
        (scratch / "hundred").mkdir()
        hundred = time_100_shards(paths, scratch / "hundred")
    print(f"shards: merged equals single {matrix_equal}, ray equals single {ray_equal}, "
          f"shard balance {ratio:.2f} (max/mean work), merge {hundred:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
