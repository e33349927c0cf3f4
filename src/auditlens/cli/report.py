"""``auditlens report render | diff | merge``: re-render a report, compare one with a baseline, merge the
shards of one run (``merge`` lives with the shards, in ``cli.shards``)."""

from __future__ import annotations

import sys


def add_parser(commands) -> None:
    report = commands.add_parser("report", help="re-render or compare reports")
    report_commands = report.add_subparsers(dest="report_command", required=True)
    render = report_commands.add_parser("render", help="write report.html and summary.md from a report.json")
    render.add_argument("report", help="a report.json")
    render.add_argument("--out", default=None, help="directory (default: beside the report)")
    render.set_defaults(run=run)
    diff = report_commands.add_parser(
        "diff", help="compare two reports; exit 0: no regression, 6: regressions, 2: nothing could be compared",
        description="Compare a report with a baseline. Exit status: 0 no regression (known failures, "
                    "failing in both, do not count), 6 one or more regressions, 2 nothing compared or a bad file.")
    diff.add_argument("old", help="the baseline: a report.json or its directory")
    diff.add_argument("new", help="the report to judge: a report.json or its directory")
    diff.add_argument("--tolerance", type=float, default=0.02, help="metric tolerance (default 0.02)")
    diff.add_argument("--fail-on-regression", action="store_true",
                      help="accepted for old scripts: a regression always exits 6")
    diff.set_defaults(run=run)
    from .shards import add_merge_parser

    add_merge_parser(report_commands)


def run(args) -> int:
    from pathlib import Path

    from ..report import compare_reports, read_report, write_report
    from ..report.compare import REGRESSION_EXIT, render_comparison

    if args.report_command == "render":
        data = read_report(args.report)
        home = Path(args.report) if Path(args.report).is_dir() else Path(args.report).parent
        out = Path(args.out) if args.out else home
        paths = write_report(data, out)
        print(f"wrote {paths['html']} and {paths['markdown']}" + ("" if out == home else f" and {paths['json']}"))
        return 0
    comparison = compare_reports(read_report(args.old), read_report(args.new), args.tolerance)
    print(render_comparison(comparison))
    if not comparison["compared"]:
        print(f"auditlens: nothing compared: no model of {args.new} is in {args.old} (by id or fingerprint)",
              file=sys.stderr)
        return 2
    return REGRESSION_EXIT if comparison["regressions"] else 0
