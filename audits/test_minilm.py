"""Audits of the pretrained MiniLM (sentence-transformers/all-MiniLM-L6-v2, shipped by a package):
where do English concepts become linearly decodable, beyond a control task? Each test sweeps every
block and records the per-layer curve."""

import pytest

from auditlens import probe

pytestmark = pytest.mark.models("fixture:minilm")


@pytest.mark.parametrize("concept_name", ["negation", "sentiment", "plural_subject"])
def test_concept_is_decodable_with_positive_selectivity(subject, request, concept_name):
    concept = request.getfixturevalue(concept_name)
    sweep = probe(subject, concept, at="layer:*", position="mean")
    assert sweep.best_accuracy >= 0.9
    assert sweep.best_selectivity >= 0.1
