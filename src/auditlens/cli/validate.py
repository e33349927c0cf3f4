"""``auditlens validate`` (audit and concept files checked without a model) and ``auditlens schema`` (their
JSON Schemas)."""

from __future__ import annotations


def add_parser(commands) -> None:
    validate = commands.add_parser("validate", help="check audit files (*.audit.yaml) and concept files "
                                                     "(probes/*.yaml) without running a model")
    validate.add_argument("paths", nargs="+", help="files or directories")
    validate.add_argument("--probes", default="probes", help="the concept directory audits refer to (default probes)")
    validate.set_defaults(run=run_validate)
    schema_command = commands.add_parser("schema", help="print the JSON Schema of audit or concept files")
    schema_command.add_argument("kind", choices=["audit", "concept"])
    schema_command.set_defaults(run=run_schema)


def run_validate(args) -> int:
    from ..declarative import validate_paths

    return validate_paths(args.paths, args.probes)


def run_schema(args) -> int:
    import json

    from ..declarative import schema

    print(json.dumps(schema(args.kind), indent=2))
    return 0
