"""``pytest audits --model M --audit-mutants N``: after the suite ran, mutation-test it on each model it
passed, reusing that run as the original's, and put the mutation section in the session's report."""

from __future__ import annotations

from pathlib import Path

from ..errors import AuditlensError
from ..progress import report as say
from ..report.mutation import section
from .operators import OPERATORS
from .run import MutationOptions, mutate
from .store import cache_note, original_of
from .suite import SuiteRun


def suite_arguments(options) -> tuple[str, ...]:
    """The session's loading options, for the suite's runs on the mutants."""
    args = ["--audit-device", options.device] if options.device_map is None else []
    if options.dtype:
        args += ["--audit-dtype", options.dtype]
    if options.trust_remote_code:
        args.append("--audit-trust-remote-code")
    if options.allow_pickle:
        args.append("--audit-allow-pickle")
    return tuple(args)


def mutation_section(report: dict, options, audit_paths: list[Path], per_operator: int,
                     min_score: float | None, operators: tuple[str, ...] = OPERATORS) -> dict:
    results, errors = [], {}
    if report["run"].get("interrupted"):
        return section([], {m: "the run was interrupted" for m in options.models}, min_score)
    settings = MutationOptions(operators=operators, per_operator=per_operator, seed=options.seed,
                               probes_dir=options.probes_dir, suite_args=suite_arguments(options))
    load = {"device": options.device, "dtype": options.dtype, "trust_remote_code": options.trust_remote_code,
            "allow_pickle": options.allow_pickle}
    for spec in options.models:
        if original_of(spec):  # a mutant given with --model is audited, not mutated again
            continue
        try:
            result = mutate(spec, audit_paths, settings, original_run=SuiteRun(report, 0.0), load=load)
        except AuditlensError as exc:
            errors[spec] = str(exc)
            say(f"mutation testing of {spec}: {exc}")
            continue
        results.append(result.to_dict())
        say(result.summary())
    if results:
        say(cache_note([m["directory"] for r in results for m in r["mutants"]]))
    return section(results, errors, min_score)
