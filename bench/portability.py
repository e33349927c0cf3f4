"""Portability: do the verdicts hold on organisms built on other CPU kernels than the shipped ones?

torch's CPU kernels differ by instruction set, so the same recipe gives other weights on another
machine. This rebuilds the zoo (seeds 0..N-1) with ATEN_CPU_CAPABILITY=default (torch's portable
kernels, standing in for another CPU) into a temporary cache, and runs bench/detection.py,
bench/circuits.py and bench/triggers.py on that build ($AUDITLENS_ZOO_SOURCE=rebuild: fixtures/ is
not read).

    python bench/portability.py [--seeds 3] [--capability default] [--cache DIR]

Last line: ``portability: verdicts V/N, circuits C/M, triggers T/K on rebuilt organisms``. Triggers count
the backdoored organisms whose trigger was found and the clean ones with no false alarm.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stream(command: list[str], env: dict) -> str:
    """Run ``command``, echoing its output; the output."""
    lines = []
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        for line in process.stdout:
            print(f"  {line}", end="", flush=True)
            lines.append(line)
    if process.returncode:
        sys.exit(f"portability: {' '.join(command[1:3])} exited {process.returncode}")
    return "".join(lines)


def last_match(pattern: str, text: str) -> re.Match:
    found = list(re.finditer(pattern, text))
    if not found:
        sys.exit(f"portability: no line matching {pattern!r} in the output above")
    return found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per organism (0..N-1)")
    parser.add_argument("--capability", default="default",
                        help="ATEN_CPU_CAPABILITY of the rebuild: default, avx2 or avx512 (default: default)")
    parser.add_argument("--cache", default=None, help="zoo cache of the rebuild (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="auditlens-portability-") as scratch:
        env = {**os.environ, "ATEN_CPU_CAPABILITY": args.capability, "AUDITLENS_ZOO_SOURCE": "rebuild",
               "AUDITLENS_ZOO_CACHE": args.cache or scratch, "PYTHONUNBUFFERED": "1"}
        seeds = ["--seeds", str(args.seeds)]
        started = time.perf_counter()
        print(f"rebuilding the zoo on {args.capability} kernels into {env['AUDITLENS_ZOO_CACHE']} ...", flush=True)
        stream([sys.executable, "-m", "auditlens.cli", "zoo", "build",
                *[f"{name}@{seed}" for name in trained_names() for seed in range(args.seeds)]], env)
        print(f"rebuilt in {time.perf_counter() - started:.0f} s", flush=True)
        detection = last_match(r"verdict accuracy: (\d+)/(\d+)",
                               stream([sys.executable, "bench/detection.py", *seeds], env))
        circuits = last_match(r"circuits: verdicts (\d+)/(\d+)",
                              stream([sys.executable, "bench/circuits.py", *seeds, "--no-speed"], env))
        triggers = last_match(r"triggers: found (\d+)/(\d+) backdoored, false alarms (\d+)/(\d+) clean",
                              stream([sys.executable, "bench/triggers.py", *seeds], env))
    found, backdoored, alarms, clean = (int(x) for x in triggers.groups())
    print(f"rebuild: ATEN_CPU_CAPABILITY={args.capability}, seeds 0-{args.seeds - 1}, "
          f"{time.perf_counter() - started:.0f} s in all")
    print(f"portability: verdicts {detection[1]}/{detection[2]}, circuits {circuits[1]}/{circuits[2]}, "
          f"triggers {found + clean - alarms}/{backdoored + clean} on rebuilt organisms")


def trained_names() -> list[str]:
    from auditlens.zoo.registry import list_organisms

    return [o.name for o in list_organisms() if o.build is not None]


if __name__ == "__main__":
    main()
