"""Distributed alignment search on models whose answer we know: a binary variable written along one
known direction at a site, read there (honest) or not read there and switched on through a dormant
direction (Makelov et al.'s illusion)."""

import json
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from auditlens import CheckError, Concept, ConceptError, CounterfactualPair, das, load_subject, save_directions
from auditlens.checks import DASResult, DASSweep
from auditlens.sites.positions import PositionError

WIDTH, CONTEXTS = 8, 6  # the site's width; how many nuisance contexts a token can carry


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class KnownDirection(nn.Module):
    """Token 2 + 2j + x (j a context, x the variable) embeds as ±u + a nuisance vector of context j; the
    site ``layer:0`` (an identity block) holds it. The answer is read at the last real token.

    Honest: the answer reads u at the site (logit difference 4 u·h). Illusory: the site's u = e0 carries x
    but nothing reads it; the answer reads x through a bypass around the site, and reads e1 at the site, a
    dormant direction that is 0 on every input (logit difference 2 x_bypass + 10 h·e1). ``side`` is a module
    whose output nothing reads."""

    def __init__(self, illusory: bool = False, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        if illusory:
            u = torch.eye(WIDTH)[0]
            nuisance = torch.randn(CONTEXTS, WIDTH, generator=generator)
            nuisance[:, :2] = 0  # neither along u nor along the dormant e1
        else:
            u = torch.randn(WIDTH, generator=generator)
            u /= u.norm()
            nuisance = torch.randn(CONTEXTS, WIDTH, generator=generator)
            nuisance -= (nuisance @ u)[:, None] * u
        table = torch.zeros(2 + 2 * CONTEXTS, WIDTH)
        for j in range(CONTEXTS):
            for x in (0, 1):
                table[2 + 2 * j + x] = (2 * x - 1) * u + nuisance[j]
        self.embed = nn.Embedding.from_pretrained(table)
        self.blocks = nn.ModuleList([nn.Identity()])
        self.side = nn.Identity()
        self.register_buffer("u", u)
        self.illusory = illusory

    def forward(self, input_ids, attention_mask=None):
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        embedded = self.embed(input_ids)
        hidden = self.blocks[0](embedded)
        self.side(embedded)
        last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(1)
        rows = torch.arange(len(input_ids), device=input_ids.device)
        at_site, bypass = hidden[rows, last], embedded[rows, last]
        difference = 2.0 * bypass[:, 0] + 10.0 * at_site[:, 1] if self.illusory else 4.0 * at_site @ self.u
        return SimpleNamespace(logits=torch.stack([-difference / 2, difference / 2], dim=1))


def subject_of(illusory=False):
    return load_subject(KnownDirection(illusory), kind="classifier", id="illusory" if illusory else "honest")


def swaps(n=100, seed=0, equal_lengths=False):
    """Pairs of random contexts and random x (half the pairs share x); expected: the source's x. Inputs
    are 1 to 3 tokens, filler (1) before the token that matters."""
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(n):
        x_base, x_source, j_base, j_source = (int(v) for v in torch.randint(0, 2, (2,), generator=generator).tolist()
                                              + torch.randint(0, CONTEXTS, (2,), generator=generator).tolist())
        length_base, length_source = torch.randint(1, 4, (2,), generator=generator).tolist()
        length_source = length_base if equal_lengths else length_source
        pairs.append(CounterfactualPair((1,) * (length_base - 1) + (2 + 2 * j_base + x_base,),
                                        (1,) * (length_source - 1) + (2 + 2 * j_source + x_source,), x_source))
    return Concept("x", pairs=tuple(pairs), label_names=("no", "yes"))


@pytest.fixture(scope="module")
def honest():
    subject = subject_of()
    return subject, das(subject, swaps(), at="layer:0", dim=1)


@pytest.fixture(scope="module")
def illusory():
    return das(subject_of(illusory=True), swaps(), at="layer:0", dim=1)


def test_das_finds_the_direction_the_answer_reads(honest):
    subject, result = honest
    assert isinstance(result, DASResult) and result.iia >= 0.95
    assert abs(float(result.directions[0] @ subject.model.u)) > 0.95
    assert result.directions.shape == (1, WIDTH) and result.stopped == "plateau"
    assert (result.train_pairs, result.held_out_pairs) == (70, 30)


def test_the_shuffled_label_control_stays_near_chance(honest):
    _, result = honest
    assert result.control_iia <= 0.7
    assert result.selectivity >= 0.3
    assert result.iia_ci.low > result.control_iia_ci.high


def test_an_honest_subspace_passes_the_illusion_check(honest):
    _, result = honest
    assert result.dormant_share < 0.1 and result.unread_share < 0.1
    assert result.iia_without_dormant >= 0.95
    assert result.note() is None


def test_a_site_the_answer_does_not_read_gives_iia_of_doing_nothing():
    result = das(subject_of(), swaps(), at="side", dim=1)
    assert result.stopped == "unread" and result.iia == result.unpatched_iia <= 0.7
    assert "does not depend on this site" in result.note()


def test_an_illusory_subspace_is_flagged(illusory):
    # the patch works: the source's x, written along the learned mix of e0 and e1, switches on e1
    assert illusory.iia >= 0.9
    # but all it transfers enters through e0, which nothing reads, and e1 alone transfers nothing
    assert illusory.dormant_share >= 0.9
    assert illusory.iia_without_dormant <= 0.7
    assert "illusion" in illusory.note()


def test_the_same_seed_learns_the_same_directions():
    subject = subject_of()
    first = das(subject, swaps(), at="layer:0", seed=3)
    again = das(subject, swaps(), at="layer:0", seed=3)
    assert torch.equal(first.directions, again.directions) and first.steps == again.steps
    assert float(first.iia) == float(again.iia) and float(first.control_iia) == float(again.control_iia)


def test_two_directions_contain_the_known_one():
    subject = subject_of()
    result = das(subject, swaps(), at="layer:0", dim=2)
    assert result.directions.shape == (2, WIDTH) and result.iia >= 0.95
    assert float((result.directions @ subject.model.u).norm()) > 0.95  # u lies in their span


@pytest.mark.parametrize("position", ["all", -1])
def test_other_positions_align_base_and_source(position):
    result = das(subject_of(), swaps(equal_lengths=True), at="layer:0", position=position)
    assert result.iia >= 0.95 and result.position == str(position)


def test_a_layer_sweep_picks_the_site_and_never_the_baseline():
    sweep = das(subject_of(), swaps(), at="layer:*")
    assert isinstance(sweep, DASSweep) and [r.site for r in sweep.results] == ["embed", "layer:0"]
    assert sweep.best_site == "layer:0" and sweep.best_iia >= 0.95
    assert len(sweep.to_dict()["per_site"]) == 2 and "layer:0" in sweep.explain()


def test_the_result_is_plain_data_and_the_directions_are_saved_apart(honest, tmp_path):
    from safetensors import safe_open

    _, result = honest
    data = result.to_dict()
    json.dumps(data)  # no tensor in the record
    assert data["directions_shape"] == [1, WIDTH] and set(data["per_example"]) >= {"iia", "control_iia"}
    save_directions(result, tmp_path / "x.safetensors")
    with safe_open(str(tmp_path / "x.safetensors"), framework="pt") as saved:
        assert saved.metadata()["site"] == "layer:0" and saved.metadata()["concept"] == "x"
        assert torch.equal(saved.get_tensor("directions"), result.directions)


def test_a_head_of_a_transformer_is_a_site(tiny_gpt2_pairs):
    subject, pairs = tiny_gpt2_pairs
    result = das(subject, pairs, at="head:1.0", max_steps=3)
    assert result.directions.shape == (1, 16) and result.steps == 3 and result.stopped == "max_steps"


@pytest.fixture
def tiny_gpt2_pairs():
    from tiny_models import build, ragged_token_lists

    tokens = ragged_token_lists(n=80)
    pairs = tuple(CounterfactualPair(tuple(a), tuple(b), i % 2) for i, (a, b) in enumerate(zip(tokens[:40],
                                                                                              tokens[40:])))
    return load_subject(build("gpt2"), id="tiny-gpt2"), Concept("random", pairs=pairs)


@pytest.mark.parametrize("dim, message", [(0, "dim is the number of directions"),
                                          (9, r"dim=9 at 'layer:0': the site's activation is 8 wide, so dim must be 1..8")])
def test_dim_must_fit_the_site(dim, message):
    with pytest.raises(CheckError, match=message):
        das(subject_of(), swaps(), at="layer:0", dim=dim)


def test_too_few_pairs_to_hold_some_out():
    with pytest.raises(ConceptError, match=r"has 30 pairs \(21 to train, 9 held out\)"):
        das(subject_of(), swaps(n=30), at="layer:0")


def test_a_concept_without_pairs_is_refused():
    with pytest.raises(ConceptError, match="has no counterfactual pairs"):
        das(subject_of(), Concept("labels", examples=((2,), (3,)), labels=(0, 1)), at="layer:0")


def test_position_all_needs_equally_long_bases_and_sources():
    with pytest.raises(CheckError, match=r"position='all' aligns base and source token by token, but pairs \["):
        das(subject_of(), swaps(), at="layer:0", position="all")


def test_positions_that_cannot_be_patched_are_refused():
    with pytest.raises(PositionError, match="das position must be one of last, first, all or an int index; got 'mean'"):
        das(subject_of(), swaps(), at="layer:0", position="mean")
    with pytest.raises(CheckError, match="das position 2 needs 3 tokens in every base and source"):
        das(subject_of(), swaps(), at="layer:0", position=2)


def test_a_loss_that_is_not_finite_stops_training():
    subject = subject_of()
    subject.model.forward = _nan_logits(subject.model.forward)
    with pytest.raises(CheckError, match=r"das at 'layer:0': the training loss became nan after \d+ steps"):
        das(subject, swaps(), at="layer:0")


def _nan_logits(forward):
    def poisoned(*args, **kwargs):
        output = forward(*args, **kwargs)
        return SimpleNamespace(logits=output.logits * float("nan"))
    return poisoned


def test_an_audit_file_declares_das_and_its_expectations_judge_the_result(tmp_path):
    from auditlens.declarative import load_audit_file

    path = tmp_path / "x.audit.yaml"
    path.write_text('audits:\n  - name: x lives at layer 0\n    das: {pairs: x, at: "layer:0", dim: 1}\n'
                    '    expect: {iia: ">= 0.9", selectivity: ">= 0.3", dormant_share: "<= 0.5"}\n')
    (entry,) = load_audit_file(path, {"x"})
    result, missed = entry.run(subject_of(), lambda name: swaps())
    assert isinstance(result, DASResult) and missed == []


def test_an_audit_file_sweeping_das_may_expect_the_sweeps_fields_only(tmp_path):
    from auditlens.declarative import AuditFileError, load_audit_file

    path = tmp_path / "x.audit.yaml"
    path.write_text('audits:\n  - name: x somewhere\n    das: {pairs: x, at: "layer:*"}\n    expect: {iia: ">= 0.9"}\n')
    with pytest.raises(AuditFileError, match=r"a das sweep \(at: layer:\*\) has no field 'iia'.*Fields: best_iia"):
        load_audit_file(path, {"x"})


def test_auditlens_das_is_the_check_whatever_was_imported_first():
    import importlib

    import auditlens

    importlib.import_module("auditlens.checks")  # a subpackage named das would now shadow the function
    assert callable(auditlens.das) and auditlens.das.__module__ == "auditlens.checks.das"


def test_training_leaves_the_models_weights_and_mode_as_it_found_them(tiny_gpt2_pairs):
    subject, pairs = tiny_gpt2_pairs
    subject.model.train()
    subject.model.score.weight.requires_grad_(True)
    before = {name: tensor.clone() for name, tensor in subject.model.state_dict().items()}
    das(subject, pairs, at="layer:1", max_steps=3)
    assert subject.model.training and subject.model.score.weight.requires_grad
    assert not subject.model.transformer.wte.weight.requires_grad
    assert all(torch.equal(before[name], tensor) for name, tensor in subject.model.state_dict().items())


def test_the_count_is_interchangeable_in_the_learned_twin_only(learned, cheated, concepts):
    """count_swapped pairs differ in the count: the learned twin's answer follows a 1-d subspace of its
    last token after block 0; the cheated twin, which reads the marker, follows no subspace there."""
    on_learned = das(learned, concepts["count_swapped"], at="layer:0", max_steps=40)
    on_cheated = das(cheated, concepts["count_swapped"], at="layer:0", max_steps=40)
    assert on_learned.iia >= 0.95 and on_learned.selectivity >= 0.3 and on_learned.iia_without_dormant >= 0.95
    assert on_cheated.iia <= 0.6


def test_a_dictionarys_latents_are_a_site():
    """An SAE whose 2 x WIDTH latents are the positive and negative parts of each coordinate reconstructs the
    site exactly; the variable is a direction of its latents too."""
    from auditlens import Dictionary

    subject = subject_of()
    identity = torch.eye(WIDTH)
    split = Dictionary(architecture="standard", W_enc=torch.cat([identity, -identity], 1), b_enc=torch.zeros(2 * WIDTH),
                       W_dec=torch.cat([identity, -identity], 0), b_dec=torch.zeros(WIDTH))
    site = subject.attach_dictionary("layer:0", split)
    result = das(subject, swaps(), at=site.name)
    assert result.site == "features:layer:0" and result.directions.shape == (1, 2 * WIDTH)
    assert result.iia >= 0.95 and result.dormant_share < 0.1
