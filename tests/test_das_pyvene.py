"""Our distributed alignment search against the reference implementation, pyvene's
``RotatedSpaceIntervention``: on the same model, site, position (the last real token of base and of
source), train/held-out split, dim, batch size, learning rate and number of optimizer steps, both must
reach the same held-out IIA, and our interchange along pyvene's learned directions must give pyvene's
patched logits.

pyvene rotates the site by an orthogonal W ([d, d]) and swaps the first ``dim`` rotated coordinates,
h_b W[:, :k] <- h_s W[:, :k]: our h_b + (h_s - h_b) Bᵀ B with B = W[:, :k]ᵀ."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from auditlens import das, load_concept, load_subject
from auditlens.alignment.interchange import SubspaceInterchange
from auditlens.checks.behaviour_change import behaviour
from auditlens.checks.das import _split  # the split das makes: both implementations train and judge on it
from auditlens.engine import run
from auditlens.sites.positions import last_index

pyvene = pytest.importorskip("pyvene", reason="pyvene, the reference DAS, is in the dev extra: pip install -e '.[dev]'")

SEED, DIM, TRAIN_SHARE, BATCH_SIZE, LEARNING_RATE = 0, 1, 0.7, 64, 0.01
AGREE = 0.03  # the two implementations' held-out IIAs may differ by this much


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def pyvene_das(model, component, pairs, subject, steps, width=None):
    """Train pyvene's RotatedSpaceIntervention at ``component`` of ``model`` as ``das`` trains (Adam on the
    cross-entropy of the logits against the expected labels, seeded batches of das's train split) for
    ``steps`` optimizer steps. ``width``: the site's width, for a model pyvene has no mapping of (then
    ``component`` is a module path ending in ``.output``). Returns the held-out IIA, the learned directions
    ([DIM, d]) and the held-out patched logits."""
    base, source, expected = pairs.pair_inputs(subject)
    train, held_out = _split(len(expected), TRAIN_SHARE, SEED, pairs.name)
    with torch.random.fork_rng():  # pyvene draws its initial rotation from the global generator
        torch.manual_seed(SEED)
        given = {} if width is None else {"intervention": pyvene.RotatedSpaceIntervention(embed_dim=width)}
        config = pyvene.IntervenableConfig(representations=[pyvene.RepresentationConfig(0, component, "pos", 1, **given)],
                                           intervention_types=pyvene.RotatedSpaceIntervention)
        intervenable = pyvene.IntervenableModel(config, model)
    intervenable.disable_model_gradients()
    (rotated,) = intervenable.interventions.values()
    rotated.set_interchange_dim(DIM)
    optimizer = torch.optim.Adam(rotated.rotate_layer.parameters(), lr=LEARNING_RATE)
    base_last, source_last = last_index(base.attention_mask), last_index(source.attention_mask)

    def patched_logits(rows):
        locations = ([[[int(p)] for p in source_last[rows]]], [[[int(p)] for p in base_last[rows]]])
        _, output = intervenable(
            {"input_ids": base.input_ids[rows], "attention_mask": base.attention_mask[rows]},
            [{"input_ids": source.input_ids[rows], "attention_mask": source.attention_mask[rows]}],
            {"sources->base": locations})
        return output.logits

    generator, done = torch.Generator().manual_seed(SEED), 0
    while done < steps:
        for rows in train[torch.randperm(len(train), generator=generator)].split(BATCH_SIZE):
            loss = nn.functional.cross_entropy(patched_logits(rows), expected[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    with torch.no_grad():
        logits = patched_logits(held_out).float()
        directions = rotated.rotate_layer.weight[:, :DIM].T.detach().clone()
    return float((logits.argmax(-1) == expected[held_out]).float().mean()), directions, logits


def both(subject, pairs, component, steps, model=None, width=None):
    """Our das at ``layer:0`` and pyvene's at ``component``, each trained for exactly ``steps`` optimizer steps
    (no plateau stop: pyvene's orthogonal parametrization turns more slowly at one learning rate than our QR
    one, so stopping each on its own plateau would compare budgets, not implementations)."""
    ours = das(subject, pairs, at="layer:0", dim=DIM, seed=SEED, train_share=TRAIN_SHARE, max_steps=steps,
               patience=steps, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE)
    iia, directions, logits = pyvene_das(model or subject.model, component, pairs, subject, steps, width)
    return SimpleNamespace(ours=ours, pyvene_iia=iia, pyvene_directions=directions, pyvene_logits=logits)


@pytest.fixture(scope="module")
def count_swapped():
    return load_concept("probes/count_swapped.yaml")


@pytest.fixture(scope="module")
def on_learned(count_swapped):
    """``block_output`` of layer 0: pyvene's own name for GPT-2's ``transformer.h[0]`` output, our layer:0."""
    subject = load_subject("fixture:count-learned")
    return subject, both(subject, count_swapped, "block_output", steps=40)


@pytest.fixture(scope="module")
def on_cheated(count_swapped):
    return both(load_subject("fixture:count-cheated"), count_swapped, "block_output", steps=40)


def test_pyvene_and_we_find_the_learned_twins_count_after_block_0(on_learned):
    _, found = on_learned
    assert found.ours.iia >= 0.95 and found.pyvene_iia >= 0.95
    assert abs(found.ours.iia - found.pyvene_iia) <= AGREE


def test_pyvene_and_we_find_no_count_subspace_in_the_cheated_twin(on_cheated):
    """The cheated twin reads the marker: neither patch moves its answer off what the bases alone give."""
    assert on_cheated.ours.iia <= 0.6 and on_cheated.pyvene_iia <= 0.6
    assert abs(on_cheated.ours.iia - on_cheated.ours.unpatched_iia) <= 0.05
    assert abs(on_cheated.ours.iia - on_cheated.pyvene_iia) <= AGREE


def test_our_interchange_along_pyvenes_directions_gives_pyvenes_logits(on_learned, count_swapped):
    """The two interchanges are one operation, so only training could make the IIAs differ."""
    subject, found = on_learned
    base, source, expected = count_swapped.pair_inputs(subject)
    _, held_out = _split(len(expected), TRAIN_SHARE, SEED, count_swapped.name)
    site = subject.site("layer:0")
    held_source = run(subject, source.select(held_out), sites=[site], position="last").activations[site.name]
    patch = SubspaceInterchange(site, found.pyvene_directions, held_source, "last")
    ours = behaviour(subject, base.select(held_out), expected[held_out], [patch]).scores
    torch.testing.assert_close(ours, found.pyvene_logits, atol=1e-4, rtol=1e-4)


class WithConfig(nn.Module):
    """A hand-built model as pyvene takes one: it reads ``model.config`` and ``model.device``, which Hugging Face
    models have."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.config = model, SimpleNamespace()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, **inputs):
        return self.model(**inputs)


def test_pyvene_and_we_find_a_binary_variables_known_direction():
    """test_das's KnownDirection writes x along u at ``blocks[0]`` and reads it there; inputs are 1 to 3
    tokens, so the last real token of a base and of its source often differ."""
    from test_das import WIDTH, subject_of, swaps

    subject = subject_of()
    found = both(subject, swaps(), "model.blocks[0].output", steps=200, model=WithConfig(subject.model), width=WIDTH)
    assert found.ours.iia >= 0.95 and found.pyvene_iia >= 0.95
    assert abs(found.ours.iia - found.pyvene_iia) <= AGREE
    for directions in (found.ours.directions, found.pyvene_directions):
        assert abs(float(directions[0] @ subject.model.u)) > 0.95
