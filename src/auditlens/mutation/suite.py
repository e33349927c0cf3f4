"""Run the user's audit suite (Python and YAML, as pytest collects it) on models, in a pytest process of
its own, and read each model's verdict and failed audits from the report it writes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import MutationError
from ..report.check_tags import mechanistic_failures
from ..report.outcomes import normalize
from ..report.suite_process import model_entry, run_audits


@dataclass
class SuiteRun:
    report: dict
    seconds: float

    def model(self, spec: str) -> dict:
        return model_entry(self.report, spec, MutationError)


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
    """The suite ``audit_paths`` run on ``models`` (``report.suite_process.run_audits``), and its seconds."""
    started = time.perf_counter()
    report = run_audits(audit_paths, models, probes_dir, seed, extra, error=MutationError)
    return SuiteRun(report, time.perf_counter() - started)
