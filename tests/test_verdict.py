import pytest

from auditlens.report.verdict import verdict_for


def record(outcome, kind=None, checks=("probe",), model="m"):
    """A report audit as build_report makes it (outcome, kind, checks)."""
    return {"nodeid": f"t::{outcome}-{kind}", "name": f"test_{outcome}", "model": model, "outcome": outcome,
            "kind": kind, "checks": [{"check": c, "metrics": {}} for c in checks]}


def test_every_audit_passing_means_learned():
    assert verdict_for("m", [record("passed"), record("passed")]).verdict == "learned"


def test_a_failed_mechanistic_assertion_means_cheated_even_beside_errors():
    verdict = verdict_for("m", [record("passed"), record("failed", "assertion", ("patch",)), record("failed", "error")])
    assert verdict.verdict == "cheated" and verdict.evidence is None  # the audit names no threshold


def test_an_error_without_mechanistic_failure_is_inconclusive():
    assert verdict_for("m", [record("passed"), record("failed", "error")]).verdict == "inconclusive"


def test_a_failed_plain_assertion_is_not_evidence_of_a_mechanism():
    verdict = verdict_for("m", [record("failed", "assertion", checks=())])
    assert verdict.verdict == "inconclusive" and "non-mechanistic" in verdict.reason


@pytest.mark.parametrize("audits, reason", [
    ([record("passed")], "the 1 audit that ran passed"),
    ([record("passed")] * 2, "all 2 audits that ran passed"),
    ([record("failed", "error")], "1 audit ended in error or was lost"),
    ([record("failed", "error")] * 2, "2 audits ended in error or were lost"),
    ([record("failed", "assertion", checks=())], "1 non-mechanistic audit failed"),
    ([record("failed", "assertion", checks=())] * 3, "3 non-mechanistic audits failed"),
])
def test_a_reason_counts_in_words_that_agree_with_the_count(audits, reason):
    """Issue 37: 'all 1 audits'."""
    assert verdict_for("m", audits).reason.startswith(reason)


def test_no_audit_is_inconclusive():
    assert verdict_for("m", [record("skipped")]).reason == "no audit ran"


def missed(check, site, metric, value, op, bound, uncertain=False):
    return {"check": check, "site": site, "metrics": {metric: value},
            "thresholds": [{"metric": metric, "op": op, "value": bound, "passed": False, "uncertain": uncertain}]}


def test_the_reason_names_the_strongest_evidence():
    weak = {**record("failed", "assertion"), "name": "probe audit",
            "checks": [missed("probe", "layer:1", "accuracy", 0.85, ">=", 0.9)]}
    strong = {**record("failed", "assertion"), "name": "marker audit",
              "checks": [missed("patch", "layer:0", "flip_rate", 1.0, "<=", 0.05)]}
    verdict = verdict_for("m", [weak, strong])
    assert verdict.reason == ("patch at layer:0: flip_rate = 1.000, needed <= 0.05 (marker audit); "
                              "1 more mechanistic audit failed")
    assert verdict.evidence["metric"] == "flip_rate" and verdict.evidence["audit"] == "marker audit"


def test_a_negative_drop_says_what_it_means():
    """Issue 37: a killed shortcut mutant was described by 'accuracy_drop = -0.500' and nothing more."""
    def reason(value):
        audit = {**record("failed", "assertion"), "name": "relies on the count",
                 "checks": [missed("ablate", "layer:1", "accuracy_drop", value, ">=", 0.3)]}
        return verdict_for("m", [audit]).reason

    assert reason(-0.5) == ("ablate at layer:1: accuracy_drop = -0.500 (negative: the accuracy rose by 0.500 under the "
                            "intervention: the model did better without what it removed), needed >= 0.3 "
                            "(relies on the count)")
    assert reason(0.1) == "ablate at layer:1: accuracy_drop = 0.100, needed >= 0.3 (relies on the count)"


def test_an_uncertain_miss_is_weaker_evidence_than_a_clear_one():
    shaky = {**record("failed", "assertion"), "name": "shaky",
             "checks": [missed("patch", "layer:0", "flip_rate", 0.5, "<=", 0.05, uncertain=True)]}
    clear = {**record("failed", "assertion"), "name": "clear",
             "checks": [missed("probe", "layer:1", "accuracy", 0.6, ">=", 0.9)]}
    assert verdict_for("m", [shaky, clear]).evidence["audit"] == "clear"


def test_a_vacuous_pass_never_counts_toward_learned():
    vacuous = {**record("vacuous"), "vacuous": "accuracy before the intervention is 0.503 ...: nothing to lose"}
    verdict = verdict_for("m", [record("passed"), vacuous])
    assert verdict.verdict == "inconclusive" and "could not have failed" in verdict.reason
    assert "nothing to lose" in verdict.reason


def test_outcomes_named_as_pytest_names_them_are_read_in_the_vocabulary():
    assert verdict_for("m", [record("passed"), record("xfailed")]).verdict == "learned"
    assert verdict_for("m", [record("failed", "error")]).reason.startswith("1 audit ended in error or was lost")
