"""``auditlens zoo list | build | ship | verify``: the model organisms with a known truth."""

from __future__ import annotations

import time

from ..errors import AuditlensError


def add_parser(commands) -> None:
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
    zoo.set_defaults(run=run)


def run(args) -> int:
    if args.zoo_command == "list":
        return _zoo_list()
    if args.zoo_command == "ship":
        return _zoo_ship(args)
    if args.zoo_command == "verify":
        return _zoo_verify(args)
    return _zoo_build(args.names, args.force, args.workers)


def _zoo_list() -> int:
    from rich.console import Console
    from rich.table import Table

    from ..zoo.registry import METADATA_FILE, cache_root, list_organisms, organism_dir
    from ..zoo.shipped import fixtures_root, is_shipped, zoo_source

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


def _zoo_selection(names: list[str], seeds: int | None) -> list:
    from ..zoo.registry import get, list_organisms
    from ..zoo.shipped import SHIPPED_SEEDS

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

    from ..zoo.registry import build
    from ..zoo.shipped import ship

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

    from ..zoo.registry import build
    from ..zoo.shipped import SOURCE_VARIABLE, is_shipped, shipped_dir, zoo_source
    from ..zoo_tools.verify import ACCURACY_TOLERANCE, verify

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

    from ..zoo.registry import get, list_organisms
    from ..zoo_tools.build_pool import build_many, default_workers

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
