"""Which failed audits a verdict rests on is said once (report.check_tags.mechanistic_failures): the verdict
and the mutation table's "killed by" both read it, so a killed mutant never names an audit that errored."""

import pytest

from auditlens.mutation.suite import failed_audits
from auditlens.report.check_tags import mechanistic_failures
from auditlens.report.verdict import verdict_for


def audit(name: str, outcome: str, kind: str | None, mechanistic: bool = True) -> dict:
    check = {"check": "patch" if mechanistic else "expect_invariant", "mechanistic": mechanistic, "site": "layer:0",
             "metrics": {"flip_rate": 0.4}, "thresholds": [{"metric": "flip_rate", "op": "<=", "value": 0.05,
                                                              "passed": outcome != "passed"}]}
    return {"name": f"{name}[m]", "nodeid": f"a.py::{name}[m]", "outcome": outcome, "kind": kind, "checks": [check]}


# an errored audit as pytest reports it (failed, kind error) and as the report names it (error)
@pytest.mark.parametrize("errored", [("failed", "error"), ("error", "error")])
def test_a_killed_mutant_names_the_audits_its_verdict_rests_on_and_no_errored_one(errored):
    model = {"id": "m", "verdict": "cheated", "audits": [
        audit("marker_moves_it", "failed", "assertion"),
        audit("site_typo", *errored),  # a mechanistic check that raised: it found nothing about the model
        audit("answers_hold", "failed", "assertion", mechanistic=False),
        audit("count_is_there", "passed", None)]}
    assert verdict_for("m", model["audits"]).verdict == "cheated"
    assert [a["name"] for a in mechanistic_failures(model["audits"])] == ["marker_moves_it[m]"]
    assert failed_audits(model, "verdict") == ["marker_moves_it"]
    assert failed_audits(model, "failure") == ["marker_moves_it", "answers_hold"]


def test_an_audit_that_errored_kills_nothing_and_decides_nothing():
    model = {"id": "m", "audits": [audit("site_typo", "failed", "error"), audit("count_is_there", "passed", None)]}
    assert verdict_for("m", model["audits"]).verdict == "inconclusive"
    assert failed_audits(model, "verdict") == [] and failed_audits(model, "failure") == []
