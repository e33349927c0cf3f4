"""``auditlens``: the parser, made of one module per subcommand, and its dispatcher. Each module's
``add_parser`` adds its subcommand and sets, with ``set_defaults(run=...)``, the function that runs it:
``validate``, ``schema``, ``init``, ``discover``, ``report`` (render, diff, merge), ``run-ray``, ``mutate``,
``repair``, ``dictionary train`` and ``zoo`` (list, build, ship, verify)."""

from __future__ import annotations

import argparse
import sys

from ..errors import AuditlensError
from . import dictionary, discover, init, mutate, repair, report, shards, validate, zoo

SUBCOMMANDS = (zoo, validate, discover, report, mutate, dictionary, repair, shards, init)


def parser() -> argparse.ArgumentParser:
    from .. import __version__

    made = argparse.ArgumentParser(prog="auditlens", description="Audit neural networks from the inside.")
    made.add_argument("--version", action="version", version=f"auditlens {__version__}")
    commands = made.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(commands)
    return made


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except AuditlensError as exc:
        print(f"auditlens: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
