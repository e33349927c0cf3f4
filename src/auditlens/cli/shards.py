"""``auditlens report merge`` (the shards of one run into its report) and ``auditlens run-ray`` (the
shards as Ray tasks, then merged). Exit status of both: 0 every audit passed (as pytest would have
exited), 1 an audit failed, errored or was lost, 2 shards that do not merge, 3 a partial merge."""

from __future__ import annotations

import argparse
from pathlib import Path

PARTIAL_EXIT = 3  # merged with --allow-partial and shards were missing: never a pass


def add_merge_parser(report_commands) -> None:
    """``report merge`` on the ``report`` command's subparsers."""
    merge = report_commands.add_parser(
        "merge", help="merge the shard reports of one run (pytest --audit-shard K/N) into its report",
        description="Combine the reports of every shard of one run into one report.json, report.html, summary.md "
                    "and junit.xml, with verdicts and totals recomputed from the audits. Shards must be of one "
                    "plan and auditlens version, each once. Exit 0: every audit passed; 1: an audit failed; 2: the "
                    "shards do not merge; 3: merged with --allow-partial and shards were missing.")
    merge.add_argument("reports", nargs="+", metavar="DIR_OR_REPORT",
                       help="shard report.json files, or directories holding them (searched recursively)")
    merge.add_argument("--out", required=True, metavar="DIR", help="directory for the merged report")
    merge.add_argument("--allow-partial", action="store_true",
                       help="merge the shards that are there; the report is marked partial and gives no verdict")
    merge.set_defaults(run=run_merge)


def add_parser(commands) -> None:
    """``run-ray`` on the top-level subparsers."""
    ray = commands.add_parser(
        "run-ray", help="run an audit suite as N shards on a Ray cluster, then merge their reports",
        description="Run `pytest PYTEST_ARGS --audit-shard K/N` for K = 1..N, one Ray task each, collect the shard "
                    "reports and merge them (as `auditlens report merge`). Needs Ray: pip install 'auditlens[ray]'.",
        epilog="example: auditlens run-ray --address auto --shards 8 -- audits --model ./ckpt-1 --model ./ckpt-2")
    ray.add_argument("--address", required=True,
                     help="the Ray cluster (auto, HOST:6379, ray://HOST:10001), or 'local' to start one here")
    ray.add_argument("--shards", type=int, required=True, metavar="N", help="number of shards, one task each")
    ray.add_argument("--cpus-per-shard", type=int, default=1, metavar="C",
                     help="CPUs each task asks Ray for, and torch's threads in it (default 1)")
    ray.add_argument("--gpus-per-shard", type=float, default=0, metavar="G",
                     help="GPUs each task asks Ray for (default 0; give --audit-device cuda to pytest too)")
    ray.add_argument("--upload", action="store_true",
                     help="ship this directory to the nodes (Ray runtime_env working_dir) instead of running in "
                          "the same path on each node")
    ray.add_argument("--out", default=None, metavar="DIR",
                     help="directory for the merged report (default: the pytest --audit-report, else reports)")
    ray.add_argument("--allow-partial", action="store_true",
                     help="merge the shards that finished even if some did not (the report is marked partial)")
    ray.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="-- PYTEST_ARGS",
                     help="the pytest command line of the whole run (after --)")
    ray.set_defaults(run=run_ray)


def write_merged(report: dict, out: str | Path) -> dict[str, Path]:
    """The merged report's four files in ``out``: report.json, report.html, summary.md, junit.xml."""
    from ..report import write_report
    from ..report.junit import JUNIT_NAME, render_junit

    paths = write_report(report, out)
    paths["junit"] = Path(out) / JUNIT_NAME
    paths["junit"].write_text(render_junit(report), encoding="utf-8")
    return paths


def exit_status(report: dict) -> int:
    """0, 1 or PARTIAL_EXIT for a merged report (see the module docstring)."""
    from ..report.compare import FAILING

    if report.get("partial"):
        return PARTIAL_EXIT
    failing = any(a["outcome"] in FAILING for m in report["models"] for a in m["audits"])
    return 1 if failing or any(m.get("not_run") for m in report["models"]) else 0


def _finish(report: dict, out: str | Path) -> int:
    paths = write_merged(report, out)
    audits = sum(len(m["audits"]) for m in report["models"])
    print(f"merged {len(report['merged']['from'])} of {report['merged']['shards']} shards: {len(report['models'])} "
          f"models, {audits} audits; wrote "
          f"{paths['json']}, {paths['html'].name}, {paths['markdown'].name}, {paths['junit'].name}")
    if report.get("partial"):
        print(f"auditlens: PARTIAL report: {report['run']['interrupted']}; no model has a verdict")
    return exit_status(report)


def run_merge(args) -> int:
    """``auditlens report merge``."""
    from ..sharding.merge import merge_reports

    return _finish(merge_reports(args.reports, allow_partial=args.allow_partial), args.out)


def run_ray(args) -> int:
    """``auditlens run-ray``: the shards on Ray, then the merge; a shard that did not finish is shown."""
    import sys

    from ..sharding.merge import ShardReport, merge_shards
    from ..sharding.on_ray import run_on_ray, shard_arguments

    pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    outcome = run_on_ray(args.address, args.shards, pytest_args, cpus=args.cpus_per_shard, upload=args.upload,
                         gpus=args.gpus_per_shard)
    for run in outcome.broken:
        print(f"auditlens: shard {run.index}/{args.shards} did not finish (pytest exit {run.returncode}):\n"
              f"{run.output}", file=sys.stderr)
    shards = [ShardReport(f"shard {r.index} (Ray task)", r.report) for r in outcome.runs if r.report_text is not None]
    if not shards:
        from ..errors import AuditlensError

        raise AuditlensError(f"no shard of {args.shards} wrote a report; see each shard's output above")
    out = args.out or shard_arguments(pytest_args)[1] or "reports"
    return _finish(merge_shards(shards, allow_partial=args.allow_partial), out)
