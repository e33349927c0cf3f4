"""Runs that stop before their end, workers that die, reports that cannot be written (issue 16: 1, 4, 7)."""

import json
import sys

import pytest

MODEL = ["--model", "fixture:count-learned", "-p", "no:cacheprovider"]


def audits(stop: str) -> str:
    """Four audits; the third does ``stop``."""
    return f"""
import os, signal

def test_1(subject):
    pass

def test_2(subject):
    pass

def test_3(subject):
    {stop}

def test_4(subject):
    pass
"""


def report_of(repo, directory="reports"):
    return json.loads((repo.path / directory / "report.json").read_text())


@pytest.mark.parametrize("stop, why, status", [
    ("raise KeyboardInterrupt", "interrupted by the user (Ctrl-C)", 2),
    ("os.kill(os.getpid(), signal.SIGTERM)", "SIGTERM received", 2),
])
def test_an_interrupted_run_writes_a_report_that_claims_no_verdict(audit_repo, stop, why, status):
    if "SIGTERM" in stop:  # SIGTERM used to leave the previous, complete report in place, stale
        audit_repo.makepyfile(test_audit=audits("pass"))
        audit_repo.runpytest_subprocess(*MODEL).assert_outcomes(passed=4)
    audit_repo.makepyfile(test_audit=audits(stop))
    result = audit_repo.runpytest_subprocess(*MODEL)
    assert result.ret == status
    report = report_of(audit_repo)
    assert report["run"]["interrupted"] == why
    (model,) = report["models"]
    assert model["verdict"] == "inconclusive" and "interrupted" in model["reason"]
    assert [a["outcome"] for a in model["audits"]] == ["passed", "passed"]
    assert [n.split("::")[1] for n in model["not_run"]] == ["test_3[fixture:count-learned]",
                                                            "test_4[fixture:count-learned]"]
    summary = (audit_repo.path / "reports" / "summary.md").read_text()
    assert "This run was interrupted" in summary and "## Audits that did not run" in summary and "test_4" in summary
    html = (audit_repo.path / "reports" / "report.html").read_text()
    assert 'id="interrupted"' in html and "2 audit(s) did not run" in html
    result.stdout.fnmatch_lines([f"*the run was interrupted ({why}): no model has a verdict*"])


def test_a_run_stopped_by_maxfail_claims_no_verdict(audit_repo):
    audit_repo.makepyfile(test_audit=audits("assert False, 'found something'"))
    result = audit_repo.runpytest_subprocess(*MODEL, "-x")
    assert result.ret == 1
    report = report_of(audit_repo)
    assert report["run"]["interrupted"].startswith("stopped early")
    assert report["models"][0]["verdict"] == "inconclusive"
    assert [n.split("::")[1] for n in report["models"][0]["not_run"]] == ["test_4[fixture:count-learned]"]


def test_a_complete_run_is_not_marked_interrupted(audit_repo):
    audit_repo.makepyfile(test_audit=audits("pass"))
    audit_repo.runpytest_subprocess(*MODEL).assert_outcomes(passed=4)
    report = report_of(audit_repo)
    assert report["run"]["interrupted"] is None and report["models"][0]["not_run"] == []
    assert report["models"][0]["verdict"] == "learned"


KILLERS = {
    # the worker dies after the audit passed, before its teardown ends: the audit stands as passed
    "in teardown": ("""
@pytest.fixture
def dies():
    yield
    os.kill(os.getpid(), signal.SIGKILL)
""", "passed"),
    # the worker is killed mid-audit the first time only (from outside, say): the retry decides
    "once, mid-audit": ("""
@pytest.fixture
def dies():
    flag = Path(os.environ["KILL_FLAG"])
    if not flag.exists():
        flag.write_text("")
        os.kill(os.getpid(), signal.SIGKILL)
""", "passed"),
    # the audit kills every worker that runs it: lost, run twice at most, the rest still runs
    "every time": ("""
@pytest.fixture
def dies():
    os.kill(os.getpid(), signal.SIGKILL)
""", "lost"),
}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("when", KILLERS)
def test_a_killed_worker_leaves_each_audit_once_with_its_final_outcome(audit_repo, monkeypatch, when):
    pytest.importorskip("xdist")
    fixture, final = KILLERS[when]
    monkeypatch.setenv("KILL_FLAG", str(audit_repo.path / "killed-once"))
    audit_repo.makepyfile(test_audit=f"""
import os, signal
from pathlib import Path
import pytest
{fixture}
def test_1(subject, dies):
    pass

def test_2(subject):
    pass
""")
    result = audit_repo.runpytest_subprocess(*MODEL, "-n", "1")
    assert result.stdout.str().count("replacing crashed worker") <= 2  # not once per restarted worker
    model = report_of(audit_repo)["models"][0]
    outcomes = {a["nodeid"].split("::")[1]: a["outcome"] for a in model["audits"]}
    assert len(model["audits"]) == 2, result.stdout.str()
    assert outcomes == {"test_1[fixture:count-learned]": final, "test_2[fixture:count-learned]": "passed"}
    assert model["verdict"] == ("learned" if final == "passed" else "inconclusive")
    assert "replacing crashed worker" in result.stdout.str()  # a worker did die


def test_an_audit_that_never_ended_leaves_its_model_without_a_verdict():
    from auditlens.report import build_report

    record = {"nodeid": "a.py::t1[m]", "name": "t1", "model": "m", "outcome": "passed", "results": []}
    report = build_report([record], {"seed": 0}, planned={"a.py::t1[m]": "m", "a.py::t2[m]": "m"})
    (model,) = report["models"]
    assert model["verdict"] == "inconclusive" and model["not_run"] == ["a.py::t2[m]"]
    assert model["reason"] == "1 of its audits did not run (first: a.py::t2[m]): no verdict"


def test_a_report_dir_that_is_a_file_stops_the_run_before_any_audit(audit_repo):
    audit_repo.makepyfile(test_audit=audits("pass"))
    (audit_repo.path / "out").write_text("not a directory")
    result = audit_repo.runpytest_subprocess(*MODEL, "--audit-report", "out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the report directory out is a file; give a directory*"])
    assert "test_1" not in result.stdout.str()


def test_a_report_that_cannot_be_written_fails_the_run_and_keeps_the_old_one(audit_repo, monkeypatch):
    from auditlens.report import writers

    audit_repo.makepyfile(test_audit=audits("pass"))
    audit_repo.runpytest(*MODEL)
    before = {p.name: p.read_text() for p in (audit_repo.path / "reports").iterdir() if not p.name.startswith(".")}

    def disk_full(path, text):
        if path.name == "report.html":
            raise OSError(28, "No space left on device")
        return real(path, text)

    real = writers._write_synced
    monkeypatch.setattr(writers, "_write_synced", disk_full)
    result = audit_repo.runpytest(*MODEL, "--audit-seed", "5")
    assert result.ret == writers.REPORT_NOT_WRITTEN_EXIT == 7
    result.stdout.fnmatch_lines(["*audit report NOT written: could not write the report into reports: "
                                 "No space left on device; the previous report there is left as it was*"])
    after = {p.name: p.read_text() for p in (audit_repo.path / "reports").iterdir() if not p.name.startswith(".")}
    assert after == before and len(before) == 3  # all three old files, nothing new, no staging left


def test_a_report_that_cannot_be_rendered_writes_nothing(tmp_path, monkeypatch):
    from auditlens.report import writers
    from auditlens.report.html import render_html  # noqa: F401 (loaded, to be replaced)

    monkeypatch.setattr("auditlens.report.html.render_html", lambda report: 1 / 0)
    report = {"schema": "auditlens.report/2", "run": {"seed": 0}, "models": []}
    with pytest.raises(writers.ReportWriteError, match=r"could not render report.html \(ZeroDivisionError"):
        writers.write_report(report, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
