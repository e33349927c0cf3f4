"""Mutation testing end to end, on a small suite of the user's own (a YAML audit of the count classifiers
and the concept files it names): `auditlens mutate` and `pytest --audit-mutants`, the report's mutation
section, the gate, and a suite that fails the original."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITE = """\
models: ["fixture:count-*"]
audits:
  - name: count represented at the last block
    probe: {concept: more_a_than_b, at: "layer:1", position: last}
    expect: {accuracy: ">= 0.9", selectivity: ">= 0.2"}
  - name: erasing the count breaks the decision
    erase: {concept: more_a_than_b, at: "layer:1", data: count_in_distribution}
    expect: {accuracy_drop: ">= 0.3"}
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's repository: audits/ and probes/, and a mutant cache of its own."""
    root = tmp_path_factory.mktemp("project")
    (root / "audits").mkdir()
    (root / "audits" / "count.audit.yaml").write_text(SUITE)
    (root / "probes").mkdir()
    for name in ("more_a_than_b", "count_in_distribution"):
        for suffix in (".yaml", ".jsonl"):
            shutil.copy(ROOT / "probes" / f"{name}{suffix}", root / "probes")
    env = {**os.environ, "AUDITLENS_MUTANT_CACHE": str(root / "mutants"), "AUDITLENS_FIXTURES": str(ROOT / "fixtures")}
    return root, env


def _run(command, root, env):
    return subprocess.run([sys.executable, *command], cwd=root, env=env, capture_output=True, text=True, timeout=600)


def test_auditlens_mutate_scores_the_suite_names_its_holes_and_gates(project):
    root, env = project
    done = _run(["-m", "auditlens.cli", "mutate", "audits", "--model", "fixture:count-learned", "--operators",
                 "backdoor", "position-leak", "--per-operator", "1", "--min-score", "1.0"], root, env)
    assert done.returncode == 8, done.stdout + done.stderr  # below the minimum score
    assert "mutation score of fixture:count-learned: 1/2 killed (50%)" in done.stdout
    assert "hole: backdoor#0: no audit of yours notices a 1-token trigger" in done.stdout
    assert "mutation gate: fixture:count-learned: mutation score 1/2 = 50%, below the minimum 100%" in done.stderr
    assert "planting" in done.stderr  # progress per mutant
    assert f"disk: 2 mutant(s) cached in {root / 'mutants'}" in done.stdout  # what they take, and how to clear them
    assert f"clear them with rm -rf {root / 'mutants'}" in done.stdout
    report = json.loads((root / "reports" / "mutation" / "report.json").read_text())
    assert [m["id"] for m in report["models"]] == ["fixture:count-learned"]
    result, = report["mutation"]["results"]
    by_name = {m["name"]: m for m in result["mutants"]}
    assert by_name["position-leak#0"]["status"] == "killed" and by_name["position-leak#0"]["control"] == "learned"
    assert by_name["position-leak#0"]["killed_by"]  # the audits that caught it, by name
    assert by_name["backdoor#0"]["status"] == "survived" and by_name["backdoor#0"]["verdict"] == "learned"
    assert all(m["verification"]["planted"] and m["verification"]["stealthy"] for m in result["mutants"])
    assert "mutation score 1/2" in (root / "reports" / "mutation" / "report.html").read_text()
    assert not list((ROOT / "fixtures" / "count-learned").glob("evaluation*"))  # nothing written by the model


def test_pytest_audit_mutants_adds_the_section_and_gates_a_session_that_passed(project):
    root, env = project
    done = _run(["-m", "pytest", "audits", "-p", "no:randomly", "-p", "no:cacheprovider", "--model",
                 "fixture:count-learned", "-o", "audit_probes=probes", "--audit-mutants", "1",
                 "--audit-mutant-operators", "backdoor", "--audit-min-mutation-score", "0.5",
                 "--audit-report", "reports/run"], root, env)
    assert done.returncode == 8, done.stdout[-3000:]  # every audit passed; the score is below the minimum
    assert "fixture:count-learned: mutation score 0/1 (0%)" in done.stdout
    assert "hole: backdoor#0" in done.stdout
    assert "gate failed: fixture:count-learned: mutation score 0/1 = 0%, below the minimum 50%" in done.stdout
    assert f"auditlens: 1 mutant(s) cached in {root / 'mutants'}" in done.stdout  # and how to clear them
    report = json.loads((root / "reports" / "run" / "report.json").read_text())
    assert report["mutation"]["passed"] is False
    assert report["mutation"]["results"][0]["mutants"][0]["status"] == "survived"
    assert "Mutation testing" in (root / "reports" / "run" / "summary.md").read_text()


def test_a_model_the_suite_fails_is_not_mutation_tested_and_the_section_says_why(project, monkeypatch):
    from auditlens.mutation.in_session import mutation_section
    from auditlens.session import SessionOptions

    root, env = project
    monkeypatch.setenv("AUDITLENS_MUTANT_CACHE", env["AUDITLENS_MUTANT_CACHE"])
    report = {"run": {}, "models": [{"id": "fixture:count-cheated", "verdict": "cheated", "audits": [],
                                     "reason": "probe at layer:1: accuracy = 0.6, needed >= 0.9"}]}
    options = SessionOptions(models=("fixture:count-cheated",), probes_dir=root / "probes")
    found = mutation_section(report, options, [root / "audits"], 1, 0.5, operators=("backdoor",))
    assert found["passed"] is False and not found["results"]
    assert found["errors"]["fixture:count-cheated"].startswith(
        "the suite does not pass the original fixture:count-cheated (verdict cheated: probe at layer:1")
    assert "Nothing was scored" in found["errors"]["fixture:count-cheated"]


@pytest.mark.parametrize("args, message", [
    (["--min-score", "2"], "--min-score is a share of scored mutants, 0 to 1"),
    (["--per-operator", "0"], "--per-operator must be 1 or more"),
    (["--probes", "nowhere"], "no concept directory nowhere"),
])
def test_bad_mutate_options_are_clear_errors(project, args, message, monkeypatch, capsys):
    from auditlens.cli import main

    root, _ = project
    monkeypatch.chdir(root)
    assert main(["mutate", "audits", "--model", "fixture:count-learned", *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_pytest_mutation_options_are_usage_errors(pytester):
    result = pytester.runpytest("--model", "fixture:count-learned", "--audit-min-mutation-score", "0.5")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--audit-min-mutation-score*needs --audit-mutants N*"])
    result = pytester.runpytest("--model", "fixture:count-learned", "--audit-mutants", "1",
                                "--audit-min-mutation-score", "2")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--audit-min-mutation-score is a share of scored mutants, 0 to 1; got 2.0*"])
    result = pytester.runpytest("--model", "fixture:count-learned", "--audit-mutants", "1",
                                "--audit-mutant-operators", "flip")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown operator 'flip'*"])
