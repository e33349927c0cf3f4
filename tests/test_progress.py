"""Progress on long work: a zoo organism trained on first use, a probe sweep's fits."""

import logging

from auditlens import probe
from auditlens.progress import report, restore_sink, use_sink
from auditlens.zoo import registry
from auditlens.zoo.organism import Organism
from auditlens.zoo.registry import resolve_fixture


def test_a_session_sink_and_the_logger_both_hear_it(caplog):
    heard = []
    token = use_sink(lambda message, detail: heard.append((message, detail)))
    try:
        with caplog.at_level(logging.INFO, logger="auditlens.progress"):
            report("step one", detail=True)
    finally:
        restore_sink(token)
    report("after the session")  # no sink: only the logger
    assert heard == [("step one", True)] and "step one" in caplog.text


def test_a_fixture_trained_on_first_use_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITLENS_ZOO_CACHE", str(tmp_path))

    def builder(directory, seed):
        (directory / "weights").write_text("w")
        return {}

    monkeypatch.setitem(registry._REGISTRY, "toy-progress",  # for this test only
                        Organism(name="toy-progress", family="toy", description="", build=builder))
    heard = []
    token = use_sink(lambda message, detail: heard.append(message))
    try:
        resolve_fixture("toy-progress")
        resolve_fixture("toy-progress")  # built: silent
    finally:
        restore_sink(token)
    assert heard[0].startswith("training fixture:toy-progress on first use (not shipped in fixtures/; cached in ")
    assert heard[1].startswith("fixture:toy-progress built in ") and len(heard) == 2


def test_a_sweep_reports_each_fit_as_a_detail(learned, concepts):
    heard = []
    token = use_sink(lambda message, detail: heard.append((message, detail)))
    try:
        probe(learned, concepts["more_a_than_b"], at="layer:*")
    finally:
        restore_sink(token)
    assert heard == [("probe 'more_a_than_b' on fixture:count-learned: fitting embed (1/3)", True),
                     ("probe 'more_a_than_b' on fixture:count-learned: fitting layer:0 (2/3)", True),
                     ("probe 'more_a_than_b' on fixture:count-learned: fitting layer:1 (3/3)", True)]


def test_pytest_shows_the_fits_past_capture_with_verbose(audit_repo):
    audit_repo.makepyfile(test_sweep="""
from auditlens import probe

def test_sweep(subject, more_a_than_b):
    assert probe(subject, more_a_than_b, at="layer:*").best_accuracy >= 0.5
""")
    verbose = audit_repo.runpytest("-v", "--model", "fixture:count-learned")
    verbose.stdout.fnmatch_lines(["auditlens: probe 'more_a_than_b' on fixture:count-learned: fitting layer:0 (2/3)"])
    quiet = audit_repo.runpytest("--model", "fixture:count-learned")
    assert "fitting layer:0" not in quiet.stdout.str()


COUNT_AUDITS = """
from auditlens import patch, probe

def test_marker_is_ignored(subject, marker_swapped):
    assert patch(subject, marker_swapped, at="layer:0").flip_rate <= 0.05

def test_count_is_represented(subject, more_a_than_b):
    assert probe(subject, more_a_than_b, at="layer:1").accuracy >= 0.9
"""
TWINS = ["--model", "fixture:count-learned", "--model", "fixture:count-cheated"]


def test_pytest_says_when_each_models_audits_are_done(audit_repo):
    """Issue 37: `make audit` ran for minutes with no hint of how far it was."""
    audit_repo.makepyfile(test_audit=COUNT_AUDITS)
    result = audit_repo.runpytest(*TWINS, "-p", "no:randomly")
    result.stdout.re_match_lines([
        r"auditlens: fixture:count-learned: 2/2 audits done \(1 of 2 models, \d+ s\)$",
        r"auditlens: fixture:count-cheated: 2/2 audits done, 2 failed \(2 of 2 models, \d+ s\)$",
    ])


def test_each_model_is_said_done_once_with_xdist_workers(audit_repo):
    """With -n 2 each model's audits run on one worker; the controller, which gets every record, says it."""
    audit_repo.makepyfile(test_audit=COUNT_AUDITS)
    result = audit_repo.runpytest(*TWINS, "-n", "2")
    done = [line for line in result.stdout.lines if " audits done" in line]
    assert sorted(line.split(" (")[0] for line in done) == [
        "auditlens: fixture:count-cheated: 2/2 audits done, 2 failed", "auditlens: fixture:count-learned: 2/2 audits done"]
    assert sorted(line.split(" (")[1].split(",")[0] for line in done) == ["1 of 2 models", "2 of 2 models"]


def test_a_model_with_audits_left_is_not_said_done(audit_repo):
    audit_repo.makepyfile(test_audit=COUNT_AUDITS)
    result = audit_repo.runpytest(*TWINS, "-k", "marker")
    result.stdout.re_match_lines([r"auditlens: fixture:count-learned: 1/1 audits done \(1 of 2 models"])
    assert "2/2" not in result.stdout.str()
