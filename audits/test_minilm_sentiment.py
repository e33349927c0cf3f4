"""Audits of a sentiment classifier built on MiniLM (bench/minilm_classifier.py builds one; any model whose
spec holds "minilm-sentiment" is selected): its answer must rest on a sentiment direction it
represents, and move when that direction is erased."""

import pytest

from auditlens import erase, probe, steer

pytestmark = pytest.mark.models("*minilm-sentiment*")


def test_sentiment_is_represented_where_the_head_reads(subject, sentiment):
    result = probe(subject, sentiment, at="layer:-1", position="first")
    assert result.accuracy >= 0.9
    assert result.selectivity >= 0.1


def test_erasing_sentiment_breaks_the_decision(subject, sentiment):
    assert erase(subject, sentiment, at="layer:-1", position="first", data=sentiment).accuracy_drop >= 0.3


def test_sentiment_as_fresh_inputs_carry_it_steers_the_decision(subject, sentiment_fresh, sentiment):
    """Steer along the sentiment direction of inputs the evaluation set does not contain (other words,
    other templates), in the middle of the encoder: a model that reads sentiment follows it; one that
    reads a token or its memory of the evaluation set barely does."""
    assert steer(subject, sentiment_fresh, at="layer:4", position="mean", data=sentiment).shift_per_alpha >= 1.0
