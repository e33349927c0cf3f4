"""Mutation testing of this repo's audits/: would they catch a cheat planted in a model they pass?

For every learned twin of the zoo (shipped builds) and a sentiment classifier built on the shipped
MiniLM (bench/minilm_classifier.py), plant every operator with 2 seeds each, verify each cheat took
and is stealthy, run audits/ on every mutant (and the original beside it on the mutant's data), and
count. Mutants are cached (~/.cache/auditlens/mutants): a second run re-audits without training.

    python bench/mutation.py [--per-operator 2] [--models count-learned ...] [--no-minilm] [--json FILE]

Last line:
``mutation: score K/S (killed of scored), equivalent E, loud L, originals flagged F, median mutant cost T s``
(originals flagged: the original's verdict is not learned, on its own data or beside a mutant on the
mutant's; cost: planting plus the mutant's share of the suite runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
LEARNED = ("count-learned", "keyword-learned", "backdoor-learned", "ends-learned", "routed-learned", "tail-learned",
           "phrase-learned", "phrase-clf-learned")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-operator", type=int, default=2)
    parser.add_argument("--models", nargs="*", default=list(LEARNED), help="zoo organisms (default: the learned twins)")
    parser.add_argument("--no-minilm", action="store_true", help="leave out the MiniLM classifier")
    parser.add_argument("--json", default=str(ROOT / "reports" / "bench" / "mutation.json"))
    args = parser.parse_args()

    import logging

    from auditlens.errors import AuditlensError
    from auditlens.mutation import MutationOptions, mutate
    from auditlens.mutation.suite import run_suite

    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    logging.getLogger("auditlens.progress").setLevel(logging.INFO)
    specs = [f"fixture:{m}" for m in args.models]
    if not args.no_minilm:
        from minilm_classifier import build

        specs.append(str(build()))
    options = MutationOptions(per_operator=args.per_operator, probes_dir=ROOT / "probes")
    results, flagged, errors = [], 0, {}
    started = time.perf_counter()
    for spec in specs:
        print(f"== {spec}", flush=True)
        original = run_suite([ROOT / "audits"], [spec], options.probes_dir, options.seed)
        try:
            result = mutate(spec, [ROOT / "audits"], options, original_run=original)
        except AuditlensError as exc:
            errors[spec] = str(exc)
            flagged += original.model(spec)["verdict"] != "learned"  # the suite fails the original
            print(f"  not scored: {exc}")
            continue
        results.append(result)
        flagged += sum(m.control not in (None, "learned") for m in result.mutants)
        print(f"  {result.summary()}")
        for hole in result.holes():
            print(f"  hole: {hole}")
    mutants = [m for r in results for m in r.mutants]
    print("\nplanted (the cheat took, stealthy or not) per operator:")
    tries, took = Counter(m.operator for m in mutants), Counter(m.operator for m in mutants
                                                                 if m.verification["planted"])
    for operator in tries:
        print(f"  {operator:<14} {took[operator]}/{tries[operator]} ({took[operator] / tries[operator]:.0%})")
    killed = sum(r.killed for r in results)
    scored = sum(r.scored for r in results)
    by_status = Counter(m.status for m in mutants)
    cost = statistics.median(m.cost for m in mutants) if mutants else float("nan")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"results": [r.to_dict() for r in results], "errors": errors,
                                           "seconds": time.perf_counter() - started}, indent=1))
    print(f"details: {args.json}; {time.perf_counter() - started:.0f} s in all")
    for spec, why in errors.items():
        print(f"not scored: {spec}: {why}")
    print(f"mutation: score {killed}/{scored} (killed of scored), equivalent {by_status['equivalent']}, "
          f"loud {by_status['loud']}, originals flagged {flagged}, median mutant cost {cost:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
