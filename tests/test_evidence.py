"""Evidence a reviewer can trust: the audit's numbers are the deciding check's, a pass that could not
have failed says so, and the baseline comparison counts each regression once."""

import json
import random
import re

import pytest

from auditlens import Concept, ablate, patch
from auditlens.checks import PatchResult
from auditlens.cli import main
from auditlens.report import build_report, compare_reports, read_report, write_report
from auditlens.report.markdown import render_markdown

RUN = {"auditlens": "0", "torch": "t", "transformers": "x", "seed": 0, "git_commit": None}


def record(model, outcome="passed", kind=None, results=(), nodeid="t.py::test_a", fingerprint="f"):
    return {"nodeid": f"{nodeid}[{model}]", "name": nodeid.split("::")[-1], "file": "t.py", "line": 1,
            "model": model, "fingerprint": fingerprint, "truth": None, "outcome": outcome, "kind": kind,
            "duration": 0.1, "forward_passes": 2, "results": list(results), "message": None}


def patch_check(token, flip_rate, bound=0.05):
    return {"check": "patch", "subject": "m", "site": f"tokens[{token}]", "n": 40, "concept": "scan",
            "metrics": {"iia": 1.0 - flip_rate, "flip_rate": flip_rate}, "intervals": {}, "examples": [],
            "thresholds": [{"metric": "flip_rate", "op": "<=", "value": bound, "passed": flip_rate <= bound,
                            "uncertain": False, "vacuous": None}]}


def test_a_loop_reports_the_check_that_decided_it():
    scan = [patch_check("a", 0.0), patch_check("q", 1.0), patch_check("b", 0.0)]
    report = build_report([record("m", "failed", "assertion", scan)], RUN)
    audit = report["models"][0]["audits"][0]
    assert audit["metrics"]["flip_rate"] == 1.0
    assert audit["decided_by"] == {"index": 1, "check": "patch", "site": "tokens[q]", "of": 3}
    assert "flip_rate = 1.000 (needs <= 0.05) at patch tokens\\[q\\] on scan" in render_markdown(report)


def test_a_passing_loop_reports_its_worst_case():
    scan = [patch_check("a", 0.0), patch_check("q", 0.04), patch_check("b", 0.01)]
    audit = build_report([record("m", results=scan)], RUN)["models"][0]["audits"][0]
    assert audit["decided_by"]["site"] == "tokens[q]" and audit["metrics"]["flip_rate"] == 0.04


def test_counts_add_up_in_one_vocabulary():
    records = [record("m", results=[patch_check("a", 0.0)], nodeid=f"t.py::test_{i}") for i in range(2)]
    records += [record("m", "failed", "error", nodeid="t.py::test_e"), record("m", "xfailed", nodeid="t.py::test_x"),
                record("m", "skipped", nodeid="t.py::test_s"), record("m", "lost", "error", nodeid="t.py::test_l")]
    (model,) = build_report(records, RUN)["models"]
    counts = model["counts"]
    assert {o for o, n in counts.items() if n and o not in ("total",)} == {"passed", "error", "xfail", "skipped",
                                                                         "lost"}
    assert sum(counts[o] for o in ("passed", "failed", "error", "vacuous", "lost", "skipped", "xfail")) \
        == counts["total"] == len(model["audits"]) == 6
    assert {a["outcome"] for a in model["audits"]} == {"passed", "error", "xfail", "skipped", "lost"}


@pytest.fixture(scope="module")
def shuffled(learned):
    """The count inputs with labels that have nothing to do with them: the model is at chance on them."""
    from pathlib import Path

    from auditlens import load_concept

    real = load_concept(Path(__file__).parent.parent / "probes" / "more_a_than_b.yaml")
    labels = list(real.labels)
    random.Random(0).shuffle(labels)
    return Concept("shuffled", examples=real.examples, labels=tuple(labels), label_names=real.label_names)


def test_must_not_change_is_vacuous_when_behaviour_is_at_chance(learned, shuffled):
    result = ablate(learned, shuffled, at="layer:0", kind="zero")
    assert result.accuracy_drop <= 0.6  # holds: but the model had nothing to lose
    (threshold,) = result.thresholds
    assert threshold["passed"] and "not above chance" in threshold["vacuous"]
    (model,) = build_report([record("m", results=[result.to_dict()])], RUN)["models"]
    assert model["audits"][0]["outcome"] == "vacuous" and model["verdict"] == "inconclusive"
    assert "could not have failed" in model["reason"]


def test_must_not_change_counts_when_the_model_was_competent(learned, concepts):
    result = ablate(learned, concepts["more_a_than_b"], at="layer:0", kind="zero", positions=0)
    assert result.accuracy_before >= 0.9
    result.accuracy_drop <= 1.0  # noqa: B015  (a threshold the result records)
    assert result.thresholds[0]["vacuous"] is None


def test_no_flip_is_vacuous_when_every_base_gets_one_answer():
    result = PatchResult(check="patch", subject="m", site="layer:0", n=20, flip_rate=0.0, predicted_classes=1)
    result.flip_rate <= 0.05  # noqa: B015
    assert "one class for every base input" in result.thresholds[0]["vacuous"]
    both = PatchResult(check="patch", subject="m", site="layer:0", n=20, flip_rate=0.0, predicted_classes=2)
    both.flip_rate <= 0.05  # noqa: B015
    assert both.thresholds[0]["vacuous"] is None


def test_a_real_patch_knows_how_many_classes_the_bases_get(learned, concepts):
    assert patch(learned, concepts["marker_swapped"], at="layer:0").predicted_classes == 2


def test_a_newly_failing_audit_is_one_regression_not_one_per_metric():
    old = build_report([record("m", results=[patch_check("q", 0.0)])], RUN)
    new = build_report([record("m", "failed", "assertion", [patch_check("q", 1.0)])], RUN)
    regressions = compare_reports(old, new)["regressions"]
    assert regressions == ["m: t.py::test_a[m] newly failing", "m: verdict learned -> cheated"]


def test_models_renamed_between_runs_are_matched_by_fingerprint_or_said_to_be_unmatched(tmp_path, capsys):
    old = build_report([record("old-name", results=[patch_check("q", 0.0)], fingerprint="abc")], RUN)
    renamed = build_report([record("new-name", "failed", "assertion", [patch_check("q", 1.0)], fingerprint="abc")],
                           RUN)
    comparison = compare_reports(old, renamed)
    assert comparison["compared"] == 1 and "matched by fingerprint" in comparison["models"][0]["status"]
    assert "new-name: t.py::test_a[new-name] newly failing" in comparison["regressions"]
    other = build_report([record("other", results=[patch_check("q", 0.0)], fingerprint="zzz")], RUN)
    write_report(old, tmp_path / "old")
    write_report(other, tmp_path / "other")
    assert main(["report", "diff", str(tmp_path / "old"), str(tmp_path / "other")]) == 2
    captured = capsys.readouterr()
    assert "nothing compared" in captured.out and "old-name: in the baseline, not in this run" in captured.out


def test_report_diff_exits_6_on_a_regression_and_takes_directories(tmp_path):
    write_report(build_report([record("m", results=[patch_check("q", 0.0)])], RUN), tmp_path / "old")
    write_report(build_report([record("m", "failed", "assertion", [patch_check("q", 1.0)])], RUN), tmp_path / "new")
    assert main(["report", "diff", str(tmp_path / "old"), str(tmp_path / "new")]) == 6
    assert main(["report", "diff", str(tmp_path / "old"), str(tmp_path / "old")]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["report", "diff", str(tmp_path / "old"), str(tmp_path / "empty")]) == 2


def test_a_schema_1_report_is_read_in_todays_terms(tmp_path):
    old = build_report([record("m", "failed", "error"), record("m", "xfailed", nodeid="t.py::test_x")], RUN)
    old["schema"] = "auditlens.report/1"
    for audit in old["models"][0]["audits"]:
        audit["outcome"] = {"error": "failed", "xfail": "xfailed"}[audit["outcome"]]
    (tmp_path / "report.json").write_text(json.dumps(old))
    upgraded = read_report(tmp_path)
    assert upgraded["upgraded_from"] == "auditlens.report/1"
    assert [a["outcome"] for a in upgraded["models"][0]["audits"]] == ["error", "xfail"]
    assert upgraded["models"][0]["counts"]["error"] == 1


def probe_on(correct, digest="d"):
    accuracy = sum(correct) / len(correct)
    return {"check": "probe", "subject": "m", "site": "layer:1", "n": len(correct), "data_digest": digest,
            "metrics": {"accuracy": accuracy}, "intervals": {}, "examples": [],
            "per_example": {"accuracy": [float(c) for c in correct]},
            "thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.5, "passed": True, "uncertain": False,
                            "vacuous": None}]}


def regressions(old_correct, new_correct, new_digest="d"):
    old = build_report([record("m", results=[probe_on(old_correct)])], RUN)
    new = build_report([record("m", results=[probe_on(new_correct, new_digest)])], RUN)
    return compare_reports(old, new, tolerance=0.02)


def test_a_small_drop_on_many_examples_is_a_regression_when_the_paired_test_says_so():
    old = [1] * 1900 + [0] * 100
    new = [0] * 30 + [1] * 1870 + [0] * 100  # 30 examples lost, none gained: -0.015, under the tolerance
    (regression,) = regressions(old, new)["regressions"]
    assert "accuracy 0.950 -> 0.935 (paired difference -0.015, 95% CI [" in regression and "n=2000" in regression


def test_a_drop_on_few_examples_is_not_a_regression_when_the_paired_interval_holds_zero():
    old = [1] * 18 + [0] * 2
    new = [0] + [1] * 4 + [0] + [1] * 12 + [1, 0]  # examples 0 and 5 lost, 18 gained: -0.05 on 20, past 0.02
    comparison = regressions(old, new)
    assert comparison["regressions"] == []
    interval = comparison["models"][0]["audits"][0]["paired"]["accuracy"]
    assert interval["low"] < 0 < interval["high"]


def test_other_examples_fall_back_to_the_tolerance():
    old, new = [1] * 18 + [0] * 2, [0, 0] + [1] * 16 + [0] * 2  # -0.10 on other data: beyond 0.02
    (regression,) = regressions(old, new, new_digest="other")["regressions"]
    assert regression.endswith("(beyond tolerance 0.02)")


def test_a_tiny_value_is_drawn_on_the_scale_of_its_requirement():
    from auditlens.report.figures import _span

    low, high = _span([4e-5], [{"value": 1.0}], None)
    assert low == 0.0 and high >= 1.0  # 0.00004 against >= 1 looks like nothing, not a tall bar


def test_a_loop_of_checks_is_one_chart_and_a_repeated_check_is_drawn_once():
    from auditlens.report.html import figures_of

    scan = [patch_check(t, 1.0 if t == "q" else 0.0) for t in "abcqde"]
    same = [patch_check("x", 0.0)]
    report = build_report([record("m", "failed", "assertion", scan, nodeid="t.py::test_scan"),
                           record("m", results=same, nodeid="a.audit.yaml::marker"),
                           record("m", results=same, nodeid="t.py::test_marker")], RUN)
    figures, same_as = figures_of(report)
    assert set(figures) == {("m", "t.py::test_scan[m]", "loop"), ("m", "a.audit.yaml::marker[m]", 0)}
    assert same_as == {("m", "t.py::test_marker[m]", 0): "marker"}


def test_text_is_never_read_as_mathtext():
    from auditlens.report.figures import bars

    check = {**patch_check("q", 0.0), "check": "patch", "site": "a $x^$ b"}
    assert bars(check, ["flip_rate"], "patch at a $x^$ b").startswith("data:image/png;base64,")


def test_invariance_is_vacuous_for_a_model_with_one_answer(learned):
    from hypothesis import strategies as st

    from auditlens.behaviour import expect_invariant, swap_words

    # inputs with far more b than a: the count twin calls every one of them "fewer", swapped or not
    inputs = st.lists(st.sampled_from(["b", "c"]), min_size=11, max_size=11).map(lambda w: " ".join(["m0", "a", *w]))
    result = expect_invariant(learned, inputs, swap_words({"m0": "m1", "m1": "m0"}), max_examples=30)
    assert result.failure_rate <= 0.05 and result.predicted_classes == 1
    assert "one class for every input" in result.thresholds[0]["vacuous"]


def test_names_cannot_inject_markdown_into_a_pull_request_comment():
    hostile = "x](http://evil.example) ![img](http://evil.example/a.png) **bold** `code`"
    report = build_report([record("m`|x", "failed", "error", nodeid=f"t.py::{hostile}")], RUN)
    text = render_markdown(report)
    assert "](http" not in text and "![" not in text and "**bold**" not in text
    assert "`m'\\|x`" in text  # the model id stays one code span in one table cell


@pytest.mark.parametrize("damage, problem", [
    (lambda r: r.pop("models"), "'models' is NoneType"),
    (lambda r: r.pop("run"), "'run' is NoneType"),
    (lambda r: r["models"][0]["audits"][0]["metrics"].update(flip_rate="x"),
     "models[0].audits[0].metrics['flip_rate'] is str 'x'; expected a number"),
])
def test_a_malformed_report_is_named_not_a_traceback(tmp_path, damage, problem, capsys):
    report = build_report([record("m", results=[patch_check("q", 0.0)])], RUN)
    damage(report)
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(Exception, match="is not a well-formed auditlens report: " + re.escape(problem)):
        read_report(tmp_path)
    assert main(["report", "diff", str(tmp_path), str(tmp_path)]) == 2
    assert "not a well-formed auditlens report" in capsys.readouterr().err
