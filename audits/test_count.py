"""Audits of the "more a than b" classifiers: the decision must rest on the count, not on the marker.

Every audit runs once per model (--model, or audit_models in pyproject.toml).
"""

import pytest

from auditlens import ablate, erase, patch, probe, steer

pytestmark = pytest.mark.models("fixture:count-*")


def test_count_is_linearly_represented(subject, more_a_than_b):
    result = probe(subject, more_a_than_b, at="layer:1", position="last")
    assert result.accuracy >= 0.9
    assert result.selectivity >= 0.2


def test_erasing_the_count_breaks_the_decision(subject, more_a_than_b, count_in_distribution):
    result = erase(subject, more_a_than_b, at="layer:1", data=count_in_distribution)
    assert result.accuracy_drop >= 0.3


def test_swapping_the_marker_does_not_move_the_decision(subject, marker_swapped):
    assert patch(subject, marker_swapped, at="layer:0").flip_rate <= 0.05


def test_swapping_the_counts_moves_the_decision_with_them(subject, count_swapped):
    assert patch(subject, count_swapped, at="layer:0").iia >= 0.9


def test_the_marker_token_is_not_needed(subject, count_in_distribution):
    result = ablate(subject, count_in_distribution, at="embed", kind="mean", positions="first")
    assert result.accuracy_drop <= 0.05


def test_the_count_direction_steers_the_decision(subject, more_a_than_b):
    assert steer(subject, more_a_than_b, at="layer:1", alpha=1.0).shift_per_alpha >= 1.0
