"""Run the user's audit suite (Python and YAML, as pytest collects it) on models, in a pytest process of
its own, and read each model's verdict and failed audits from the report it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import MutationError
from ..report.check_tags import mechanistic_failures
from ..report.outcomes import normalize


@dataclass
class SuiteRun:
    report: dict
    seconds: float

    def model(self, spec: str) -> dict:
        for model in self.report["models"]:
            if model["id"] == spec:
                return model
        raise MutationError(f"the audit suite ran no audit on {spec}: do its audits select this model "
                            "(models markers, the YAML models: key)?")


def failed_audits(model: dict, kill_on: str) -> list[str]:
    """The audits that kill a mutant: those its ``cheated`` verdict rests on (kill_on verdict: the verdict's
    own ``mechanistic_failures``), or every audit whose assertion failed (kill_on failure). An audit that
    ended in error found nothing about the mutant and kills nothing."""
    if kill_on == "verdict":
        audits = mechanistic_failures(model["audits"])
    else:
        audits = [a for a in model["audits"] if normalize(a["outcome"], a.get("kind")) == "failed"]
    return [audit["name"].removesuffix(f"[{model['id']}]") for audit in audits]


def run_suite(audit_paths: list[Path], models: list[str], probes_dir: Path, seed: int,
              extra: tuple[str, ...] = ()) -> SuiteRun:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="auditlens-mutation-") as report:
        command = [sys.executable, "-m", "pytest", *map(str, audit_paths), "-q", "-p", "no:cacheprovider",
                   "-p", "no:randomly", "--audit-report", report, "--audit-seed", str(seed),
                   "-o", f"audit_probes={Path(probes_dir).resolve()}", *extra,
                   *[a for m in models for a in ("--model", m)]]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        path = Path(report) / "report.json"
        if done.returncode > 1 or not path.is_file():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise MutationError(f"the audit suite {' '.join(map(str, audit_paths))} did not complete on "
                                f"{', '.join(models)} (pytest exit {done.returncode}):\n{tail}")
        report_data = json.loads(path.read_text())
    return SuiteRun(report_data, time.perf_counter() - started)
