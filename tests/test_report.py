"""The report: JSON core, escaping, Markdown, baseline comparison and gating, xdist, re-rendering."""

import copy
import json

import pytest
from hypothesis import strategies as st

from auditlens import load_subject
from auditlens.behaviour import expect_invariant, swap_words
from auditlens.report import build_report, compare_reports, read_report, write_report
from auditlens.report.compare import gate_status
from auditlens.report.markdown import render_markdown
from auditlens.report.model import strip_timings

RUN = {"auditlens": "0", "torch": "t", "transformers": "x", "seed": 0, "git_commit": None}


def record(model, outcome="passed", kind=None, results=(), nodeid="t.py::test_a"):
    return {"nodeid": f"{nodeid}[{model}]", "name": nodeid.split("::")[-1], "file": "t.py", "line": 1,
            "model": model, "fingerprint": "f", "truth": None, "outcome": outcome, "kind": kind,
            "duration": 0.1, "forward_passes": 2, "results": list(results), "message": None}


def probe_check(accuracy, passed=True):
    return {"check": "probe", "subject": "m", "site": "layer:1", "n": 10, "concept": "c",
            "metrics": {"accuracy": accuracy}, "intervals": {}, "examples": [],
            "thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9, "passed": passed}]}


def test_core_shape_other_tools_read():
    report = build_report([record("m1", results=[probe_check(0.95)]), record("m2", "failed", "assertion",
                                                                            [probe_check(0.5, False)])], RUN)
    assert report["schema"] == "auditlens.report/2"
    (first, second) = report["models"]
    assert {"id", "verdict", "audits"} <= set(first) and first["verdict"] == "learned"
    assert second["verdict"] == "cheated"
    assert {"name", "outcome", "metrics"} <= set(second["audits"][0])
    assert second["audits"][0]["metrics"] == {"accuracy": 0.5}


def test_writes_are_atomic_and_readable(tmp_path):
    report = build_report([record("m1", results=[probe_check(0.95)])], RUN)
    paths = write_report(report, tmp_path)
    assert read_report(paths["json"]) == json.loads(json.dumps(report))
    # no staging and no lock left: the three files alone (the lock lives in the temporary directory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json", "summary.md"]


def test_a_file_that_is_not_a_report_is_named(tmp_path):
    from auditlens import AuditlensError

    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(AuditlensError, match="is not an auditlens report of schema 'auditlens.report/2'"):
        read_report(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text('{"a": ')
    with pytest.raises(AuditlensError, match="is not valid JSON"):
        read_report(tmp_path / "broken.json")


def test_a_report_is_named_by_its_file_or_the_directory_holding_it(tmp_path):
    from auditlens.report.writers import report_file

    # given a report directory
    write_report(build_report([record("m1", results=[probe_check(0.95)])], RUN), tmp_path / "run")
    # then the file and its directory both name the report.json
    assert report_file(tmp_path / "run" / "report.json") == tmp_path / "run" / "report.json"
    assert report_file(str(tmp_path / "run")) == tmp_path / "run" / "report.json"


@pytest.mark.parametrize("given, message", [
    ("nowhere.json", r"^no report at .*nowhere\.json$"),
    ("empty", r"^.*empty is a directory without a report\.json; give a report\.json or its directory$")])
def test_a_path_that_names_no_report_is_an_error_naming_it(tmp_path, given, message):
    from auditlens.report.writers import ReportNotFound, report_file

    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportNotFound, match=message):
        report_file(tmp_path / given)
    with pytest.raises(ReportNotFound, match=message):  # and reading it says the same
        read_report(tmp_path / given)


def test_every_string_from_a_model_a_dataset_or_a_spec_is_escaped(tmp_path, cheated):
    # given a model whose label names and a dataset whose text carry markup
    model = copy.deepcopy(cheated.model)
    model.config.id2label = {0: "<script>alert('label')</script>", 1: "more"}
    hostile = load_subject(model, tokenizer=cheated.tokenizer, id="<img src=x onerror=alert(1)>")
    inputs = st.sampled_from(["m0 a a b c d e a b c d e", "m1 a b b c d e a b c d e"]).map(
        lambda text: text + " <script>alert('input')</script>")
    result = expect_invariant(hostile, st.one_of(inputs, st.sampled_from([f"m0 {'a ' * 6}b b c d e"] * 20)),
                              swap_words({"m0": "m1", "m1": "m0"}), max_examples=20)
    check = result.to_dict()
    check["concept"] = "<script>alert('concept')</script>"
    report = build_report([record(hostile.id, "failed", "assertion", [check])], RUN)
    # when rendered, then no markup from them survives
    paths = write_report(report, tmp_path)
    html = paths["html"].read_text()
    assert "<script" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#39;concept&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in paths["markdown"].read_text()


def test_markdown_summary_names_failed_audits_with_their_numbers():
    report = build_report([record("m2", "failed", "assertion", [probe_check(0.5, False)])], RUN)
    text = render_markdown(report)
    assert "| `m2` | ❌ cheated |" in text and "accuracy = 0.500 (needs >= 0.9)" in text


def test_comparison_finds_new_failures_verdict_changes_and_metric_regressions():
    old = build_report([record("m", results=[probe_check(0.97)]), record("m", results=[probe_check(0.99)],
                                                                          nodeid="t.py::test_b")], RUN)
    new = build_report([record("m", results=[probe_check(0.93)]),
                        record("m", "failed", "assertion", [probe_check(0.5, False)], nodeid="t.py::test_b")], RUN)
    comparison = compare_reports(old, new, tolerance=0.02)
    assert comparison["models"][0]["verdict"] == ["learned", "cheated"]
    changes = {a["nodeid"]: a for a in comparison["models"][0]["audits"]}
    assert changes["t.py::test_b[m]"]["change"] == "newly failing"
    assert changes["t.py::test_a[m]"]["deltas"] == {"accuracy": pytest.approx(-0.04)}
    assert any("accuracy 0.970 -> 0.930 (beyond tolerance 0.02)" in r for r in comparison["regressions"])
    assert any("verdict learned -> cheated" in r for r in comparison["regressions"])
    assert compare_reports(old, old)["regressions"] == []


def test_a_difference_whose_paired_interval_spans_zero_is_not_listed_as_a_change():
    """Issue 26: 'margin_change +0.000, CI [-0.008, +0.009]' was listed as a change."""
    def check(values, digest="d"):
        c = probe_check(0.95)
        return {**c, "metrics": {**c["metrics"], "margin_change": sum(values) / len(values)},
                "per_example": {"margin_change": values}, "data_digest": digest}

    before = [0.01 * ((i * 7) % 5 - 2) for i in range(50)]
    noise = [v + 0.01 * ((i * 3) % 5 - 2) for i, v in enumerate(before)]
    moved = [v + 0.5 for v in before]
    old = build_report([record("m", results=[check(before)])], RUN)
    (audit,) = compare_reports(old, build_report([record("m", results=[check(noise)])], RUN))["models"][0]["audits"]
    assert audit["deltas"] == {} and "margin_change" in audit["within_noise"]
    (audit,) = compare_reports(old, build_report([record("m", results=[check(moved)])], RUN))["models"][0]["audits"]
    assert audit["deltas"] == {"margin_change": pytest.approx(0.5)}


def test_an_audit_whose_definition_changed_is_not_compared_as_the_same_audit():
    """Issue 26: after tokens= changed, the gate said 'known failure; flip_rate +0.383'. Another question
    under the same name is a changed audit: no deltas, and its failure is not a known one."""
    old = build_report([{**record("m", "failed", "assertion", [probe_check(0.5, False)]), "definition": "aaaa"}], RUN)
    new = build_report([{**record("m", "failed", "assertion", [probe_check(0.1, False)]), "definition": "bbbb"}], RUN)
    comparison = compare_reports(old, new)
    (audit,) = comparison["models"][0]["audits"]
    assert audit["change"].startswith("changed audit") and audit["deltas"] == {}
    assert comparison["known_failures"] == [] and gate_status(comparison, new) == 1
    same = build_report([{**record("m", "failed", "assertion", [probe_check(0.1, False)]), "definition": "aaaa"}], RUN)
    assert compare_reports(old, same)["known_failures"]  # the same definition: a known failure, as before


def test_report_render_and_diff_commands(tmp_path, capsys):
    from auditlens.cli import main

    report = build_report([record("m", results=[probe_check(0.97)])], RUN)
    write_report(report, tmp_path / "old")
    worse = build_report([record("m", "failed", "assertion", [probe_check(0.5, False)])], RUN)
    write_report(worse, tmp_path / "new")
    (tmp_path / "new" / "report.html").unlink()
    assert main(["report", "render", str(tmp_path / "new" / "report.json")]) == 0
    assert (tmp_path / "new" / "report.html").is_file()
    (tmp_path / "new" / "summary.md").unlink()
    assert main(["report", "render", str(tmp_path / "new")]) == 0  # a report directory renders in place
    assert (tmp_path / "new" / "summary.md").is_file() and not (tmp_path / "summary.md").exists()
    assert main(["report", "diff", str(tmp_path / "old" / "report.json"), str(tmp_path / "new" / "report.json"),
                 "--fail-on-regression"]) == 6
    assert "m: verdict learned -> cheated" in capsys.readouterr().out


@pytest.fixture
def repo(audit_repo):
    """A user's repository: probes/ with two concepts and one audit file."""
    audit_repo.makepyfile(test_audit="""
from auditlens import patch, probe

def test_marker_is_ignored(subject, marker_swapped):
    assert patch(subject, marker_swapped, at="layer:0").flip_rate <= 0.05

def test_count_is_represented(subject, more_a_than_b):
    assert probe(subject, more_a_than_b, at="layer:1").accuracy >= 0.9
""")
    return audit_repo


MODELS = ["--model", "fixture:count-learned", "--model", "fixture:count-cheated"]


def test_baseline_gate_fails_the_session_on_a_regression(repo):
    # a baseline where the cheated twin had passed everything
    repo.runpytest("--model", "fixture:count-learned", "--audit-report", "old")
    baseline = json.loads((repo.path / "old" / "report.json").read_text())
    baseline["models"][0]["id"] = "fixture:count-cheated"
    for audit in baseline["models"][0]["audits"]:
        audit["nodeid"] = audit["nodeid"].replace("count-learned", "count-cheated")
    (repo.path / "old" / "report.json").write_text(json.dumps(baseline))
    result = repo.runpytest("--model", "fixture:count-cheated", "--audit-report", "new",
                            "--audit-baseline", "old/report.json", "--audit-fail-on-regression")
    assert result.ret == 6  # the gate's own status: regressions
    result.stdout.fnmatch_lines(["*auditlens: against the baseline*", "fixture:count-cheated: verdict learned -> cheated",
                                 "*newly failing*", "regressions: *"])
    new = json.loads((repo.path / "new" / "report.json").read_text())
    assert new["comparison"]["regressions"] and "Against the baseline" in (repo.path / "new" / "summary.md").read_text()


def test_audits_failing_in_the_baseline_too_do_not_fail_the_gate(repo):
    repo.runpytest(*MODELS, "--audit-report", "old")  # the cheated twin fails two audits here already
    result = repo.runpytest(*MODELS, "--audit-report", "new", "--audit-baseline", "old/report.json",
                            "--audit-fail-on-regression")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*known failures (failing in the baseline too): 2", "regressions: 0"])
    new = json.loads((repo.path / "new" / "report.json").read_text())
    assert len(new["comparison"]["known_failures"]) == 2 and new["comparison"]["regressions"] == []


def test_without_the_gate_failing_audits_fail_the_session_as_usual(repo):
    repo.runpytest(*MODELS, "--audit-report", "old")
    assert repo.runpytest(*MODELS, "--audit-report", "new", "--audit-baseline", "old/report.json").ret == 1


def test_a_missing_baseline_is_a_usage_error(repo):
    result = repo.runpytest("--model", "fixture:count-learned", "--audit-baseline", "nowhere.json")
    assert result.ret == 4  # before any audit ran (it was found after all of them had)
    result.stderr.fnmatch_lines(["*--audit-baseline nowhere.json: no report at nowhere.json*"])
    assert "passed" not in result.stdout.str()


def test_xdist_report_equals_the_serial_one(repo):
    repo.runpytest(*MODELS, "--audit-report", "serial", "-p", "no:randomly")
    repo.runpytest(*MODELS, "--audit-report", "parallel", "-n", "2")
    serial = strip_timings(json.loads((repo.path / "serial" / "report.json").read_text()), forward_passes=True)
    parallel = strip_timings(json.loads((repo.path / "parallel" / "report.json").read_text()), forward_passes=True)
    assert sum(len(m["audits"]) for m in parallel["models"]) == 4  # every audit exactly once
    assert parallel == serial


def test_a_threshold_inside_the_interval_is_marked_uncertain(learned, concepts):
    from auditlens import probe

    result = probe(learned, concepts["more_a_than_b"], at="layer:0")
    low, high = result.control_accuracy_ci.low, result.control_accuracy_ci.high  # a threshold inside it:
    result.record_threshold("control_accuracy", "<=", (low + high) / 2, True)
    result.record_threshold("accuracy", ">=", 0.5, True)
    shaky, firm = result.thresholds[-2:]
    assert shaky["uncertain"] and not firm["uncertain"]
    report = build_report([record("m", results=[result.to_dict()])], RUN)
    assert report["models"][0]["audits"][0]["uncertain"] and report["models"][0]["counts"]["uncertain"] == 1
    assert "Uncertain audits" in render_markdown(report)


def test_a_worker_that_dies_leaves_a_report_with_the_lost_audit_marked(repo):
    repo.makepyfile(test_crash="""
import os

def test_dies(subject):
    if subject.id == "fixture:count-cheated":
        os._exit(1)
""")
    repo.runpytest(*MODELS, "--audit-report", "out", "-n", "2")
    report = json.loads((repo.path / "out" / "report.json").read_text())
    audits = {a["nodeid"]: a for m in report["models"] for a in m["audits"]}
    assert audits["test_crash.py::test_dies[fixture:count-cheated]"]["outcome"] == "lost"
    assert audits["test_crash.py::test_dies[fixture:count-learned]"]["outcome"] == "passed"
    finished = [n for n, a in audits.items() if n.startswith("test_audit.py")]
    assert len(finished) == 4  # every audit that finished is there
    cheated = next(m for m in report["models"] if m["id"] == "fixture:count-cheated")
    assert cheated["verdict"] == "cheated"  # its mechanistic failures still stand


def test_forward_passes_executed_and_their_lower_bound_per_model(audit_repo):
    # given three audits on the same concept inputs: two read other sites, one reads under an ablation
    audit_repo.makepyfile(test_shared="""
from auditlens import ablate, probe

def test_a_probe_at_the_last_block(subject, more_a_than_b):
    probe(subject, more_a_than_b, at="layer:1")

def test_a_probe_at_the_first_block(subject, more_a_than_b):
    probe(subject, more_a_than_b, at="layer:0", position="mean")

def test_an_ablation(subject, more_a_than_b):
    ablate(subject, more_a_than_b, at="layer:0", kind="zero")
""")
    audit_repo.runpytest("--model", "fixture:count-learned", "--audit-report", "out", "-p", "no:randomly")
    report = json.loads((audit_repo.path / "out" / "report.json").read_text())
    (model,) = report["models"]
    first, second, ablation = sorted(model["audits"], key=lambda a: a["line"])
    # then the second probe rides on the first one's pass; the ablation needs its own, under the zero
    assert first["forward_passes"] == first["forward_passes_lower_bound"] > 0
    assert second["forward_passes"] == 0 and second["forward_passes_lower_bound"] == first["forward_passes"]
    assert ablation["forward_passes"] == ablation["forward_passes_lower_bound"] - first["forward_passes"] > 0
    assert model["forward_passes"] == model["forward_passes_lower_bound"] == first["forward_passes"] * 2
    bound = f"{model['forward_passes']} / {model['forward_passes_lower_bound']}"
    assert f"| {bound} |" in (audit_repo.path / "out" / "summary.md").read_text()
    assert f">{bound}<" in (audit_repo.path / "out" / "report.html").read_text()


def test_with_xdist_each_model_is_loaded_on_one_worker_only(audit_repo):
    # given four audits per model, recording which worker ran them on which loaded object
    audit_repo.makepyfile(test_where="""
import os

from auditlens import probe

def _log(subject):
    with open("where.log", "a") as log:
        log.write(f"{os.environ.get('PYTEST_XDIST_WORKER')} {subject.id} {id(subject)}\\n")

def test_a(subject, more_a_than_b):
    _log(subject)
    probe(subject, more_a_than_b, at="layer:1")

def test_b(subject):
    _log(subject)

def test_c(subject):
    _log(subject)

def test_d(subject):
    _log(subject)
""")
    audit_repo.makeconftest(DIST_LOG)
    # when run on two workers with no --dist: the plugin picks loadgroup, and its scheduler
    result = audit_repo.runpytest(*MODELS, "--audit-report", "out", "-n", "2")
    result.assert_outcomes(passed=8)
    assert (audit_repo.path / "dist.log").read_text() == "loadgroup"
    lines = [line.split() for line in (audit_repo.path / "where.log").read_text().splitlines()]
    places = {model: {(worker, obj) for worker, m, obj in lines if m == model} for _, model, _ in lines}
    assert all(len(where) == 1 for where in places.values()), places  # one worker, one load per model
    # and the report's node ids carry no xdist group suffix
    report = json.loads((audit_repo.path / "out" / "report.json").read_text())
    assert all(a["nodeid"].endswith("]") for m in report["models"] for a in m["audits"])


DIST_LOG = """
def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        with open("dist.log", "w") as log:
            log.write(session.config.getvalue("dist"))
"""


def test_grouping_by_model_can_be_turned_off(audit_repo):
    audit_repo.makeini("[pytest]\naudit_group_by_model = false\n")
    audit_repo.makeconftest(DIST_LOG)
    audit_repo.makepyfile(test_a="def test_a(subject):\n    pass\n")
    audit_repo.runpytest("--model", "fixture:count-learned", "-n", "2").assert_outcomes(passed=1)
    assert (audit_repo.path / "dist.log").read_text() == "load"  # pytest-xdist's own default


def test_the_scheduler_groups_audits_by_their_model():
    from auditlens.plugin.scheduling import ModelGroupScheduling

    class Config:
        def getvalue(self, name):
            return {"tx": ["2*popen"]}.get(name)

    scheduler = ModelGroupScheduling(Config(), models=["fixture:count-learned", "fixture:count"])
    scope = scheduler._split_scope
    assert scope("a.py::test_x[fixture:count-learned]") == scope("b.yaml::probe it[fixture:count-learned]")
    assert scope("a.py::test_x[fixture:count]") != scope("a.py::test_y[fixture:count-learned]")
    assert scope("a.py::test_x[fixture:count-learned-0.5]") == scope("a.py::test_y[fixture:count-learned]")
    assert scope("a.py::test_plain") == "a.py::test_plain"  # not an audit: scheduled on its own
    assert scope("a.py::test_z[1]@mine") == "mine"  # an xdist_group tag still wins


def test_the_count_audits_run_no_more_forward_passes_than_they_need(pytester):
    # given this repo's count audits, Python and YAML, with every concept they use
    import shutil
    from pathlib import Path

    root = Path(__file__).parent.parent
    shutil.copytree(root / "probes", pytester.path / "probes")
    for name in ("test_count.py", "count.audit.yaml"):
        shutil.copy(root / "audits" / name, pytester.path / name)
    # when they run against the cheated twin (failures are its expected findings)
    pytester.runpytest("--model", "fixture:count-cheated", "--audit-report", "out", "-p", "no:randomly")
    (model,) = json.loads((pytester.path / "out" / "report.json").read_text())["models"]
    # then every pass they ran was one they needed (audits sharing inputs shared the pass), but those the
    # read-ahead keeps nothing for by design: a read at position "all" ([n, t, d], a patch's source) after an
    # earlier pass over the same inputs (DAS's capture of the same sources, at the last token)
    assert len(model["audits"]) >= 6  # the Python and the YAML audits
    above = model["forward_passes"] - model["forward_passes_lower_bound"]
    assert model["forward_passes_lower_bound"] > 0 and above >= 0
    reasons = model.get("passes_above_bound") or []
    assert all("(all)" in why for why in reasons), reasons
    assert above == sum(int(why.rsplit("(", 1)[1].split()[0]) for why in reasons)


def test_head_attribution_is_drawn_as_a_layer_by_head_map_and_circuit_members_as_a_table(learned, concepts):
    """Issue 18, item 5: per-head values reach the report as data, a heat map and a table of members."""
    from auditlens import attribute, minimality
    from auditlens.report.html import figures_of, render_html

    attribution = attribute(learned, concepts["count_swapped"], "head:*.*", validate=True).to_dict()
    members = minimality(learned, concepts["count_in_distribution"], ["head:0.1", "head:1.2", "mlp:0"]).to_dict()
    assert [row["component"] for row in attribution["component_values"]][:3] == ["head:0.0", "head:0.1", "head:0.2"]
    assert {"estimate", "actual"} <= set(attribution["component_values"][0])
    report = build_report([record("m", results=[attribution, members])], RUN)
    figures, _ = figures_of(report)
    nodeid = report["models"][0]["audits"][0]["nodeid"]
    assert (("m", nodeid, (0, "heads")) in figures) and (("m", nodeid, (1, "heads")) in figures)  # two heads: a map
    page = render_html(report)
    assert "attribution per head (layer by head)" not in page and "attribute per head (layer by head)" in page
    member_rows = page.split('<table class="members">')[2].split("</table>")[0]
    assert member_rows.count("<tr>") == 4 and "faithfulness drop" in member_rows and "(weakest)" in member_rows


def test_a_loop_of_ablations_over_heads_is_one_layer_by_head_map():
    from auditlens.report.head_map import loop_map

    checks = [{"check": "ablate", "site": f"head:{layer}.{head}", "metrics": {"accuracy_drop": 0.1 * head},
               "thresholds": [{"metric": "accuracy_drop", "op": "<=", "value": 0.15, "passed": head < 2}]}
              for layer in range(2) for head in range(4)]
    assert loop_map(checks, "accuracy_drop").startswith("data:image/png;base64,")
    assert loop_map([*checks[:3], {**checks[3], "site": "layer:1"}], "accuracy_drop") is None  # not every check at a head


def test_a_repository_without_a_commit_has_no_commit(tmp_path, monkeypatch):
    """Issue 26: 'commit HEAD' was printed for a repository with no commits (rev-parse echoes HEAD)."""
    import subprocess

    from auditlens.report.model import _git_commit

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    assert _git_commit() is None
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "add", "f"], check=True)
    subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x"], check=True)
    assert len(_git_commit()) == 40


def test_a_bound_in_the_markdown_summary_reads_as_itself():
    """Issue 26: summary.md showed '&lt;=' as raw text; a tag from a name is still never kept."""
    check = {**probe_check(0.5, False), "thresholds": [{"metric": "accuracy", "op": "<=", "value": 0.05,
                                                        "passed": False}]}
    report = build_report([record("m", "failed", "assertion", [check])], RUN)
    report["models"][0]["reason"] += " <img src=x>"  # a tag in a table cell is still escaped
    text = render_markdown(report)
    assert "&lt;=" not in text and "≤ 0.05" in text
    assert "<img" not in text and "&lt;img src=x>" in text
