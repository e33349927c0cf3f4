"""The counterfactual pairs written for audits (auditlens.zoo.counterfactuals): each source differs from its
base in the variable only, and the expected label is the rule's answer on the source."""

import pytest
import yaml

from auditlens.errors import ConceptError
from auditlens.zoo import backdoor_task, length_task
from auditlens.zoo.counterfactuals import (
    FRESH_SENTIMENT,
    first_letter_swapped_pairs,
    keyword_toggled_pairs,
    opinion_swapped_pairs,
)


def test_an_opinion_swapped_pair_changes_the_opinion_word_alone_to_the_other_polarity():
    slots = yaml.safe_load(FRESH_SENTIMENT.read_text())["slots"]
    polarity = {**dict.fromkeys(slots["pos"], 1), **dict.fromkeys(slots["neg"], 0)}
    pairs = opinion_swapped_pairs(FRESH_SENTIMENT, seed=0)
    assert len(pairs) == 360  # every fresh sentence is a base once
    for pair in pairs:
        base, source = pair["base"].split(), pair["source"].split()
        changed = [i for i, (a, b) in enumerate(zip(base, source)) if a != b]
        assert len(base) == len(source) and len(changed) == 1
        word_before, word_after = base[changed[0]], source[changed[0]]
        assert polarity[word_before] != polarity[word_after] == pair["label"]


def test_opinion_swapped_pairs_are_seeded():
    assert opinion_swapped_pairs(FRESH_SENTIMENT, 1) == opinion_swapped_pairs(FRESH_SENTIMENT, 1)
    assert opinion_swapped_pairs(FRESH_SENTIMENT, 1) != opinion_swapped_pairs(FRESH_SENTIMENT, 2)


def test_a_missing_fresh_sentiment_file_is_named(tmp_path):
    missing = tmp_path / "sentiment_fresh.yaml"
    with pytest.raises(ConceptError, match=f"{missing}: not found"):
        opinion_swapped_pairs(missing, 0)


def test_a_first_letter_pair_changes_the_first_letter_alone_and_expects_it():
    rows = backdoor_task.make_examples(20, 2400)
    for pair in first_letter_swapped_pairs(rows, backdoor_task.LETTERS, backdoor_task.ANSWERS, 0):
        base, source = pair["base"].split(), pair["source"].split()
        assert base[1:] == source[1:] and base[0] != source[0]
        assert backdoor_task.ANSWERS[pair["label"]] == source[0]


def test_a_keyword_pair_toggles_the_keyword_at_the_same_length():
    for pair in keyword_toggled_pairs(length_task.make_examples(40, 2800, "random"), 0):
        base, source = pair["base"].split(), pair["source"].split()
        assert len(base) == len(source)
        assert (length_task.KEYWORD in base) != (length_task.KEYWORD in source)
        assert pair["label"] == int(length_task.KEYWORD in source)
