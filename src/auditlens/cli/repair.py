"""``auditlens repair``: take the shortcut a failed audit named, fold the smallest edit that silences it into a
copy of the model, export it, re-audit it with the same suite and gate on the result. Exit 0 when the repair is
accepted, 1 when it is refused or rejected (the report says why), 2 for bad input."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(commands) -> None:
    repair = commands.add_parser(
        "repair", help="repair what a failed audit diagnosed, export the cured model, and prove the cure",
        description="Read the failed audit of --audit in --from (a patch audit's pairs or an erase audit's concept "
                    "that must not move the decision), find the sites that carry the shortcut, fold the smallest "
                    "edit (a clamp of the pairs' difference span, or the concept's LEACE eraser) into a copy "
                    "of the model, export it to --out (a plain transformers directory), re-audit it with the same "
                    "suite, and accept it only when every audit passes and the clean-accuracy change's interval "
                    "lies above -MAX_LOSS. repair.json, repair.md and repair.html in --out hold the before/after "
                    "report.")
    repair.add_argument("--model", required=True,
                        help="the model the report audited: a directory, hub id or fixture:NAME")
    repair.add_argument("--from", dest="report", required=True, metavar="REPORT",
                        help="the audit run's report.json (or its directory)")
    repair.add_argument("--audit", default=None, metavar="NAME",
                        help="the failed audit naming the shortcut (default: the one the model's verdict names)")
    repair.add_argument("--out", required=True, metavar="DIR", help="a new directory for the repaired model")
    repair.add_argument("--clean", default=None, metavar="CONCEPT",
                        help="labelled concept to score the task on (default: the organism's in-distribution "
                             "concept, else the bases of the audit's pairs)")
    repair.add_argument("--max-loss", type=float, default=0.01,
                        help="clean accuracy the repair may cost, as a share (default 0.01: one point)")
    repair.add_argument("--reference", default=None, metavar="FILE",
                        help="text file (one text per line) for a causal LM's cross-entropy (default: the clean texts)")
    repair.add_argument("--probes", default="probes", help="the concept directory (default probes)")
    repair.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals and the re-audit")
    repair.set_defaults(run=run)


def run(args) -> int:
    from ..repair.evidence import Refusal, find_shortcut, model_record, read_report
    from ..repair.options import RepairOptions
    from ..repair.writeup import write

    options = RepairOptions(model=args.model, out=args.out, probes=args.probes, clean=args.clean,
                            max_loss=args.max_loss, reference=args.reference, seed=args.seed)
    report = read_report(args.report)
    from ..loading import load_subject

    subject = load_subject(args.model)
    record = model_record(report, args.model, subject.fingerprint, args.report)
    found = find_shortcut(record, args.audit, args.report)
    base = {"original": args.model, "fingerprint": subject.fingerprint, "report": str(args.report)}
    if isinstance(found, Refusal):
        return _finish(options.out, {**base, "outcome": "refused", "reason": found.reason}, write)
    from ..repair.cure import cure

    result = cure(subject, found, record, options, say=lambda message: print(f"repair: {message}", file=sys.stderr))
    return _finish(options.out, {**base, **result}, write)


def _finish(out: Path, result: dict, write) -> int:
    write(out, result)
    print(f"repair of {result['original']}: {result['outcome']}: {result['reason']}")
    print(f"report: {out / 'repair.md'}")
    return 0 if result["outcome"] == "accepted" else 1
