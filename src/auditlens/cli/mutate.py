"""``auditlens mutate``: mutation-test an audit suite on a model, write the report with its mutation
section, and gate on a minimum score."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import MutationError
from ..mutation import BUDGET_S, check_min_score
from ..mutation.operators import OPERATORS


def add_parser(commands) -> None:
    mutate = commands.add_parser(
        "mutate", help="plant known cheats in copies of a model and score the audit suite by the ones it catches",
        description="Plant known cheats (a backdoor, a shortcut token, a memorised evaluation set, a label leaked "
                    "at a fixed position) in fine-tuned copies of the model, keep those that took and are stealthy "
                    "(accuracy within 2 points), run the suite on each, and report the mutation score: killed / "
                    "scored. Exit 0; 8 when a score is below --min-score; 2 on bad input or a suite that fails "
                    "the original.")
    mutate.add_argument("audits", nargs="+", help="the audit suite: directories or files, as pytest takes them")
    mutate.add_argument("--model", required=True, help="the model: a directory, a hub id or fixture:NAME")
    mutate.add_argument("--operators", nargs="+", default=list(OPERATORS), choices=OPERATORS, metavar="OP",
                        help=f"operators to plant (default all: {', '.join(OPERATORS)})")
    mutate.add_argument("--per-operator", type=int, default=2, metavar="N", help="mutants per operator, seeds "
                        "SEED..SEED+N-1 (default 2)")
    mutate.add_argument("--budget-s", type=float, default=BUDGET_S, metavar="S",
                        help=f"training time allowed per mutant, in seconds (default {BUDGET_S:g}), a cap: training "
                             "stops once the mutant is fit, and a mutant whose budget runs out first is reported "
                             "over budget with what it reached")
    mutate.add_argument("--seed", type=int, default=0, help="the first mutant seed, and the suite's seed (default 0)")
    mutate.add_argument("--task", default=None, metavar="CONCEPT",
                        help="the evaluation set (a labelled concept the model answers; default: of the concepts "
                             "the audits name, the one the original answers best)")
    mutate.add_argument("--probes", default="probes", help="the concept directory (default probes)")
    mutate.add_argument("--kill-on", choices=("verdict", "failure"), default="verdict",
                        help="a mutant is killed when its verdict is cheated (default), or when any audit of it fails")
    mutate.add_argument("--min-score", type=float, default=None, metavar="X",
                        help="the gate: exit 8 unless the mutation score is at least X (0 to 1)")
    mutate.add_argument("--report", default="reports/mutation", metavar="DIR",
                        help="where the report goes (default reports/mutation)")
    mutate.set_defaults(run=run)


def run(args) -> int:
    from ..mutation.run import MutationOptions, mutate
    from ..mutation.store import cache_note
    from ..progress import restore_sink, use_sink
    from ..report import write_report
    from ..report.mutation import MUTATION_GATE_EXIT, gate_failures, section

    check_min_score(args.min_score, "--min-score")
    missing = [a for a in args.audits if not Path(a).exists()]
    if missing:
        raise MutationError(f"no audit suite at {', '.join(missing)}; give the directory or files of your audits")
    options = MutationOptions(operators=tuple(dict.fromkeys(args.operators)), per_operator=args.per_operator,
                              seed=args.seed, budget_s=args.budget_s, kill_on=args.kill_on, task=args.task,
                              probes_dir=Path(args.probes))
    token = use_sink(lambda message, detail: None if detail else print(f"auditlens: {message}", file=sys.stderr))
    try:
        result = mutate(args.model, [Path(a) for a in args.audits], options)
    finally:
        restore_sink(token)
    report = result.original_report
    report["mutation"] = section([result.to_dict()], {}, args.min_score)
    paths = write_report(report, args.report)
    print(result.summary())
    for hole in result.holes():
        print(f"  hole: {hole}")
    print(f"report: {paths['html']}")
    print(f"disk: {cache_note([m.directory for m in result.mutants])}")
    failures = gate_failures(report["mutation"])
    for line in failures:
        print(f"auditlens: mutation gate: {line}", file=sys.stderr)
    return MUTATION_GATE_EXIT if failures else 0
