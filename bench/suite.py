"""Forward passes of the repo's own audit suite: executed against the lower bound, per model.

The lower bound is the number of distinct (inputs, interventions, batch) combinations the audits
asked for (``auditlens.accounting``); executed counts the passes actually run. The suite runs in a
subprocess (``pytest audits``, no on-disk cache), and the numbers come from its report.json.

    python bench/suite.py [-n 2]        # extra arguments go to pytest
    python bench/suite.py --audit-cache-dir DIR   # twice: the second session's passes come from disk

Last line: ``forward passes: E executed / L lower bound``.
"""

from __future__ import annotations

import sys

from audit_suite import run_audit_suite


def main(extra: list[str]) -> None:
    seconds, report = run_audit_suite(extra)
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
