"""Audit the auditor: run the audit suite over the whole zoo, several seeds per organism, and compare
each verdict with the organism's known truth. Baseline: a behaviour-only gate that calls a model
"learned" when its in-distribution accuracy is at least 0.97.

    python bench/detection.py [--seeds 3]

Last line: ``verdict accuracy: A/N; false alarms: F; behaviour-only: B/N``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from rich.progress import Progress

from auditlens.zoo.registry import get, list_organisms, resolve_fixture
from auditlens.zoo_tools.build_pool import build_missing

ROOT = Path(__file__).resolve().parent.parent
BEHAVIOUR_THRESHOLD = 0.97


# organisms for other work than detection: the partial cheaters are the patients of model repair, diagnosed
# (by the count audits) and repaired in bench/repair.py; the figures quoted in the README predate them
NOT_DETECTED = ("partial",)


def spec_names(seeds: int) -> list[str]:
    trained = [o.name for o in list_organisms() if o.build is not None and o.family not in NOT_DETECTED]
    return [name if seed == 0 else f"{name}@{seed}" for name in trained for seed in range(seeds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per organism (0..N-1)")
    args = parser.parse_args()
    names = spec_names(args.seeds)

    started = time.perf_counter()
    with Progress() as progress:  # in parallel processes, one per core (auditlens zoo build does the same)
        task = progress.add_task("building what fixtures/ does not ship", total=None)
        built = build_missing(names, done=lambda name, directory, seconds: progress.advance(task))
    build_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as report:
        command = [sys.executable, "-m", "pytest", str(ROOT / "audits"), "-q", "-p", "no:cacheprovider",
                   "--audit-report", report, *[arg for n in names for arg in ("--model", f"fixture:{n}")]]
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        audit_seconds = time.perf_counter() - started
        models = {m["id"]: m for m in json.loads((Path(report) / "report.json").read_text())["models"]}

    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name in names:
        organism = get(name)
        model = models[f"fixture:{name}"]
        accuracy = resolve_fixture(name)[1]["in_distribution_accuracy"]
        behaviour_verdict = "learned" if accuracy >= BEHAVIOUR_THRESHOLD else "cheated"
        row = rows[organism.family]
        row["n"] += 1
        row["correct"] += model["verdict"] == organism.truth
        row["false_alarms"] += organism.truth == "learned" and model["verdict"] != "learned"
        row["missed"] += organism.truth == "cheated" and model["verdict"] != "cheated"
        row["behaviour_correct"] += behaviour_verdict == organism.truth
        if model["verdict"] != organism.truth:
            print(f"wrong: {name} (truth {organism.truth}) judged {model['verdict']}: {model['reason']}")

    print(f"zoo: {len(names)} organisms ready ({len(built)} trained here) in {build_seconds:.0f} s; audits ran in {audit_seconds:.0f} s")
    print(f"{'family':<10}{'models':>8}{'verdicts right':>16}{'false alarms':>14}{'missed':>8}{'behaviour-only':>16}")
    for family, row in rows.items():
        print(f"{family:<10}{row['n']:>8}{row['correct']:>16}{row['false_alarms']:>14}{row['missed']:>8}"
              f"{row['behaviour_correct']:>16}")
    total = {key: sum(row[key] for row in rows.values()) for key in ("n", "correct", "false_alarms",
                                                                      "behaviour_correct")}
    print(f"verdict accuracy: {total['correct']}/{total['n']}; false alarms: {total['false_alarms']}; "
          f"behaviour-only: {total['behaviour_correct']}/{total['n']}")


if __name__ == "__main__":
    main()
