"""Audits of a sentiment classifier built on MiniLM (bench/minilm_classifier.py builds one; any model whose
spec holds "minilm-sentiment" is selected): its answer must rest on a sentiment direction it
represents, and move when that direction is erased."""

import pytest

from auditlens import erase, probe

pytestmark = pytest.mark.models("*minilm-sentiment*")


def test_sentiment_is_represented_where_the_head_reads(subject, sentiment):
    result = probe(subject, sentiment, at="layer:-1", position="first")
    assert result.accuracy >= 0.9
    assert result.selectivity >= 0.1


def test_erasing_sentiment_breaks_the_decision(subject, sentiment):
    assert erase(subject, sentiment, at="layer:-1", position="first", data=sentiment).accuracy_drop >= 0.3
