from auditlens.verdict import verdict_for


def record(outcome, kind=None, checks=("probe",), model="m"):
    return {"nodeid": f"t::{outcome}-{kind}", "model": model, "outcome": outcome, "kind": kind,
            "results": [{"check": c} for c in checks]}


def test_every_audit_passing_means_learned():
    assert verdict_for("m", [record("passed"), record("passed")]).verdict == "learned"


def test_a_failed_mechanistic_assertion_means_cheated_even_beside_errors():
    verdict = verdict_for("m", [record("passed"), record("failed", "assertion", ("patch",)), record("failed", "error")])
    assert verdict.verdict == "cheated" and verdict.failed == 1 and verdict.errors == 1


def test_an_error_without_mechanistic_failure_is_inconclusive():
    assert verdict_for("m", [record("passed"), record("failed", "error")]).verdict == "inconclusive"


def test_a_failed_plain_assertion_is_not_evidence_of_a_mechanism():
    verdict = verdict_for("m", [record("failed", "assertion", checks=())])
    assert verdict.verdict == "inconclusive" and "non-mechanistic" in verdict.reason


def test_no_audit_is_inconclusive():
    assert verdict_for("m", [record("skipped")]).reason == "no audit ran"
