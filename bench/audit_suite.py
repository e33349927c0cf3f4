"""Shared by the suite benchmarks: run ``pytest audits`` in a subprocess and read its report."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_audit_suite(extra: list[str]) -> tuple[float, dict]:
    """Wall seconds and report.json of ``pytest audits *extra`` (no cache provider, a fresh report dir).

    Exit 1 (some audits failed) is the suite's expected finding on the cheated twins; anything
    above is a broken run and stops the benchmark with pytest's output.
    """
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "audits", "-q", "-p", "no:cacheprovider",
                               "--audit-report", out, *extra], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        path = Path(out) / "report.json"
        if done.returncode > 1 or not path.exists():
            sys.exit(f"pytest audits {' '.join(extra)} did not run (exit {done.returncode}):\n"
                     f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return seconds, json.loads(path.read_text())
