"""Audits of the "last word equals the first" classifiers: the decision must follow the rule on
inputs the model has never seen, through a representation of the rule."""

import pytest

from auditlens import erase, patch, probe

pytestmark = pytest.mark.models("fixture:ends-*")


def test_the_rule_is_linearly_represented(subject, same_ends):
    result = probe(subject, same_ends, at="layer:1", position="last")
    assert result.accuracy >= 0.9


def test_changing_the_last_word_moves_the_decision_with_the_rule(subject, last_word_swapped):
    assert patch(subject, last_word_swapped, at="embed").iia >= 0.9


def test_erasing_the_rule_breaks_the_decision(subject, same_ends, ends_in_distribution):
    result = erase(subject, same_ends, at="layer:1", data=ends_in_distribution)
    assert result.accuracy_drop >= 0.3
