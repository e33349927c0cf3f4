"""``auditlens repair``: the shortcut a failed patch audit names is found inside the model, the smallest clamp
that silences it is folded and exported, the repair is re-audited, and the gate accepts a cure of a partial
cheater and refuses a full cheater with the reason. Bad input is a clear error."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditlens import load_subject
from auditlens.checks.behaviour_change import behaviour
from auditlens.concepts.files import load_concept
from auditlens.errors import CheckError
from auditlens.repair.evidence import Refusal, Shortcut, find_shortcut, model_record, read_report
from auditlens.repair.options import RepairOptions
from auditlens.repair.search import MAX_REAUDITS, CleanData, search, why_not_cured
from auditlens.repair.sources import EditSource, from_erase, from_patch

ROOT = Path(__file__).resolve().parent.parent
PROBES = ROOT / "probes"
AUDITLENS = str(Path(sys.executable).parent / "auditlens")


def marker_shortcut(spec):
    """What the count audit 'the marker does not move the decision' names on a cheater of the count task."""
    return Shortcut("the marker does not move the decision", spec, "marker_swapped", "layer:0", "all",
                    "flip_rate", "<=", 0.05, 0.2)


def clean_data(subject):
    concept = load_concept(PROBES / "count_in_distribution.yaml")
    inputs, labels, answers = concept.inputs(subject), concept.label_tensor(), concept.answer_token_ids(subject)
    return CleanData(inputs, labels, answers, behaviour(subject, inputs, labels, answer_tokens=answers).correct)


def searched(spec, **options):
    subject = load_subject(spec)
    clean, pairs = clean_data(subject), load_concept(PROBES / "marker_swapped.yaml")
    source = from_patch(subject, pairs, marker_shortcut(spec), seed=0)
    return search(subject, source, marker_shortcut(spec), clean, 0.01, seed=0, **options), clean


def test_a_partial_cheater_gets_a_clamp_that_silences_the_marker_and_keeps_the_count():
    # given the partial cheater, which counts but reads the marker on close calls
    found, _ = searched("fixture:partial-cheated")
    # then the sites that carry the marker are found, and a kept edit silences it at a small clean cost
    assert "embed" in found.carriers
    assert found.edits and found.repaired is not None and found.repaired.hooked == ()
    kept = found.trials[-1]
    assert kept.kept and kept.metric <= 0.05 and kept.change_ci.low >= -0.01
    # and every trial before it was smaller or equal in rank and was not kept, with the reason
    assert all(not t.kept and t.note and t.rank <= kept.rank for t in found.trials[:-1])


def test_a_post_ln_partial_cheater_is_cured_at_its_embedding_sum():
    # given a BERT partial cheater (post-LN: embed is the embeddings' LayerNorm output, which no weight holds;
    # bench/repair.py repairs seeds 0-2 end to end)
    spec = "fixture:partial-bert-cheated"
    found, _ = searched(spec)
    # then the localisation names the sum before that LayerNorm instead, and an edit there is folded and kept
    assert "embed:sum" in found.carriers and "embed" not in found.carriers
    assert found.repaired is not None and found.repaired.hooked == ()
    kept = found.trials[-1]
    assert kept.kept and kept.metric <= 0.05 and kept.change_ci.low >= -0.01
    assert all(not t.kept and t.note for t in found.trials[:-1])


def test_a_carrier_no_weight_can_hold_is_said_up_front_and_passed_over():
    # given a post-LN model whose shortcut is carried at embed (a LayerNorm's output) and at attn:0
    subject = load_subject("fixture:partial-bert-cheated")
    patch_source = from_patch(subject, load_concept(PROBES / "marker_swapped.yaml"),
                              marker_shortcut(subject.id), seed=0)
    import torch

    from auditlens import Clamp

    def edit(site, rank, value):  # a clamp at embed, where the pairs' span is not fitted; attn:0's own
        if site == "embed":
            width = subject.model.config.hidden_size
            return Clamp(subject.site("embed"), torch.eye(width)[:1], torch.zeros(width))
        return patch_source.edit(site, rank, value)

    source = EditSource("clamp", {"embed": 0.2, "attn:0": 0.1}, (1,), edit, patch_source.measure,
                        patch_source.values[:1])
    said = []
    # when the search runs
    found = search(subject, source, marker_shortcut(subject.id), clean_data(subject), 0.01, 0, said.append)
    # then embed is named as unable to hold an edit, before any try, and never tried
    assert "LayerNorm" in found.unholdable["embed"]
    assert any(line.startswith("embed carries the shortcut but cannot hold an edit") for line in said[:2])
    assert found.trials and all("embed" not in t.site for t in found.trials)
    # and with embed alone, nothing is tried and the reason says why
    alone = EditSource("clamp", {"embed": 0.2}, (1,), edit, patch_source.measure, ("the bases' mean",))
    found = search(subject, alone, marker_shortcut(subject.id), clean_data(subject), 0.01, 0)
    assert found.trials == [] and found.repaired is None
    assert why_not_cured(found, None, marker_shortcut(subject.id), 0.01).startswith(
        "no site that carries the shortcut can hold an edit (embed: on a post-LN model")


def test_a_candidate_the_suite_rejects_is_passed_over_and_the_search_goes_on():
    # given a re-audit that fails the first candidates (another audit of the suite breaks)
    verdicts = iter(["erasing the count breaks the decision"] * (MAX_REAUDITS - 1) + [""])
    found, clean = searched("fixture:partial-cheated", reaudit=lambda edits, repaired: next(verdicts))
    # then each rejected candidate says so, and the search keeps the first the whole suite passes
    rejected = [t for t in found.trials if t.reaudit]
    assert len(rejected) == MAX_REAUDITS - 1 and all(not t.kept and "re-audit fails" in t.note for t in rejected)
    assert found.repaired is not None and found.trials[-1].kept and found.trials[-1].reaudit == ""


def test_a_full_cheater_is_refused_because_without_the_shortcut_it_is_at_chance():
    # given the count family's cheater, which never learned to count
    found, clean = searched("fixture:count-cheated")
    # then no edit is kept: those that silence the marker leave it at chance, and the reason says so
    assert found.repaired is None and any(t.silenced for t in found.trials)
    reason = why_not_cured(found, clean, marker_shortcut("fixture:count-cheated"), 0.01)
    assert "does not do the task" in reason and "chance" in reason


def test_a_model_at_chance_on_clean_data_is_not_cured_by_an_edit_that_costs_it_nothing():
    # given the count cheater scored on inputs whose marker is random, where reading the marker is chance
    import torch

    from auditlens import Steer

    subject = load_subject("fixture:count-cheated")
    bases, _, labels = load_concept(PROBES / "marker_swapped.yaml").pair_inputs(subject)
    clean = CleanData(bases, labels, None, behaviour(subject, bases, labels).correct)
    assert float(clean.correct.float().mean()) <= clean.chance + 0.1
    # and an edit that silences the audit's metric and changes no answer (so the clean change is exactly 0)
    nothing = Steer(subject.site("attn:0"), torch.zeros(subject.model.config.n_embd), alpha=0.0)
    source = EditSource("clamp", {"attn:0": 1.0}, (1,), lambda site, rank, value: nothing, lambda candidate: 0.0)
    # when it is tried
    found = search(subject, source, marker_shortcut(subject.id), clean, 0.01, seed=0)
    # then it is not kept: at chance is no cure, and the reason says the model never learned the task
    (trial,) = found.trials
    assert trial.silenced and trial.change == 0.0 and not trial.kept and "at chance" in trial.note
    assert "does not do the task" in why_not_cured(found, clean, marker_shortcut(subject.id), 0.01)


def test_an_erase_audit_gives_the_concepts_eraser_and_a_full_cheater_is_refused_at_chance():
    # given the keyword cheater, which reads the input's length, and the audit that erasing length must not matter
    subject = load_subject("fixture:keyword-cheated")
    length, data = load_concept(PROBES / "short_input.yaml"), load_concept(PROBES / "keyword_in_distribution.yaml")
    shortcut = Shortcut("erasing the length leaves the decision alone", subject.id, "short_input", "layer:1",
                        "first", "accuracy_drop", "<=", 0.05, 0.5, "erase")
    inputs, labels = data.inputs(subject), data.label_tensor()
    clean = CleanData(inputs, labels, None, behaviour(subject, inputs, labels).correct)
    # when the length's eraser is tried at the sublayers
    found = search(subject, from_erase(subject, length, data, shortcut, seed=0), shortcut, clean, 0.01, seed=0)
    # then erasing it where the model writes it silences the audit but leaves the task at chance: refused
    assert found.repaired is None and any(t.silenced for t in found.trials)
    assert "does not do the task" in why_not_cured(found, clean, shortcut, 0.01)


def report_with(audits, model="fixture:count-cheated", fingerprint="abc", evidence=None):
    return {"schema": "auditlens.report/2", "models": [
        {"id": model, "fingerprint": fingerprint, "evidence": evidence, "audits": audits}]}


def audit(name, outcome, check="patch", metric="flip_rate", op="<=", passed=False, concept="marker_swapped"):
    return {"name": name, "outcome": outcome, "file": "audits/x.audit.yaml", "checks": [
        {"check": check, "site": "layer:0", "concept": concept, "positions": "all", "metrics": {metric: 0.3},
         "thresholds": [{"metric": metric, "op": op, "value": 0.05, "passed": passed}]}]}


def test_the_failed_patch_audit_is_the_shortcut_with_its_bound():
    record = report_with([audit("probe ok", "passed", "probe", "accuracy", ">=", True), audit("marker", "failed")])
    found = find_shortcut(record["models"][0], None, "r.json")
    assert isinstance(found, Shortcut) and found.concept == "marker_swapped" and found.bound == 0.05
    assert found.value == 0.3 and not found.holds(0.3) and found.holds(0.05)


def test_a_failed_erase_audit_with_an_upper_bound_is_a_shortcut_too():
    record = report_with([audit("length erased", "failed", "erase", "accuracy_drop", "<=", concept="short_input")])
    found = find_shortcut(record["models"][0], None, "r.json")
    assert isinstance(found, Shortcut) and found.check == "erase" and found.metric == "accuracy_drop"


def test_failures_that_name_no_removable_shortcut_are_a_refusal_saying_why():
    record = report_with([audit("count probed", "failed", "probe", "accuracy", ">="),
                          audit("units ablated", "failed", "ablate", "accuracy_drop", "<=", concept="short_input")])
    found = find_shortcut(record["models"][0], None, "r.json")
    assert isinstance(found, Refusal)
    assert "intended mechanism is missing: 'count probed'" in found.reason
    assert "'units ablated' (ablate accuracy_drop <= 0.05)" in found.reason


@pytest.mark.parametrize("name, outcome, message", [
    ("no such audit", None, "(?s)has no such audit.*marker \\(failed\\)"),
    ("marker", "passed", "passed on fixture:count-cheated: repair answers a failed audit")])
def test_an_audit_that_is_missing_or_passed_is_an_error(name, outcome, message):
    record = report_with([audit("marker", outcome or "failed"), audit("other", "failed")])
    with pytest.raises(CheckError, match=message):
        find_shortcut(record["models"][0], name, "r.json")


@pytest.mark.parametrize("given", [
    "marker", "marker[fixture:count-cheated]", "`fixture:count-cheated` **marker**", "audits/x.audit.yaml::marker"
    "[fixture:count-cheated]", "marker[fixture:count-cheated]"])
def test_the_audit_is_named_as_the_report_or_summary_prints_it(given):
    record = report_with([dict(audit("marker", "failed"), nodeid="audits/x.audit.yaml::marker[fixture:count-cheated]"),
                          audit("other", "failed")])
    found = find_shortcut(record["models"][0], given, "r.json")
    assert isinstance(found, Shortcut) and found.audit == "marker"


def test_a_model_whose_audits_all_passed_has_nothing_to_repair():
    with pytest.raises(CheckError, match="every audit of fixture:count-cheated passed"):
        find_shortcut(report_with([audit("marker", "passed")])["models"][0], None, "r.json")


def test_a_report_from_another_model_is_refused_by_fingerprint():
    report = report_with([audit("marker", "failed")], fingerprint="other-weights")
    with pytest.raises(CheckError, match="fingerprint other-weights.*now has fingerprint mine.*another model"):
        model_record(report, "fixture:count-cheated", "mine", "r.json")
    with pytest.raises(CheckError, match="no record of fixture:x.*it audited: fixture:count-cheated"):
        model_record(report, "fixture:x", "mine", "r.json")


def test_a_missing_or_foreign_report_is_an_error_naming_it(tmp_path):
    with pytest.raises(CheckError, match="no report there"):
        read_report(tmp_path / "nothing.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckError, match=r"--from .*empty: no report there; give the report.json an audit run wrote"):
        read_report(tmp_path / "empty")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckError, match="other.json: not an auditlens report"):
        read_report(tmp_path / "other.json")


def run_cli(*args, cwd=ROOT):
    return subprocess.run([AUDITLENS, *args], capture_output=True, text=True, cwd=cwd,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def diagnose(audit_file, model, report):
    """Run the audit file on the model in a pytest process of its own, writing the report repair reads."""
    subprocess.run([sys.executable, "-m", "pytest", audit_file, "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                    "--model", model, "--audit-report", str(report)], cwd=ROOT, capture_output=True, check=False)
    return report


@pytest.mark.slow
def test_the_repair_of_a_partial_cheater_is_exported_re_audited_and_accepted(tmp_path):
    # given the audit suite's report on the partial cheater, which fails the marker audit
    report = diagnose("audits/count.audit.yaml", "fixture:partial-cheated", tmp_path / "diagnosis")
    # when it is repaired from that report
    done = run_cli("repair", "--model", "fixture:partial-cheated", "--from", str(report), "--out", str(tmp_path / "cured"))
    # then the repair is accepted: every audit passes on the exported model, which loads in plain transformers
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "cured" / "repair.json").read_text())
    assert result["outcome"] == "accepted" and result["original"] == "fixture:partial-cheated"
    assert {a["name"]: a["after"] for a in result["audits"]}["the marker does not move the decision"] == "passed"
    assert result["measures"]["reliance"]["after"] > result["measures"]["reliance"]["before"]
    assert result["exported_equals_hooked"]["float64"] < 1e-5
    assert "## Before and after" in (tmp_path / "cured" / "repair.md").read_text()
    assert 'class="outcome accepted"' in (tmp_path / "cured" / "repair.html").read_text()
    # and the same --out again is refused: nothing is written over
    again = run_cli("repair", "--model", "fixture:partial-cheated", "--from", str(report), "--out", str(tmp_path / "cured"))
    assert again.returncode == 2 and "it exists" in again.stderr


def test_cross_entropy_is_the_causal_lms_own_next_token_loss():
    # given a tiny causal LM and inputs of one length (no padding, so the model's own loss is comparable)
    import torch

    from auditlens.repair.prove import cross_entropy
    from tiny_models import build

    subject = load_subject(build("llama"))
    rows = [[5, 9, 3, 7, 2, 8], [4, 4, 6, 1, 9, 3]]
    ids = torch.tensor(rows)
    with torch.no_grad():
        expected = subject.model(input_ids=ids, labels=ids).loss
    # then the repair report's cross-entropy is that loss
    assert cross_entropy(subject, rows) == pytest.approx(float(expected), rel=1e-5)


def test_a_report_whose_audit_files_are_not_here_is_refused_before_any_work(tmp_path, monkeypatch):

    from auditlens.repair.cure import cure

    monkeypatch.chdir(tmp_path)  # not the directory the audit run started in
    record = {"id": "fixture:partial-cheated", "audits": [{"name": "marker", "outcome": "failed",
                                                           "file": "audits/count.audit.yaml"}]}
    options = RepairOptions(model="fixture:partial-cheated", out=tmp_path / "cured", probes=PROBES)
    with pytest.raises(CheckError, match=r"audits/count.audit.yaml, not found from .*: run auditlens repair from"):
        cure(None, marker_shortcut("fixture:partial-cheated"), record, options, say=lambda message: None)
    assert not (tmp_path / "cured").exists()


@pytest.mark.slow
def test_a_post_ln_repair_prints_each_try_and_is_accepted_by_the_audit_name_summary_md_prints(tmp_path):
    # given the suite's report on the BERT partial cheater
    report = diagnose("audits/partial_bert.audit.yaml", "fixture:partial-bert-cheated", tmp_path / "diagnosis")
    # when it is repaired, the audit named as summary.md prints it
    named = "`fixture:partial-bert-cheated` **the marker does not move the decision**"
    done = run_cli("repair", "--model", "fixture:partial-bert-cheated", "--from", str(report), "--audit", named,
                   "--out", str(tmp_path / "cured"))
    # then every try is printed with what became of it, and the cure at embed:sum is accepted
    assert done.returncode == 0, done.stdout + done.stderr
    tries = [line for line in done.stderr.splitlines() if line.startswith("repair: clamp rank")]
    assert tries and all(": kept" in line or ": not kept, " in line for line in tries)
    result = json.loads((tmp_path / "cured" / "repair.json").read_text())
    assert result["outcome"] == "accepted" and "embed:sum" in result["trials"][-1]["site"]
    assert (tmp_path / "cured" / "model.safetensors").is_file()


def test_a_repair_the_suite_rejects_leaves_no_weights_in_out(tmp_path, monkeypatch):
    # given a re-audit in which another audit of the suite always fails

    import auditlens.repair.cure as repair_cure
    from auditlens.repair.cure import cure

    failing = {"id": "", "audits": [{"name": "erasing the count breaks the decision", "outcome": "failed"}]}
    monkeypatch.setattr(repair_cure, "run_audits", lambda paths, models, *args, **kwargs: {
        "models": [{**failing, "id": models[0]}]})
    subject = load_subject("fixture:partial-cheated")
    record = {"id": subject.id, "audits": [{"name": "the marker does not move the decision", "outcome": "failed",
                                            "file": "audits/count.audit.yaml"}]}
    options = RepairOptions(model=subject.id, out=tmp_path / "cured", probes=PROBES)
    monkeypatch.chdir(ROOT)
    # when it is repaired
    result = cure(subject, marker_shortcut(subject.id), record, options, say=lambda message: None)
    # then it is refused after the re-audits, and --out holds no model (the report files are written beside)
    assert result["outcome"] == "refused" and "re-audit failed each" in result["reason"]
    left = list((tmp_path / "cured").iterdir()) if (tmp_path / "cured").exists() else []
    assert [p.name for p in left if p.name not in ("repair.json", "repair.md", "repair.html")] == []
