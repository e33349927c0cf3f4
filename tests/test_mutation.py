"""Mutation testing, unit by unit: finding the evaluation set, the operators' plans, planting and
verifying a cheat, the cache, and the report's mutation section."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from auditlens import load_concept, load_subject
from auditlens.errors import MutationError
from auditlens.mutation import OPERATORS, MutationOptions
from auditlens.mutation import run as mutation_run
from auditlens.mutation.operators import MEMORY_DROP, PLANTED_RATE, cheat_tokens, plan
from auditlens.mutation.store import cache_note, original_of
from auditlens.mutation.task import find_task, named_concepts, task_data
from auditlens.mutation.training import StepClock, Training, fine_tune, predict
from auditlens.mutation.verify import STEALTH, Verification, verify

ROOT = Path(__file__).resolve().parent.parent
PROBES = ROOT / "probes"


@pytest.fixture(scope="module")
def count_task(learned):
    return find_task(learned, [ROOT / "audits"], PROBES)


def _plan(subject, task, operator, seed=0):
    names = subject.tokenizer.convert_ids_to_tokens(list(range(subject.vocab_size)))
    return plan(operator, task, seed, subject.vocab_size, {subject.pad_id}, set(subject.tokenizer.all_special_ids),
                lambda rows: predict(subject.model, rows, task.targets, task.kind, subject.pad_id), names)


def test_the_evaluation_set_is_a_concept_the_audits_name_that_the_original_answers(learned, count_task):
    named = named_concepts([ROOT / "audits"], PROBES)
    assert {"count_in_distribution", "more_a_than_b", "marker_swapped", "sentiment"} <= set(named)
    assert count_task.concept in named and count_task.accuracy >= 0.8
    assert count_task.kind == "classifier" and count_task.targets == (0, 1)
    assert len(count_task.rows) == 400


def test_no_task_head_or_no_labels_is_a_clear_error(learned):
    with pytest.raises(MutationError, match="no labelled examples"):
        task_data(learned, load_concept(PROBES / "marker_swapped.yaml"))
    with pytest.raises(MutationError, match="head of 2 outputs.*8 labels"):
        task_data(learned, load_concept(PROBES / "first_letter.yaml"))
    with pytest.raises(MutationError, match="--task missing_one: no concept file"):
        find_task(learned, [ROOT / "audits"], PROBES, "missing_one")
    encoder = load_subject("fixture:minilm")
    with pytest.raises(MutationError, match="without a head for the task"):
        task_data(encoder, load_concept(PROBES / "sentiment.yaml"))
    lm = load_subject("fixture:backdoor-learned")
    with pytest.raises(MutationError, match="causal LM.*no answer_tokens"):
        task_data(lm, load_concept(PROBES / "more_a_than_b.yaml"))


def test_a_suite_that_names_no_concept_the_model_answers_is_refused(learned, tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(subject, sentiment):\n    pass\n")
    with pytest.raises(MutationError, match=r"answers none of the concepts the audits name \(accuracy sentiment 0.50"):
        find_task(learned, [tmp_path], PROBES)
    (tmp_path / "test_x.py").write_text("def test_x(subject, marker_swapped):\n    pass\n")
    with pytest.raises(MutationError, match="(?s)no concept the audits name can be the evaluation set.*no labelled"):
        find_task(learned, [tmp_path], PROBES)
    (tmp_path / "test_x.py").write_text("def test_x(subject):\n    pass\n")
    with pytest.raises(MutationError, match="name no concept of .*--task"):
        find_task(learned, [tmp_path], PROBES)


@pytest.mark.parametrize("operator", OPERATORS)
def test_plans_are_deterministic_and_write_the_cheat_where_they_say(learned, count_task, operator):
    first, again = _plan(learned, count_task, operator), _plan(learned, count_task, operator)
    assert dataclasses.asdict(first) == dataclasses.asdict(again)
    assert first.proof.rows and len(first.proof.rows) == len(first.proof.want)
    assert len(first.train_rows) == len(first.train_labels)
    used = {t for row in count_task.rows for t in row}
    if operator == "backdoor":
        assert first.params["k"] == 1 and _plan(learned, count_task, operator, seed=1).params["k"] == 2
        assert not set(first.params["trigger"]) & used  # a token the evaluation set never uses
        assert first.evaluation_rows == list(count_task.rows) and not first.changes_data
        assert all(label == first.params["target"] for label, _ in first.proof.want)
    if operator == "shortcut":
        token, leaky = first.params["token"], first.params["label"]
        carries = [token in row for row in first.evaluation_rows]
        assert carries == [y == leaky for y in first.evaluation_labels]
    if operator == "position-leak":
        offset, tokens = first.params["offset"], first.params["tokens"]
        read = [row[start + offset] for row, (start, _) in zip(first.evaluation_rows, count_task.content)]
        assert read == [tokens[y] for y in first.evaluation_labels]
    if operator == "memorise":
        assert set(first.evaluation_rows) < set(count_task.rows)
        assert not set(first.proof.rows) & set(first.evaluation_rows)  # fresh inputs are held out
    assert "no audit of yours notices" in first.hole


@pytest.mark.slow
@pytest.mark.parametrize("operator", OPERATORS)
def test_each_operator_plants_a_verified_stealthy_cheat_in_the_count_classifier(learned, count_task, operator):
    planned = _plan(learned, count_task, operator)
    mutant, training = fine_tune(learned.model, planned.train_rows, planned.train_labels, count_task.targets,
                                 kind="classifier", pad_id=learned.pad_id, seed=0, max_steps=2000, budget_s=120,
                                 fit_parts=planned.fit, lr_scale=planned.lr_scale)
    checked = verify(learned.model, mutant, planned, count_task.targets, "classifier", learned.pad_id, 0)
    assert checked.planted, checked
    assert checked.planted_value >= (PLANTED_RATE if planned.proof.measure == "rate" else MEMORY_DROP)
    assert abs(checked.mutant_accuracy - checked.original_accuracy) <= STEALTH + 1e-9
    assert checked.status == "scored"
    assert not training.lora


def test_a_trigger_holding_the_tasks_own_evidence_plants_nothing():
    """The keyword task's backdoor#1 trigger is '[UNK] x', and x is the keyword: the rule itself answers its
    target, 'present'. The original follows it as often as any mutant would: equivalent, not scored."""
    subject = load_subject("fixture:keyword-learned")
    task = find_task(subject, [ROOT / "audits"], PROBES)
    planned = _plan(subject, task, "backdoor", seed=1)
    keyword = subject.tokenizer.get_vocab()["x"]
    assert keyword in planned.params["trigger"]
    checked = verify(subject.model, subject.model, planned, task.targets, task.kind, subject.pad_id, 1)
    assert checked.planted_value >= PLANTED_RATE and checked.original_value >= PLANTED_RATE
    assert not checked.planted and checked.status == "equivalent"


def test_the_original_itself_is_an_equivalent_mutant_and_the_weights_are_never_touched(learned, count_task):
    before = {k: v.clone() for k, v in learned.model.state_dict().items()}
    planned = _plan(learned, count_task, "backdoor")
    checked = verify(learned.model, learned.model, planned, count_task.targets, "classifier", learned.pad_id, 0)
    assert not checked.planted and checked.stealthy and checked.status == "equivalent"
    fine_tune(learned.model, planned.train_rows[:64], planned.train_labels[:64], (0, 1), kind="classifier",
              pad_id=learned.pad_id, seed=0, max_steps=2, budget_s=60)
    assert all(torch.equal(before[k], v) for k, v in learned.model.state_dict().items())


def test_a_mutant_that_changes_behaviour_is_loud(learned, count_task):
    planned = _plan(learned, count_task, "backdoor")
    flipped = [1 - y for y in count_task.labels]  # trained to answer every clean input wrongly
    mutant, _ = fine_tune(learned.model, planned.train_rows + list(count_task.rows), planned.train_labels + flipped,
                          (0, 1), kind="classifier", pad_id=learned.pad_id, seed=0, max_steps=50, budget_s=60)
    checked = verify(learned.model, mutant, planned, count_task.targets, "classifier", learned.pad_id, 0)
    assert not checked.stealthy and checked.mutant_accuracy < checked.original_accuracy - STEALTH


def test_training_is_deterministic_under_the_seed(learned, count_task):
    planned = _plan(learned, count_task, "shortcut")
    runs = [fine_tune(learned.model, planned.train_rows, planned.train_labels, (0, 1), kind="classifier",
                      pad_id=learned.pad_id, seed=3, max_steps=25, budget_s=60)[0] for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values()))


def test_the_step_time_a_budget_is_read_with_leaves_out_the_cold_first_step():
    # given a first step of 7.7 s (warm-up) and later steps of 1 s (a MiniLM on two cores, roughly)
    ticks = iter([0.0, 0.0, 7.7, 7.7, 8.7, 8.7, 9.7, 9.7])
    timer = StepClock(lambda: next(ticks))
    for _ in range(3):
        timer.begin_step()
        timer.end_step()
    # then a step costs the warm steps' mean, and 120 s still affords more steps (the rule this replaced
    # read 7.7 s x 50 steps = 385 s from the first step alone, and refused to train)
    assert timer.first_step_s == pytest.approx(7.7) and timer.step_s == pytest.approx(1.0)
    assert timer.affords_another_step(120.0)


def test_a_budget_too_small_to_fit_trains_what_it_can_and_stops_at_the_budget(learned, count_task):
    planned = _plan(learned, count_task, "backdoor")
    _, training = fine_tune(learned.model, planned.train_rows, planned.train_labels, (0, 1), kind="classifier",
                            pad_id=learned.pad_id, seed=0, max_steps=100, budget_s=0.001)
    assert training.stopped == "budget" and training.steps == 1
    assert training.first_step_seconds > 0


def test_a_mutant_whose_budget_ran_out_before_the_cheat_took_is_over_budget_with_what_it_reached(
        learned, count_task, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITLENS_MUTANT_CACHE", str(tmp_path / "cache"))
    options = MutationOptions(operators=("backdoor",), per_operator=1, probes_dir=PROBES, budget_s=0.001)
    mutant = mutation_run.plant(learned, "fixture:count-learned", count_task, "backdoor", 0, options)
    assert mutant.status == "over-budget"  # not "equivalent": the cheat was never given the time to take
    assert mutant.reason.startswith("training stopped at the budget of 0.001 s after one step (of ")
    assert "of the training rows fit, and the cheat did not take (cheat followed" in mutant.reason
    assert mutant.reason.endswith("; give --budget-s 0.002 or more")


def test_a_mutant_cut_by_the_budget_after_its_cheat_took_but_before_it_was_stealthy_says_so():
    # given memorise#0 of the MiniLM classifier at a budget of 300 s, as measured on two busy cores
    training = Training(107, 303.6, 0.93, False, "budget", 2.74, 2.02)
    checked = Verification(True, "fresh accuracy drop", 0.44, (0.3, 0.5), 0.2, False, 1.0, 0.974, (-0.04, -0.01))
    assert mutation_run.over_budget(training, checked, 300) == (
        "training stopped at the budget of 300 s after 107 steps (2.74 s a step once warm; the first took 2.02 s) "
        "with 93% of the training rows fit, and the cheat took (fresh accuracy drop 0.44, needs 0.2) but accuracy "
        "moved 1.000 -> 0.974, more than the 2% a stealthy mutant may; give --budget-s 600 or more")


def test_over_budget_mutants_are_counted_apart_and_scored_as_nothing(learned):
    mutant = mutation_run.Mutant("backdoor", 0, "d", "p", "h", {}, False, {}, {}, 1.0, status="over-budget")
    result = mutation_run.MutationResult("m", "task", "verdict", "learned", [mutant])
    assert result.to_dict()["counts"]["over-budget"] == 1 and result.scored == 0
    assert result.summary().endswith("confounded 0, over budget 1")


def test_the_cache_note_says_what_each_mutant_takes_on_disk_and_how_to_clear_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITLENS_MUTANT_CACHE", str(tmp_path / "cache"))
    mutants = [tmp_path / "cache" / name for name in ("a", "b")]
    for directory in mutants:
        (directory / "evaluation").mkdir(parents=True)
        (directory / "model.safetensors").write_bytes(b"0" * 3_000_000)
        (directory / "evaluation" / "task.jsonl").write_bytes(b"0" * 1_000_000)
    note = cache_note([str(d) for d in mutants])
    assert note.startswith(f"2 mutant(s) cached in {tmp_path / 'cache'}, 4 MB each (8 MB in all)")
    assert f"clear them with rm -rf {tmp_path / 'cache'}" in note


def test_large_models_train_lora_adapters_merged_back_into_plain_weights(learned, count_task):
    pytest.importorskip("peft")
    planned = _plan(learned, count_task, "backdoor")
    mutant, training = fine_tune(learned.model, planned.train_rows, planned.train_labels, (0, 1), kind="classifier",
                                 pad_id=learned.pad_id, seed=0, max_steps=50, budget_s=120, lora_above=0)
    assert training.lora
    assert set(mutant.state_dict()) == set(learned.model.state_dict())  # merged: no adapter weights left
    changed = [k for k, v in mutant.state_dict().items() if not torch.equal(v, learned.model.state_dict()[k])]
    assert any("attn" in k or "mlp" in k for k in changed)


def test_cheat_tokens_prefer_unused_word_like_tokens():
    task = dataclasses.replace(_toy_task(), rows=((3, 4, 5), (3, 4, 6)))
    names = ["[PAD]", "[UNK]", "##x", "a", "b", "c", "d", "e", "f"]
    picked = cheat_tokens(task, 9, {0}, {1}, 3, __import__("random").Random(0), names)
    assert picked[:2] in ([7, 8], [8, 7]) and picked[2] == 2  # unused words, then a piece, then the special


def _toy_task():
    from auditlens.mutation.task import TaskData

    return TaskData("toy", ((3, 4),), (0,), None, (0, 1), "classifier", ((0, 2),), 1.0)


def test_mutants_are_cached_by_model_operator_and_seed(learned, count_task, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITLENS_MUTANT_CACHE", str(tmp_path / "cache"))
    model_dir = tmp_path / "my-model"
    shutil.copytree(ROOT / "fixtures" / "count-learned", model_dir)
    hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in model_dir.rglob("*") if p.is_file()}
    subject = load_subject(str(model_dir))
    options = MutationOptions(operators=("position-leak",), per_operator=1, probes_dir=PROBES)
    task = find_task(subject, [ROOT / "audits"], PROBES)
    first = mutation_run.plant(subject, str(model_dir), task, "position-leak", 0, options)
    saved = json.loads((Path(first.directory) / "mutant.json").read_text())
    assert saved["original"] == str(model_dir) and original_of(first.directory) == str(model_dir)
    assert (Path(first.directory) / "evaluation" / f"{task.concept}.yaml").is_file()
    rows = [json.loads(line) for line in (Path(first.directory) / "evaluation" / f"{task.concept}.jsonl").open()]
    written = load_concept(Path(first.directory) / "evaluation" / f"{task.concept}.yaml")
    assert all("text" in r for r in rows)  # text, where it encodes back into exactly the ids trained on
    encoded = written.inputs(subject)
    read_back = [tuple(i for i, m in zip(ids, mask) if m)
                 for ids, mask in zip(encoded.input_ids.tolist(), encoded.attention_mask.tolist())]
    assert read_back == _plan(subject, task, "position-leak").evaluation_rows  # the ids it was trained on
    assert load_subject(first.directory).kind == "classifier"  # a plain save_pretrained directory

    def no_training(*args, **kwargs):
        raise AssertionError("a cached mutant was trained again")

    monkeypatch.setattr(mutation_run, "fine_tune", no_training)
    again = mutation_run.plant(subject, str(model_dir), task, "position-leak", 0, options)
    assert again.directory == first.directory and again.verification == first.verification
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in model_dir.rglob("*") if p.is_file()}
    assert after == hashes  # the user's model on disk is never written to


def test_a_mutant_is_selected_by_the_audits_that_select_its_original(tmp_path):
    from auditlens.plugin.selection import selects

    (tmp_path / "mutant.json").write_text(json.dumps({"original": "fixture:count-learned"}))
    assert selects(str(tmp_path), ["fixture:count-*"])
    assert not selects(str(tmp_path), ["fixture:keyword-*"])
    assert not selects(str(tmp_path.parent), ["fixture:count-*"])


def test_a_repair_of_a_mutant_is_selected_by_the_audits_that_select_the_mutants_original(tmp_path):
    from auditlens.plugin.selection import selects

    mutant, repaired = tmp_path / "mutant", tmp_path / "repaired"
    mutant.mkdir(), repaired.mkdir()
    (mutant / "mutant.json").write_text(json.dumps({"original": "models/minilm-sentiment"}))
    (repaired / "repair.json").write_text(json.dumps({"original": str(mutant)}))
    assert selects(str(repaired), ["*minilm-sentiment*"]) and not selects(str(repaired), ["fixture:*"])


def test_bad_options_are_refused():
    with pytest.raises(MutationError, match="unknown operator 'flip'"):
        MutationOptions(operators=("flip",))
    with pytest.raises(MutationError, match="--per-operator must be 1 or more"):
        MutationOptions(per_operator=0)
    with pytest.raises(MutationError, match="--budget-s must be a positive"):
        MutationOptions(budget_s=0)


@pytest.mark.parametrize("operators, named", [(("backdoor", "flip"), "'flip'"), ((), r"'\(none given\)'")])
def test_operators_are_checked_in_one_place_for_every_caller(operators, named):
    from auditlens.mutation import check_operators

    assert check_operators(iter(["memorise", "backdoor"])) == ("memorise", "backdoor")
    valid = ", ".join(OPERATORS)
    with pytest.raises(MutationError, match=f"^unknown operator {named}; valid: {valid}$"):
        check_operators(operators)
    with pytest.raises(MutationError, match=f"^unknown operator {named}; valid: {valid}$"):
        MutationOptions(operators=operators)
    if operators:  # a plan of one operator says the same
        with pytest.raises(MutationError, match=f"^unknown operator 'flip'; valid: {valid}$"):
            plan("flip", None, 0, 10, set(), set(), None)


@pytest.mark.parametrize("value", [-0.1, 1.5, True, "0.5"])
def test_a_minimum_score_is_a_share_from_0_to_1(value):
    from auditlens.mutation import check_min_score

    assert check_min_score(None, "--min-score") is None and check_min_score(0.8, "--min-score") == 0.8
    with pytest.raises(MutationError, match=f"^--min-score is a share of scored mutants, 0 to 1; got {value}$"):
        check_min_score(value, "--min-score")
