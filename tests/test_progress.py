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
