"""The ``auditlens`` command: ``validate``, ``init``, ``discover``, ``schema``, ``report``, ``mutate``,
``dictionary train``, ``zoo list``, ``zoo build``, ``zoo ship`` and ``zoo verify``."""

from __future__ import annotations

import argparse
import sys
import time

from .errors import AuditlensError


def main(argv: list[str] | None = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(prog="auditlens", description="Audit neural networks from the inside.")
    parser.add_argument("--version", action="version", version=f"auditlens {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    zoo = commands.add_parser("zoo", help="model organisms with a known truth")
    zoo_commands = zoo.add_subparsers(dest="zoo_command", required=True)
    zoo_commands.add_parser("list", help="list the organisms, whether each is shipped in fixtures/ or built")
    build = zoo_commands.add_parser("build", help="build organisms from their recipes into the zoo cache "
                                                  "(all by default)")
    ship = zoo_commands.add_parser("ship", help="build organisms from their recipes and copy the builds into "
                                                "fixtures/, with their concept files and weights' hashes")
    verify = zoo_commands.add_parser(
        "verify", help="rebuild shipped organisms and compare each rebuild with the shipped one by behaviour",
        description="Rebuild shipped organisms on this machine's kernels (ATEN_CPU_CAPABILITY=default for "
                    "torch's portable ones) and compare: the same truth, accuracy on the organism's concept files "
                    "within --tolerance, the same verdict and audit outcomes from --audits. Exit 0: every "
                    "rebuild is the same organism; 1: one or more differ.")
    for command in (build, ship, verify):
        command.add_argument("names", nargs="*", help="organism names, NAME or NAME@SEED (default: every trained "
                             "organism" + (", seeds 0 to --seeds - 1)" if command is not build else ")"))
        command.add_argument("--workers", type=int, default=None, metavar="N",
                             help="organisms built at once, one process each (default: one per core)")
    for command in (ship, verify):
        command.add_argument("--seeds", type=int, default=None, metavar="N",
                             help="with no names: seeds 0 to N-1 of each (default: the shipped seeds, 3)")
    for command in (build, ship, verify):
        command.add_argument("--force", action="store_true", help="retrain even if the cache holds a build of this "
                             "recipe on these kernels")
    ship.add_argument("--probes", default="probes", help="where the organisms' concept files are (default probes)")
    verify.add_argument("--audits", default="audits", help="the audit suite whose verdicts and outcomes must agree "
                        "(default audits; 'none' skips it)")
    verify.add_argument("--tolerance", type=float, default=None,
                        help="largest accuracy difference allowed per concept file (default 0.05)")
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
        if args.zoo_command == "list":
            return _zoo_list()
        if args.zoo_command == "ship":
            return _zoo_ship(args)
        if args.zoo_command == "verify":
            return _zoo_verify(args)
        return _zoo_build(args.names, args.force, args.workers)
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


def _zoo_list() -> int:
    from rich.console import Console
    from rich.table import Table

    from .zoo.registry import METADATA_FILE, cache_root, list_organisms, organism_dir
    from .zoo.shipped import fixtures_root, is_shipped, zoo_source

    source = zoo_source()
    table = Table(title=f"zoo (shipped: {fixtures_root()}{' (ignored: rebuild)' if source == 'rebuild' else ''}; "
                        f"cache: {cache_root()})")
    for column in ("name", "family", "truth", "loads from", "description"):
        table.add_column(column)
    for organism in list_organisms():
        if organism.locate:
            where = "its package"
        elif source == "shipped" and is_shipped(organism):
            where = "fixtures/"
        else:
            where = "cache" if (organism_dir(organism) / METADATA_FILE).is_file() else "not built (trains on first use)"
        table.add_row(organism.name, organism.family, organism.truth or "-", where, organism.description)
    Console().print(table)
    return 0


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


def _zoo_selection(names: list[str], seeds: int | None) -> list:
    from .zoo.registry import get, list_organisms
    from .zoo.shipped import SHIPPED_SEEDS

    if seeds is not None and seeds < 1:
        raise AuditlensError(f"--seeds must be 1 or more; got {seeds}")
    if names:
        organisms = [get(n) for n in names]
    else:
        trained = [o.name for o in list_organisms() if o.build is not None]
        organisms = [get(f"{n}@{seed}") for n in trained for seed in range(seeds or SHIPPED_SEEDS)]
    shipped = [o.name for o in organisms if o.build is None]
    if shipped:
        raise AuditlensError(f"{', '.join(shipped)} come from a package, not a recipe: nothing to ship or verify")
    return organisms


def _zoo_ship(args) -> int:
    from pathlib import Path

    from .zoo.registry import build
    from .zoo.shipped import ship

    organisms = _zoo_selection(args.names, args.seeds)
    probes = Path(args.probes)
    if not probes.is_dir():
        raise AuditlensError(f"--probes {probes}: no such directory (the concept files the organisms name)")
    _zoo_build([o.name for o in organisms], args.force, args.workers)
    for organism in organisms:
        print(f"shipped {organism.name} -> {ship(organism, build(organism), probes)}")
    return 0


def _zoo_verify(args) -> int:
    from pathlib import Path

    from .zoo.registry import build
    from .zoo.shipped import SOURCE_VARIABLE, is_shipped, shipped_dir, zoo_source
    from .zoo.verify import ACCURACY_TOLERANCE, verify

    if zoo_source() == "rebuild":
        raise AuditlensError(f"zoo verify compares the shipped builds with rebuilds: unset {SOURCE_VARIABLE}")
    organisms = _zoo_selection(args.names, args.seeds)
    missing = [o.name for o in organisms if not is_shipped(o)]
    if missing:
        raise AuditlensError(f"not shipped in fixtures/, so nothing to compare a rebuild with: {', '.join(missing)} "
                             "(ship them with `auditlens zoo ship NAME`)")
    audits = None if args.audits == "none" else Path(args.audits)
    if audits is not None and not audits.is_dir():
        raise AuditlensError(f"--audits {audits}: no such directory (give the audit suite, or 'none')")
    tolerance = ACCURACY_TOLERANCE if args.tolerance is None else args.tolerance
    if not 0 <= tolerance <= 1:
        raise AuditlensError(f"--tolerance is an accuracy difference from 0 to 1; got {tolerance}")
    _zoo_build([o.name for o in organisms], args.force, args.workers)
    results = verify([(o, shipped_dir(o), build(o)) for o in organisms], audits, tolerance)
    for result in results:
        print(result.describe())
    same = sum(r.ok for r in results)
    print(f"zoo verify: {same}/{len(results)} rebuilds are the same organism as the shipped build")
    return 0 if same == len(results) else 1


def _zoo_build(names: list[str], force: bool, workers: int | None = None) -> int:
    from rich.progress import Progress

    from .zoo.build_pool import build_many, default_workers
    from .zoo.registry import get, list_organisms

    if workers is not None and workers < 1:
        raise AuditlensError(f"--workers must be 1 or more; got {workers}")
    organisms = [get(n) for n in names] if names else [o for o in list_organisms() if o.build is not None]
    trained = [o.name for o in organisms if o.build is not None]
    workers = min(workers or default_workers(), max(1, len(trained)))
    started = time.perf_counter()
    with Progress() as progress:
        task = progress.add_task(f"building {len(trained)} organisms, {workers} at a time", total=len(trained))

        def done(name, directory, seconds):
            progress.console.print(f"{name}: {directory} ({seconds:.1f} s)")
            progress.advance(task)

        build_many(trained, force=force, workers=workers, done=done)
    print(f"zoo: {len(trained)} organisms ready in {time.perf_counter() - started:.1f} s ({workers} processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
