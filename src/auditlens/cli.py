"""The ``auditlens`` command: ``validate``, ``init``, ``discover``, ``schema``, ``report`` (render, diff, merge),
``run-ray``, ``mutate``, ``repair``, ``dictionary train``, ``zoo list``, ``zoo build``, ``zoo ship`` and
``zoo verify``."""

from __future__ import annotations

import argparse
import sys

from .errors import AuditlensError


def main(argv: list[str] | None = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(prog="auditlens", description="Audit neural networks from the inside.")
    parser.add_argument("--version", action="version", version=f"auditlens {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    from .zoo_cli import add_parser as add_zoo

    add_zoo(commands)
    validate = commands.add_parser("validate", help="check audit files (*.audit.yaml) and concept files "
                                                     "(probes/*.yaml) without running a model")
    validate.add_argument("paths", nargs="+", help="files or directories")
    validate.add_argument("--probes", default="probes", help="the concept directory audits refer to (default probes)")
    discover = commands.add_parser("discover", help="draft an audit file: a circuit found by attribution "
                                                    "patching, with thresholds from what was measured")
    discover.add_argument("concept", help="a labelled concept of the probes directory (what the circuit must carry)")
    discover.add_argument("--pairs", required=True, help="a concept with counterfactual pairs, for the attribution")
    discover.add_argument("--model", required=True, help="the model: a directory, a hub id or fixture:NAME")
    discover.add_argument("--over", default="head:*.*", help="components to rank (default head:*.*; features:SITE "
                          "ranks the latents of a dictionary given with --dictionary)")
    discover.add_argument("--dictionary", action="append", default=[], metavar="SITE=DIR",
                          help="attach a dictionary (SAELens or sparsify directory) at SITE first; repeatable")
    discover.add_argument("--top", type=int, default=3, help="how many become the circuit (default 3)")
    discover.add_argument("--steps", type=int, default=1, help="attribution steps from base to source (integrated "
                          "gradients; more rank saturated components better; pairs of one length; default 1)")
    discover.add_argument("--probes", default="probes", help="the concept directory (default probes)")
    discover.add_argument("--out", default=None, help="the draft (default audits/discovered_CONCEPT.audit.yaml)")
    schema_command = commands.add_parser("schema", help="print the JSON Schema of audit or concept files")
    schema_command.add_argument("kind", choices=["audit", "concept"])
    report = commands.add_parser("report", help="re-render or compare reports")
    report_commands = report.add_subparsers(dest="report_command", required=True)
    render = report_commands.add_parser("render", help="write report.html and summary.md from a report.json")
    render.add_argument("report", help="a report.json")
    render.add_argument("--out", default=None, help="directory (default: beside the report)")
    diff = report_commands.add_parser(
        "diff", help="compare two reports; exit 0: no regression, 6: regressions, 2: nothing could be compared",
        description="Compare a report with a baseline. Exit status: 0 no regression (known failures, "
                    "failing in both, do not count), 6 one or more regressions, 2 nothing compared or a bad file.")
    diff.add_argument("old", help="the baseline: a report.json or its directory")
    diff.add_argument("new", help="the report to judge: a report.json or its directory")
    diff.add_argument("--tolerance", type=float, default=0.02, help="metric tolerance (default 0.02)")
    diff.add_argument("--fail-on-regression", action="store_true",
                      help="accepted for old scripts: a regression always exits 6")
    from .mutation.cli import add_parser as add_mutate

    add_mutate(commands)
    from .dictionary_cli import add_parser as add_dictionary

    add_dictionary(commands)
    from .repair_cli import add_parser as add_repair

    add_repair(commands)
    from .shard_cli import add_merge_parser, add_ray_parser

    add_merge_parser(report_commands)
    add_ray_parser(commands)
    init = commands.add_parser("init", help="scaffold audits/, probes/ and the pytest options in a repository")
    init.add_argument("directory", nargs="?", default=".", help="the repository root (default: here)")
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            from .declarative import validate_paths

            return validate_paths(args.paths, args.probes)
        if args.command == "schema":
            import json

            from .declarative import schema

            print(json.dumps(schema(args.kind), indent=2))
            return 0
        if args.command == "report" and args.report_command == "merge":
            from .shard_cli import run_merge

            return run_merge(args)
        if args.command == "run-ray":
            from .shard_cli import run_ray

            return run_ray(args)
        if args.command == "report":
            return _report(args)
        if args.command == "discover":
            return _discover(args)
        if args.command == "mutate":
            from .mutation.cli import run as run_mutate

            return run_mutate(args)
        if args.command == "dictionary":
            from .dictionary_cli import run as run_dictionary

            return run_dictionary(args)
        if args.command == "repair":
            from .repair_cli import run as run_repair

            return run_repair(args)
        if args.command == "init":
            from .scaffold import init_repository

            return init_repository(args.directory)
        from .zoo_cli import run as run_zoo

        return run_zoo(args)
    except AuditlensError as exc:
        print(f"auditlens: {exc}", file=sys.stderr)
        return 2


def _report(args) -> int:
    from pathlib import Path

    from .report import compare_reports, read_report, write_report
    from .report.compare import REGRESSION_EXIT, render_comparison

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


def _discover(args) -> int:
    import os
    from pathlib import Path

    from .concept_file import load_concept
    from .discover import discover, write_draft
    from .loading import load_subject

    if args.top < 1:
        raise AuditlensError(f"--top must be 1 or more; got {args.top}")
    subject = load_subject(args.model)
    out = Path(args.out or Path("audits") / f"discovered_{args.concept}.audit.yaml")
    dictionaries = {}
    for given in args.dictionary:
        site, equals, directory = given.partition("=")
        if not equals or not site or not directory:
            raise AuditlensError(f"--dictionary takes SITE=DIR, e.g. layer:3=dictionaries/layer-3; got {given!r}")
        subject.attach_dictionary(site, directory)
        dictionaries[site] = os.path.relpath(Path(directory).resolve(), out.resolve().parent)
    concept = load_concept(Path(args.probes) / f"{args.concept}.yaml")
    pairs = load_concept(Path(args.probes) / f"{args.pairs}.yaml")
    text, found = discover(subject, concept, pairs, over=args.over, top=args.top, steps=args.steps,
                           dictionaries=dictionaries)
    path = write_draft(text, out)
    print(f"wrote {path}: circuit {', '.join(found['circuit'])} (necessity drop {found['accuracy_drop']:.3f}, "
          f"faithfulness {found['faithfulness']:.3f}, attribution vs patching Spearman "
          f"{found['rank_correlation']:.2f}); review it before use")
    return 0



if __name__ == "__main__":
    sys.exit(main())
