"""Attribution patching (issue 18, item 3): a first-order estimate of every component's patching
effect in one forward and backward pass per batch, checked against real activation patching."""

import pytest

from auditlens import ConceptError, SiteError, attribute


def test_it_ranks_the_heads_as_real_patching_does_on_the_learned_twin(learned, concepts):
    result = attribute(learned, concepts["count_swapped"], "head:*.*", validate=True)
    assert len(result.components) == len(result.estimates) == len(result.actual) == 8
    assert result.rank_correlation >= 0.5, (result.estimates, result.actual)
    assert result.passes == 2 * -(-len(concepts["count_swapped"].pairs) // 32)  # a forward and a backward per batch
    assert result.top[0] in result.components


def test_nothing_is_attributed_where_the_behaviour_does_not_depend_on_the_pairs(cheated, concepts):
    """The cheated twin ignores the count: swapping it moves nothing, estimated or real."""
    result = attribute(cheated, concepts["count_swapped"], "head:*.*", validate=True)
    assert max(abs(x) for x in result.estimates) < 0.01 and max(abs(x) for x in result.actual) < 0.01


def test_bad_input_is_named(learned, concepts):
    with pytest.raises(ConceptError, match="has no counterfactual pairs"):
        attribute(learned, concepts["more_a_than_b"])
    with pytest.raises(SiteError, match="has 2 blocks"):
        attribute(learned, concepts["count_swapped"], "head:5.*")
