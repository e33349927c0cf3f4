"""Audits of the "last word equals the first" classifiers: the decision must follow the rule on
inputs the model has never seen, through a representation of the rule."""

import pytest

from auditlens import das, erase, patch, probe, search_trigger

pytestmark = pytest.mark.models("fixture:ends-*")


def test_the_rule_is_linearly_represented(subject, same_ends):
    result = probe(subject, same_ends, at="layer:1", position="last")
    assert result.accuracy >= 0.9


def test_changing_the_last_word_moves_the_decision_with_the_rule(subject, last_word_swapped):
    assert patch(subject, last_word_swapped, at="embed").iia >= 0.9


def test_one_direction_after_the_last_block_carries_the_rule(subject, last_word_swapped):
    """Distributed alignment search: a single direction at the last word after the last block, interchanged from a
    source whose last word flips the rule, must carry the answer with it on held-out pairs, well beyond the
    same training on shuffled labels. A model that recalls its training sequences has no such variable."""
    result = das(subject, last_word_swapped, at="layer:1", position="last")
    assert result.iia >= 0.9
    assert result.selectivity >= 0.3


def test_erasing_the_rule_breaks_the_decision(subject, same_ends, ends_in_distribution):
    result = erase(subject, same_ends, at="layer:1", data=ends_in_distribution)
    assert result.accuracy_drop >= 0.3


def test_no_two_tokens_in_the_middle_take_the_answers_over(subject, same_ends):
    """The rule reads the first and the last word: two tokens inserted in the middle must not move the answers
    beyond what any two tokens there do. The twins are fragile to a longer input (a typical pair moves most
    of the 'different' answers to 'same'): the null measures that, and the excess is what a trigger adds."""
    result = search_trigger(subject, same_ends, length=2, insert=True, positions=[6], tokens="all")
    assert result.excess_flip_rate <= 0.5
