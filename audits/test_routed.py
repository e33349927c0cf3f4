"""Python audits of the routed twins, beside audits/routed.audit.yaml: attribution patching must put the
count on the circuit that file names (the report draws every head's score as a layer x head map)."""

import pytest

from auditlens import attribute

pytestmark = pytest.mark.models("fixture:routed-*")
CIRCUIT = {"head:0.1", "head:1.2"}
NOISE = 1e-6  # estimates below this (in the metric's units: a score difference) are rounding, not an effect


def test_attribution_puts_the_count_on_heads_0_1_and_1_2(subject, count_swapped):
    result = attribute(subject, count_swapped, "head:*.*")
    largest = max(abs(e) for e in result.estimates)
    moved = largest > NOISE  # swapping the count moves the answer somewhere
    carriers = {c for c, e in zip(result.components, result.estimates) if moved and abs(e) >= largest / 10}
    assert carriers == CIRCUIT, (f"heads whose patching would move the count: {sorted(carriers)}; "
                                 f"expected {sorted(CIRCUIT)}")
