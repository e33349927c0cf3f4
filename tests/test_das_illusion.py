"""The illusion check on honest zoo twins: the read subspace is estimated along the patch, so a variable
that is most of the activation (moved along itself, which a downstream norm cannot see at the base) or an
answer saturated at both ends of the patch is still read where the model reads it."""

import pytest

from auditlens import das, load_subject
from auditlens.alignment.illusion import read_subspace
from auditlens.checks.das_sweep import sweep_sites
from auditlens.engine import run
from auditlens.readout import readout_for

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def routed():
    return load_subject("fixture:routed-learned")


def test_after_the_last_block_the_read_subspace_holds_the_heads_direction(routed, concepts):
    """The head reads the last token after the final LayerNorm, along its centred gamma * (w1 - w0). The
    count is 0.93 of the activation there, so the norm's gradient at the bases (orthogonal to the activation)
    held only 0.29 of the head's direction; along the patch it holds all of it."""
    pairs = concepts["count_swapped"]
    result = das(routed, pairs, at="layer:1", max_steps=20)
    base, source, _ = pairs.pair_inputs(routed)
    site = sweep_sites(routed, "layer:1")[0]
    sources = run(routed, source, sites=[site], position="last").activations[site.name]
    read = read_subspace(routed, site, base, sources, result.directions, readout_for(routed), "last", seed=0)
    model = routed.model
    head = (model.transformer.ln_f.weight * (model.score.weight[1] - model.score.weight[0])).detach()
    head = head - head.mean()
    assert float((read @ (head / head.norm())).pow(2).sum()) >= 0.95


def test_an_honest_count_after_the_last_block_is_not_flagged(routed, concepts):
    # before the read subspace followed the patch: dormant_share 0.87 and IIA 0.00 without it
    result = das(routed, concepts["count_swapped"], at="layer:1", max_steps=20)
    assert result.iia >= 0.95
    assert result.dormant_share < 0.1 and result.iia_without_dormant >= 0.95
    assert "illusion" not in (result.note() or "")


def test_an_answer_that_jumps_along_the_patch_is_read_where_it_jumps(concepts):
    """keyword-learned's [CLS] after block 0 drives a saturated pooler: the logit difference is +-8.9 at both
    ends of the patch and changes within 1/4000 of the path, between any two fixed points of it."""
    subject = load_subject("fixture:keyword-learned")
    result = das(subject, concepts["keyword_toggled"], at="layer:0", position="first", max_steps=40)
    assert result.iia >= 0.95
    assert result.dormant_share < 0.5 and result.iia_without_dormant >= 0.95


def test_a_patch_that_does_nothing_is_not_called_an_illusion(cheated, concepts):
    # the marker twin does not read the count: its learned direction is rightly unread, but nothing patched works
    result = das(cheated, concepts["count_swapped"], at="layer:0", max_steps=20)
    assert result.iia <= result.unpatched_iia + 0.05
    assert "illusion" not in result.note() and "bases alone" in result.note()
