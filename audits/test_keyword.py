"""Audits of the "contains x" classifiers (BERT, reading [CLS]): the decision must rest on the keyword,
and the input's length must not matter."""

import pytest

from auditlens import erase, probe

pytestmark = pytest.mark.models("fixture:keyword-*")


def test_keyword_presence_is_linearly_represented(subject, has_keyword):
    result = probe(subject, has_keyword, at="layer:1", position="first")
    assert result.accuracy >= 0.9
    assert result.selectivity >= 0.2


def test_erasing_keyword_presence_breaks_the_decision(subject, has_keyword, keyword_in_distribution):
    result = erase(subject, has_keyword, at="layer:1", position="first", data=keyword_in_distribution)
    assert result.accuracy_drop >= 0.3


def test_erasing_the_input_length_does_not_move_the_decision(subject, short_input, keyword_in_distribution):
    result = erase(subject, short_input, at="layer:1", position="first", data=keyword_in_distribution)
    assert result.accuracy_drop <= 0.05
