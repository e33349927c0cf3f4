"""Behavioural checks: strategies produce valid, shrinkable inputs; each check passes on the twin that
behaves and fails on the one that does not, with a minimal counterexample as text."""

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from auditlens import CheckError, load_subject
from auditlens.behaviour import (
    add_negation,
    expect_direction,
    expect_invariant,
    expect_label,
    insert_words,
    remove_negation,
    replace_words,
    rewrite,
    substitute_words,
    swap_words,
    templated_text,
    token_sequences,
    vocabulary_of,
)
from auditlens.zoo import count_task

LETTERS = list(count_task.LETTERS)
COUNT_INPUTS = st.tuples(
    st.sampled_from(["m0", "m1"]),
    st.lists(st.sampled_from(LETTERS), min_size=11, max_size=11).filter(lambda l: l.count("a") != l.count("b")),
).map(lambda t: " ".join([t[0], *t[1]]))
MARKER_SWAP = swap_words({"m0": "m1", "m1": "m0"})


def test_vocabulary_strategy_gives_inputs_the_model_can_encode(learned):
    words = vocabulary_of(learned)
    assert set(words) == {*LETTERS, "m0", "m1"}

    @settings(max_examples=50, database=None)
    @given(token_sequences(words, 1, 12))
    def encodes(text):
        inputs = learned.encode([text])
        assert 1 <= inputs.lengths[0] <= 12 and "[UNK]" not in text

    encodes()


def test_strategies_shrink_to_the_simplest_input():
    minimal = find(token_sequences(["a", "b", "c"], 1, 8), lambda text: "c" in text)
    assert minimal == "c"
    sentence = find(templated_text("the {noun} is {adj}", {"noun": ["cat", "dog"], "adj": ["good", "bad"]}),
                    lambda text: "bad" in text)
    assert sentence == "the cat is bad"


def test_perturbations_do_what_they_say():
    draw = lambda strategy: find(strategy, lambda _: True)  # noqa: E731  the simplest draw
    assert draw(MARKER_SWAP("m0 a b")) == "m1 a b"
    assert draw(insert_words(["x"], keep_last=1)("a b =")) == "x a b ="
    assert draw(substitute_words(["q"], keep_first=1, keep_last=1)("a b c =")) == "a q c ="
    assert draw(replace_words(["alice"], ["bob"])("alice met carol")) == "bob met carol"
    assert draw(rewrite({"i think": ["i believe"]})("i think it is fine")) == "i believe it is fine"
    assert draw(add_negation()("the film was good")) == "the film was not good"
    assert draw(remove_negation()("the film was not good")) == "the film was good"


def test_template_with_an_empty_slot_is_refused():
    with pytest.raises(CheckError, match=r"uses slot \{adj\}, which has no fillers"):
        templated_text("the {noun} is {adj}", {"noun": ["cat"]})


def test_invariance_to_the_marker_holds_on_learned_and_fails_on_cheated(learned, cheated):
    assert expect_invariant(learned, COUNT_INPUTS, MARKER_SWAP).failure_rate == 0.0
    result = expect_invariant(cheated, COUNT_INPUTS, MARKER_SWAP)
    assert result.failure_rate >= 0.9 and result.failure_rate_ci.low >= 0.8
    # the minimal counterexample is shown as text, first
    assert result.minimal_counterexample.startswith("m0 a a a") and "->  m1" in result.minimal_counterexample
    assert result.examples[0].note.startswith("minimal failing input: prediction fewer -> more")


def test_each_failing_input_is_shown_once(cheated):
    """Issue 37: the minimal counterexample was drawn too, and printed a second time below itself."""
    result = expect_invariant(cheated, COUNT_INPUTS, MARKER_SWAP)
    shown = [example.input for example in result.examples]
    assert shown[0] == result.minimal_counterexample and len(shown) == 5
    assert len(set(shown)) == len(shown)
    assert result.explain().count(f"{result.minimal_counterexample!r}:") == 1


def test_label_check_on_inputs_with_more_a(learned, cheated):
    more_a = st.lists(st.sampled_from(LETTERS), min_size=11, max_size=11).filter(
        lambda l: l.count("a") > l.count("b")).map(lambda l: " ".join(["m0", *l]))
    assert expect_label(learned, more_a, label=1).failure_rate <= 0.02
    assert expect_label(cheated, more_a, label=1).failure_rate >= 0.9  # m0 says "fewer" to the cheat


def test_direction_check(learned, cheated):
    add_a = lambda text: st.just(text.replace(" b", " a", 1) if " b" in text else text)  # noqa: E731
    assert expect_direction(learned, COUNT_INPUTS, add_a, label=1, direction="up").failure_rate <= 0.02
    assert expect_direction(cheated, COUNT_INPUTS, MARKER_SWAP, label=1, direction="up").failure_rate >= 0.4


def test_checks_are_batched_and_deterministic(learned):
    before = learned.forward_passes
    first = expect_invariant(learned, COUNT_INPUTS, MARKER_SWAP, max_examples=100, seed=4)
    assert learned.forward_passes - before <= 4  # 200 texts (100 pairs) in batches of 64, no shrinking needed
    second = expect_invariant(learned, COUNT_INPUTS, MARKER_SWAP, max_examples=100, seed=4)
    assert first.to_dict() == second.to_dict()


def test_budget_is_respected(cheated):
    result = expect_invariant(cheated, COUNT_INPUTS, MARKER_SWAP, max_examples=30)
    assert result.n == 30


def test_too_small_a_budget_is_refused(learned):
    with pytest.raises(CheckError, match="max_examples >= 10"):
        expect_label(learned, COUNT_INPUTS, label=1, max_examples=5)


def test_encoder_invariance_uses_embedding_similarity():
    minilm = load_subject("fixture:minilm")
    sentences = templated_text("the {noun} was {adj}", {"noun": ["film", "meal", "book", "song"],
                                                        "adj": ["fine", "long", "new", "odd"]})
    identity = lambda text: st.just(text)  # noqa: E731
    assert expect_invariant(minilm, sentences, identity, max_examples=12).failure_rate == 0.0
    with pytest.raises(CheckError, match="is an encoder"):
        expect_label(minilm, sentences, label=0, max_examples=10)


def test_a_strategy_with_too_few_distinct_inputs_is_named(learned):
    tiny = st.sampled_from(["m0 a a b", "m1 a b b"])
    with pytest.raises(CheckError, match="gave only 2 distinct inputs .* widen the strategy"):
        expect_label(learned, tiny, label=1, max_examples=50)


def test_python_takes_label_names_as_yaml_does(learned):
    add_a = insert_words(["a"], 3, 3)
    by_name = expect_direction(learned, COUNT_INPUTS, add_a, label="more", direction="up", max_examples=40)
    by_index = expect_direction(learned, COUNT_INPUTS, add_a, label=1, direction="up", max_examples=40)
    assert float(by_name.failure_rate) == float(by_index.failure_rate)
    assert by_name.description == "p(more) goes up"
    with pytest.raises(CheckError, match=r"has no label 'positive'; its labels are \['fewer', 'more'\]"):
        expect_label(learned, COUNT_INPUTS, label="positive")


def test_a_perturbation_factory_passed_uncalled_is_named(learned):
    with pytest.raises(CheckError, match=r"perturb=add_negation does not take a text; .* perturb=add_negation\("):
        expect_invariant(learned, COUNT_INPUTS, add_negation)
    with pytest.raises(CheckError, match="perturb must be a perturbation"):
        expect_direction(learned, COUNT_INPUTS, "swap", label=1)
