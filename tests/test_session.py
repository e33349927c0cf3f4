"""AuditSession: a run of audits without pytest, from loading to the written report."""

import json

import pytest

from auditlens import AuditlensError, ModelLoadError, probe
from auditlens.accounting import lower_bound
from auditlens.plugin.options import parse_device_map
from auditlens.report.record import AuditRecord
from auditlens.session import AuditSession, SessionOptions
from auditlens.settings import default_store, seed_or_default

MODEL = "fixture:count-learned"


def options(tmp_path, **changes):
    from pathlib import Path

    probes = Path(__file__).parent.parent / "probes"
    return SessionOptions(models=(MODEL,), report_dir=tmp_path / "out", probes_dir=probes, **changes)


def test_a_script_runs_an_audit_and_gets_the_report_with_its_verdict(tmp_path):
    session = AuditSession(options(tmp_path, seed=3))
    with session:
        subject = session.subject(MODEL)
        before = session.pass_counts()
        result = probe(subject, session.concept("more_a_than_b"), at="layer:1")
        executed, needs, _ = session.passes_since(before)
        missed = session.record("the count is represented", MODEL, result, expect={"accuracy": ">= 0.9"})
    outcome = session.finish()
    written = json.loads(outcome.paths["json"].read_text())
    (model,) = written["models"]
    assert missed == [] and model["id"] == MODEL and model["verdict"] == "learned" and written["run"]["seed"] == 3
    assert model["audits"][0]["checks"][0]["thresholds"][0] == {**model["audits"][0]["checks"][0]["thresholds"][0],
                                                                "metric": "accuracy", "op": ">=", "value": 0.9}
    assert model["forward_passes"] == executed >= 1 and model["forward_passes_lower_bound"] == lower_bound(needs)


def test_a_script_audit_that_misses_its_condition_fails_and_says_so(tmp_path):
    with AuditSession(options(tmp_path)) as session:
        result = probe(session.subject(MODEL), session.concept("more_a_than_b"), at="layer:1")
        missed = session.record("impossible", MODEL, result, expect={"accuracy": "between 0.0 and 0.1"})
        with pytest.raises(AuditlensError, match="a probe result has no metric 'acuracy'"):
            session.record("typo", MODEL, result, expect={"acuracy": ">= 0.9"})
    (model,) = session.finish().report["models"]
    assert len(missed) == 1 and "between 0.0 and 0.1" in missed[0]
    assert model["audits"][0]["outcome"] == "failed" and model["verdict"] == "cheated"


def test_a_session_loads_each_model_and_concept_once(tmp_path):
    session = AuditSession(options(tmp_path))
    assert session.subject(MODEL) is session.subject(MODEL)
    assert session.concept("more_a_than_b") is session.concept("more_a_than_b")


def test_its_seed_and_store_are_the_defaults_only_while_it_runs(tmp_path):
    outer_seed, outer_store = seed_or_default(None), default_store()
    session = AuditSession(options(tmp_path, seed=11, cache_dir=str(tmp_path / "cache")))
    with session:
        assert seed_or_default(None) == 11 and default_store() is session.store
        with AuditSession(options(tmp_path, seed=5)):  # a session inside (pytester): its own seed, same store
            assert seed_or_default(None) == 5 and default_store() is session.store
        assert seed_or_default(None) == 11
    assert seed_or_default(None) == outer_seed and default_store() is outer_store


def test_no_record_writes_no_report(tmp_path):
    outcome = AuditSession(options(tmp_path)).finish()
    assert outcome.report is None and not (tmp_path / "out").exists()


def test_a_missing_baseline_stops_the_session_before_any_audit(tmp_path):
    """Issue 26: it was found only after every audit had run."""
    with pytest.raises(AuditlensError, match=r"--audit-baseline .*nowhere.json: no report at .*give a report.json"):
        AuditSession(options(tmp_path, baseline=str(tmp_path / "nowhere.json")))


def test_a_missing_model_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no fixture named 'count-lerned'"):
        AuditSession(options(tmp_path)).subject("fixture:count-lerned")


def test_device_maps_parse_in_one_place():
    assert parse_device_map("auto") == "auto" and parse_device_map("") is None
    assert parse_device_map('{"model.layers": "cpu"}') == {"model.layers": "cpu"}
    with pytest.raises(AuditlensError, match="--audit-device-map is not valid JSON"):
        parse_device_map("{model.layers: cpu}")


def test_a_record_knows_its_outcomes_and_a_lost_one_says_so():
    lost = AuditRecord.lost(nodeid="a.py::t[m]", file="a.py", model="m", when="call", duration=1.0,
                            message="worker crashed " * 100)
    data = lost.to_dict()
    assert data["outcome"] == "lost" and data["kind"] == "error" and "needs" not in data
    assert len(data["message"]) == 500 and data["name"] == "t[m]"
    with pytest.raises(ValueError, match="outcome must be one of"):
        AuditRecord(nodeid="x", name="x", file=None, line=None, model="m", fingerprint=None, truth=None,
                    outcome="errored", kind=None, when="call", duration=0.0)
