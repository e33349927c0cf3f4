"""Each check passes on the twin that uses the concept and fails on the twin that does not."""

import pytest
import torch

from auditlens import CheckError, ConceptError, ablate, erase, patch, probe, steer
from auditlens.checks import ProbeSweep


def test_probe_finds_the_count_in_the_learned_twin_only(learned, cheated, concepts):
    on_learned = probe(learned, concepts["more_a_than_b"], at="layer:1")
    on_cheated = probe(cheated, concepts["more_a_than_b"], at="layer:1")
    assert on_learned.accuracy >= 0.95 and on_learned.accuracy_ci.low >= 0.9
    assert on_cheated.accuracy < 0.8
    assert on_learned.selectivity > on_cheated.selectivity + 0.2


def test_probe_control_task_sits_near_chance(learned, concepts):
    result = probe(learned, concepts["more_a_than_b"], at="layer:1")
    assert abs(result.control_accuracy - 0.5) < 0.1
    assert result.selectivity == pytest.approx(result.accuracy - result.control_accuracy)
    assert result.accuracy_ci.low <= result.accuracy <= result.accuracy_ci.high


def test_probe_sweep_gives_the_per_layer_curve_in_one_pass_per_batch(learned, concepts):
    from auditlens import session_cache

    session_cache.clear()
    before = learned.forward_passes
    sweep = probe(learned, concepts["more_a_than_b"], at="layer:*")
    # embed first, as the curve's baseline (what the tokens give before any block), never the best site
    assert isinstance(sweep, ProbeSweep) and [r.site for r in sweep.results] == ["embed", "layer:0", "layer:1"]
    assert learned.forward_passes - before == 7  # 400 examples in batches of 64, every site at once
    assert sweep["layer:1"].accuracy == sweep.accuracies[2] and sweep.best_site != "embed"
    assert "layer:1" in sweep.explain()
    # the rule and the number the choice was made by are named (issue 26: 'best: layer:1 (accuracy 0.537)'
    # was shown while another layer had 0.562)
    best = sweep[sweep.best_site]
    assert f"best, by selectivity: {sweep.best_site} (selectivity {best.selectivity:.3f}" in sweep.explain()
    assert "best site by selectivity" in sweep.headline()
    top = max((r for r in sweep.results if r.site != "embed"), key=lambda r: r.accuracy)
    assert sweep.top_accuracy_site == top.site
    assert ("highest accuracy:" in sweep.explain()) == (top.site != sweep.best_site)


def test_erasing_the_count_breaks_the_learned_twin_only(learned, cheated, concepts):
    concept, data = concepts["more_a_than_b"], concepts["count_in_distribution"]
    on_learned = erase(learned, concept, at="layer:1", data=data)
    on_cheated = erase(cheated, concept, at="layer:1", data=data)
    assert on_learned.accuracy_drop >= 0.3 and on_learned.accuracy_drop_ci.low > 0.2
    assert on_cheated.accuracy_drop <= 0.05
    # the erased activations no longer carry the concept: a fresh probe is at (or below) chance
    assert on_learned.probe_accuracy_after <= on_learned.chance + 0.05


def test_a_probe_below_chance_after_erasure_is_explained(learned, concepts):
    """Issue 37: 'probe accuracy after 0.271' sat below the 0.5 chance line with no word on why."""
    result = erase(learned, concepts["more_a_than_b"], at="layer:1", data=concepts["count_in_distribution"])
    assert float(result.probe_accuracy_after) < float(result.chance)
    note = result.note()
    assert note.startswith(f"probe accuracy after {float(result.probe_accuracy_after):.3f} is below chance "
                           f"({float(result.chance):.3f}): that is what a complete erasure looks like")
    assert "cross-validation fold" in note and "Read it as chance" in note
    assert f"  note: {note}" in result.explain() and result.to_dict()["note"] == note
    assert result.thresholds == []  # telling below from above chance is no threshold of the audit's


def test_erasing_at_every_position_fits_on_every_real_token(learned, concepts):
    """position='all' (a bare shape error from inside concept-erasure before): the eraser is fitted on
    every real token with its example's label and applied at every position; the probe after reads the
    erased tokens' mean, and finds nothing."""
    concept = concepts["more_a_than_b"]
    result = erase(learned, concept, at="layer:0", position="all", data=concepts["count_in_distribution"])
    assert result.position == "all" and result.accuracy_drop >= 0.2
    assert result.probe_accuracy_after <= result.chance + 0.05


def test_erasing_at_a_position_that_does_not_exist_is_named(learned, concepts):
    with pytest.raises(CheckError, match="position must be one of last, first, mean, all or an int index; got 'every'"):
        erase(learned, concepts["more_a_than_b"], at="layer:0", position="every")


def test_erasing_at_the_peak_is_refused(learned, concepts):
    # an eraser applied at every token does not erase their maximum, so a probe after it would mislead
    with pytest.raises(CheckError, match="position must be one of last, first, mean, all or an int index; got 'max'"):
        erase(learned, concepts["more_a_than_b"], at="layer:0", position="max")


def test_patching_the_marker_flips_the_cheated_twin_only(learned, cheated, concepts):
    assert patch(learned, concepts["marker_swapped"], at="layer:0").flip_rate <= 0.05
    result = patch(cheated, concepts["marker_swapped"], at="layer:0")
    assert result.flip_rate >= 0.9
    assert result.examples and "<=" in result.examples[0].input  # base <= source shown as evidence


def test_patching_the_count_moves_the_learned_twin_only(learned, cheated, concepts):
    assert patch(learned, concepts["count_swapped"], at="layer:0").iia >= 0.9
    assert patch(cheated, concepts["count_swapped"], at="layer:0").iia <= 0.7


@pytest.mark.parametrize("kind", ["zero", "mean", "resample"])
def test_ablating_the_marker_position_breaks_the_cheated_twin_only(learned, cheated, concepts, kind):
    data = concepts["count_in_distribution"]
    on_learned = ablate(learned, data, at="embed", kind=kind, positions="first")
    on_cheated = ablate(cheated, data, at="embed", kind=kind, positions="first")
    assert on_learned.accuracy_drop <= 0.05
    assert on_cheated.accuracy_drop >= 0.2


def test_steering_along_the_count_moves_the_learned_twin_only(learned, cheated, concepts):
    on_learned = steer(learned, concepts["more_a_than_b"], at="layer:1", alpha=1.0)
    on_cheated = steer(cheated, concepts["more_a_than_b"], at="layer:1", alpha=1.0)
    assert on_learned.shift_per_alpha >= 1.0 and on_learned.target_rate_gain > 0.3
    assert abs(on_cheated.shift_per_alpha) < 0.5


def test_steering_with_probe_weights_agrees_in_sign(learned, concepts):
    result = steer(learned, concepts["more_a_than_b"], at="layer:1", method="probe")
    assert result.shift_per_alpha > 0


def test_results_are_deterministic_under_a_seed(learned, concepts):
    concept = concepts["more_a_than_b"]
    first = probe(learned, concept, at="layer:0", seed=3).to_dict()
    second = probe(learned, concept, at="layer:0", seed=3).to_dict()
    for timing in ("seconds_forward", "seconds_fit"):
        first["metrics"].pop(timing), second["metrics"].pop(timing)
    assert first == second


def test_another_seed_draws_another_control_task(learned, concepts):
    concept = concepts["more_a_than_b"]
    assert not torch.equal(concept.control_labels(0), concept.control_labels(1))


def test_failing_result_explains_itself(cheated, concepts):
    text = probe(cheated, concepts["more_a_than_b"], at="layer:1").explain()
    assert "probe for 'more_a_than_b' at layer:1" in text and "selectivity" in text and "95% CI" in text
    assert "misread" in text  # misclassified examples are shown as text


def test_too_few_examples_per_class_names_the_need(learned):
    from auditlens import Concept

    tiny = Concept("tiny", examples=("m0 a a b", "m1 b b a", "m0 a b b"), labels=(1, 0, 0))
    with pytest.raises(ConceptError, match="has 2 examples of class '0'; 5-fold cross-validation needs at least 5"):
        probe(learned, tiny, at="layer:0")


def test_pairs_only_concept_cannot_be_probed(learned, concepts):
    with pytest.raises(ConceptError, match="probe needs labelled examples"):
        probe(learned, concepts["marker_swapped"], at="layer:0")


def test_bad_ablation_kind_is_named(learned, concepts):
    with pytest.raises(CheckError, match="ablation kind must be one of zero, mean, resample; got 'noise'"):
        ablate(learned, concepts["more_a_than_b"], at="layer:0", kind="noise")


def test_encoder_without_head_has_no_behaviour_to_read(concepts):
    from auditlens import load_subject

    bare = load_subject("fixture:count-learned", kind="encoder")
    with pytest.raises(CheckError, match="without an output head"):
        ablate(bare, concepts["more_a_than_b"], at="layer:0")
    assert probe(bare, concepts["more_a_than_b"], at="layer:1").accuracy >= 0.9  # probes still work


def test_causal_lm_behaviour_is_read_through_answer_tokens():
    from auditlens import Concept, load_subject
    from tiny_models import build

    lm = load_subject(build("llama"))
    rows = [[3 + (i % 7), 10 + (i % 5), 20 + (i % 3)] for i in range(40)]
    concept = Concept("toy", examples=tuple(map(tuple, rows)), labels=tuple(i % 2 for i in range(40)),
                      answer_tokens=(5, 6))
    result = ablate(lm, concept, at="layer:1", kind="zero")
    assert 0.0 <= result.accuracy_before <= 1.0 and result.n == 40
    without = Concept("toy", examples=concept.examples, labels=concept.labels)
    with pytest.raises(CheckError, match="needs answer_tokens"):
        ablate(lm, without, at="layer:1")
