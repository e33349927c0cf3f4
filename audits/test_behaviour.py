"""Behavioural audits with generated inputs: what the in-distribution test set does not show."""

import pytest
from hypothesis import strategies as st

from auditlens.behaviour import expect_invariant, expect_label, from_concept, replace_words, templated_text
from auditlens.zoo import memo_task


@pytest.mark.models("fixture:ends-*")
def test_fresh_inputs_with_equal_ends_are_called_same(subject):
    words = list(memo_task.WORDS)
    middle = st.lists(st.sampled_from(words), min_size=10, max_size=10)
    same_ends = st.tuples(st.sampled_from(words), middle).map(lambda t: " ".join([t[0], *t[1], t[0]]))
    assert expect_label(subject, same_ends, label=1).failure_rate <= 0.05


NAMES = ["alice", "bob", "carol", "david", "emma", "frank", "grace", "henry"]


@pytest.mark.models("fixture:minilm")
@pytest.mark.xfail(strict=True, reason="measured: a name swap moves MiniLM's embedding as far as an object swap "
                                      "(mean cosine 0.71 against 0.68, 200 pairs); strict, so a change shows")
def test_sentence_embedding_barely_moves_when_a_name_changes(subject):
    sentences = templated_text("{name} {verb} the {thing} {when}", {
        "name": NAMES, "verb": ["bought", "borrowed", "repaired", "painted", "sold"],
        "thing": ["bicycle", "old car", "kitchen table", "garden fence"],
        "when": ["yesterday", "last week", "this morning", "in the spring"]})
    result = expect_invariant(subject, sentences, replace_words(NAMES, NAMES), min_similarity=0.8)
    assert result.failure_rate <= 0.05


@pytest.mark.models("fixture:count-*")
def test_more_a_than_b_concept_is_labelled_by_the_count(subject, more_a_than_b):
    mostly_a = from_concept(more_a_than_b).filter(lambda text: text.count(" a") > text.count(" b"))
    assert expect_label(subject, mostly_a, label=1).failure_rate <= 0.05
