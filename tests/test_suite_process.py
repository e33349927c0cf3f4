"""The one way auditlens runs a user's audit suite in a pytest process of its own (report.suite_process):
the report it wrote comes back, a run that did not complete is an error with pytest's exit status and
output, and the suite runs in the directory and environment it is given."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from auditlens.errors import MutationError
from auditlens.report.suite_process import SuiteProcess, model_entry, run_audits, run_pytest

ROOT = Path(__file__).resolve().parent.parent
SUITE = """\
models: ["fixture:count-*"]
audits:
  - name: count represented at the last block
    probe: {concept: more_a_than_b, at: "layer:1", position: last}
    expect: {accuracy: ">= 0.9"}
"""
NEEDS_A_VARIABLE = """\
import os


def test_the_variable_is_set():
    assert os.environ.get("AUDITLENS_SUITE_PROCESS_TEST") == "set"
"""


def test_a_pytest_usage_error_is_an_error_naming_the_exit_status_and_showing_pytests_output(tmp_path):
    # given a pytest run with an argument pytest does not know
    done = run_pytest(["--no-such-option"], cwd=tmp_path)
    # then it did not complete, wrote no report, and asking for its report raises the caller's error
    assert (done.returncode, done.report_text, done.completed) == (4, None, False)
    with pytest.raises(MutationError, match=r"(?s)^the suite did not complete on m \(pytest exit 4\):\n.*"
                                            r"unrecognized arguments: --no-such-option"):
        done.report(MutationError, "the suite did not complete on m")


def test_the_error_shows_only_the_last_lines_of_the_output():
    # given a run that crashed after printing forty lines
    done = SuiteProcess(3, None, "\n".join(f"line {k}" for k in range(40)))
    # when its report is asked for, then the error ends with the last fifteen
    with pytest.raises(RuntimeError) as error:
        done.report(RuntimeError, "the suite did not complete")
    assert str(error.value).splitlines()[1:] == [f"line {k}" for k in range(25, 40)]


def test_a_run_that_failed_audits_but_wrote_its_report_completed():
    done = SuiteProcess(1, json.dumps({"models": []}), "")
    assert done.completed and done.report(RuntimeError, "unused") == {"models": []}


def test_the_suite_runs_in_the_directory_and_environment_given(tmp_path):
    # given a test that passes only where a variable is set
    (tmp_path / "test_env.py").write_text(NEEDS_A_VARIABLE)
    args = ["test_env.py", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    # when it runs there with and without the variable, then it passes only with it
    assert run_pytest(args, cwd=tmp_path, env={"AUDITLENS_SUITE_PROCESS_TEST": "set"}).returncode == 0
    assert run_pytest(args, cwd=tmp_path).returncode == 1


def test_an_audit_suite_run_on_a_model_gives_back_its_report(tmp_path, monkeypatch):
    # given a user's repository: one YAML audit and the concept file it reads
    (tmp_path / "audits").mkdir()
    (tmp_path / "audits" / "count.audit.yaml").write_text(SUITE)
    (tmp_path / "probes").mkdir()
    for suffix in (".yaml", ".jsonl"):
        shutil.copy(ROOT / "probes" / f"more_a_than_b{suffix}", tmp_path / "probes")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDITLENS_FIXTURES", str(ROOT / "fixtures"))
    # when the suite runs on the count twin that learned the rule
    report = run_audits(["audits"], ["fixture:count-learned"], "probes", 0, error=MutationError)
    # then its report says so
    model = model_entry(report, "fixture:count-learned", MutationError)
    assert model["verdict"] == "learned" and [a["outcome"] for a in model["audits"]] == ["passed"]


def test_a_model_the_suite_did_not_audit_is_an_error_naming_it():
    with pytest.raises(MutationError, match=r"the audit suite ran no audit on \./my-model: do its audits select"):
        model_entry({"models": [{"id": "other"}]}, "./my-model", MutationError)
