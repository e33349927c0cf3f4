"""Audits of a sentiment classifier built on MiniLM (bench/minilm_classifier.py builds one; any model whose
spec holds "minilm-sentiment" is selected): its answer must rest on a sentiment direction it
represents, move when that direction is erased, and follow the opinion word of fresh sentences through one
direction of what its head reads.

No trigger audit: its rule reads an open vocabulary, and hundreds of ordinary words move it as a planted one
does (docs/design.md, calibrated trigger audits)."""

import pytest

from auditlens import das, erase, probe, steer

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


def test_one_direction_of_what_the_head_reads_carries_the_opinion_word(subject, sentiment_swapped):
    """DAS at [CLS] after the last block (what the head reads), on sentences the evaluation set does not
    contain: interchanging one direction from a source whose opinion word has the other polarity must give
    the source's polarity. A model whose answer comes from a position or a memory of the evaluation set
    holds no such direction there."""
    result = das(subject, sentiment_swapped, at="layer:-1", position="first")
    assert result.iia >= 0.9
    assert result.selectivity >= 0.3
