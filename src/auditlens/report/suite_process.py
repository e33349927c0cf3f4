"""The user's audit suite run in a pytest process of its own, and the report.json it writes read back: how
the mutation step, a repair's re-audit, the zoo's rebuild check and each Ray shard run the suite. Each
caller names the error a run that did not complete raises. Torch-free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TAIL_LINES = 15  # of pytest's output, in the error a run that did not complete raises


@dataclass(frozen=True)
class SuiteProcess:
    """What one pytest run left: its exit status, its report.json's text (None when it wrote none) and its
    output (stdout, then stderr)."""

    returncode: int
    report_text: str | None
    output: str

    @property
    def completed(self) -> bool:
        """Whether pytest ran the suite to its end (exit 0 or 1: its audits passed or failed) and wrote a report."""
        return 0 <= self.returncode <= 1 and self.report_text is not None

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.output.splitlines()[-lines:])

    def report(self, error: type[Exception], failure: str) -> dict:
        """The report, parsed; unless the run completed, ``error`` saying ``failure`` (which suite did not
        complete on what), pytest's exit status and the last lines of its output."""
        if not self.completed:
            raise error(f"{failure} (pytest exit {self.returncode}):\n{self.tail()}")
        return json.loads(self.report_text)


def run_pytest(args: Iterable[str], cwd: str | Path | None = None,
               env: Mapping[str, str] | None = None) -> SuiteProcess:
    """``python -m pytest *args --audit-report DIR`` with a temporary DIR, run in ``cwd`` with ``env`` set
    over this process's environment; what it left, its report.json read before DIR is removed."""
    with tempfile.TemporaryDirectory(prefix="auditlens-suite-") as report_dir:
        command = [sys.executable, "-m", "pytest", *map(str, args), "--audit-report", report_dir]
        done = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
        path = Path(report_dir) / "report.json"
        text = path.read_text(encoding="utf-8") if path.is_file() else None
    return SuiteProcess(done.returncode, text, done.stdout + done.stderr)


def run_audits(audit_paths: Iterable[str | Path], models: list[str], probes_dir: str | Path, seed: int,
               extra: Iterable[str] = (), *, error: type[Exception]) -> dict:
    """The report of the suite ``audit_paths`` run on ``models`` as auditlens runs it for itself: quiet, no
    cache, in file order, seeded by ``seed`` (hash seed 0), with the concept files of ``probes_dir``;
    ``extra``: more pytest arguments. ``error`` when the run did not complete."""
    audit_paths = [str(p) for p in audit_paths]
    args = [*audit_paths, "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--audit-seed", str(seed),
            "-o", f"audit_probes={Path(probes_dir).resolve()}", *extra, *[a for m in models for a in ("--model", m)]]
    done = run_pytest(args, env={"PYTHONHASHSEED": "0"})
    return done.report(error, f"the audit suite {' '.join(audit_paths)} did not complete on {', '.join(models)}")


def model_entry(report: dict, spec: str, error: type[Exception]) -> dict:
    """The report's entry for the model ``spec``; ``error`` when the suite ran no audit on it."""
    for model in report["models"]:
        if model["id"] == spec:
            return model
    raise error(f"the audit suite ran no audit on {spec}: do its audits select this model "
                "(models markers, the YAML models: key)?")
