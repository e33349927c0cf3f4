"""Wall time of the repo's audit suite (``pytest audits``, the zoo and MiniLM): serial against
``-n 2`` with audits grouped by model (the plugin's default under xdist), and ``-n 2 --dist load``
(no grouping: a model may load on both workers), measured alternately in one run.

    python bench/parallel.py [--repeats 1]

Last line: ``parallel: serial S s, -n 2 P s (speed-up X)``.
"""

from __future__ import annotations

import argparse
import statistics

from audit_suite import run_audit_suite

MODES = {"serial": [], "-n 2 (grouped by model)": ["-n", "2"], "-n 2 --dist load": ["-n", "2", "--dist", "load"]}


def timed(extra: list[str]) -> float:
    return run_audit_suite(extra)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    timed([])  # warm: the zoo built, files in the page cache
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode, extra in MODES.items():
            times[mode].append(timed(extra))
    for mode, values in times.items():
        print(f"{mode:<26} median {statistics.median(values):6.1f} s  ({', '.join(f'{v:.1f}' for v in values)})")
    serial, grouped = (statistics.median(times[m]) for m in list(MODES)[:2])
    print(f"parallel: serial {serial:.1f} s, -n 2 {grouped:.1f} s (speed-up {serial / grouped:.2f})")


if __name__ == "__main__":
    main()
