"""Forward passes of the repo's own audit suite: executed against the lower bound, per model.

The lower bound is the number of distinct (inputs, interventions, batch) combinations the audits
asked for (``auditlens.accounting``); executed counts the passes actually run. The suite runs in a
subprocess (``pytest audits``, no on-disk cache), and the numbers come from its report.json.

    python bench/suite.py [-n 2]        # extra arguments go to pytest

Last line: ``forward passes: E executed / L lower bound``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "audits", "-q", "-p", "no:cacheprovider",
                               "--audit-report", out, *extra], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        path = Path(out) / "report.json"
        if done.returncode > 1 or not path.exists():  # 1: some audits failed, which the cheated twins must
            sys.exit(f"the audit suite did not run (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        report = json.loads(path.read_text())
    print(f"audit suite: {sum(len(m['audits']) for m in report['models'])} audits, "
          f"{len(report['models'])} models, {seconds:.1f} s")
    print(f"{'model':<28}{'executed':>10}{'lower bound':>13}{'ratio':>8}")
    executed = bound = 0
    for model in report["models"]:
        e, b = model["forward_passes"], model["forward_passes_lower_bound"]
        executed, bound = executed + e, bound + b
        print(f"{model['id']:<28}{e:>10}{b:>13}{(e / b if b else float('nan')):>8.3f}")
    print(f"forward passes: {executed} executed / {bound} lower bound")


if __name__ == "__main__":
    main(sys.argv[1:])
