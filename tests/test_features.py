"""Dictionary features as sites (issue 28): features:SITE and feature:SITE/F read a dictionary's latents,
and every edit of them keeps the reconstruction error: x' = x + decode(f') - decode(f)."""

import json
from pathlib import Path

import pytest
import torch

from auditlens import SiteError, ablate, attribute, capture, load_subject, patch, steer
from auditlens.checks import ablate_tied, faithfulness, necessity, tied_units
from auditlens.circuits import universe
from auditlens.concepts.files import load_concept
from auditlens.dictionaries import Dictionary, DictionaryError
from auditlens.errors import CheckError
from auditlens.interventions import ZeroAblation
from auditlens.sites.hooks import intervene

ROOT = Path(__file__).parent.parent
PROBES = ROOT / "probes"


def random_dictionary(d_in: int, width: int = 32, k: int = 4, seed: int = 0, d_out: int | None = None) -> Dictionary:
    generator = torch.Generator().manual_seed(seed)
    decoder = torch.nn.functional.normalize(torch.randn(width, d_out or d_in, generator=generator), dim=-1)
    encoder = decoder.T.clone() if d_out is None else torch.randn(d_in, width, generator=generator) / d_in ** 0.5
    return Dictionary("topk", encoder, torch.zeros(width), decoder, 0.1 * torch.randn(d_out or d_in, generator=generator),
                      k=k, apply_b_dec_to_input=d_out is None, transcoder=d_out is not None)


@pytest.fixture(scope="module")
def attached():
    """A subject of its own: attachments live on the model, so the session's shared twins stay bare."""
    model = load_subject("fixture:count-learned")
    model.attach_dictionary("layer:0", random_dictionary(model.hidden_size))
    return model


@pytest.fixture(scope="module")
def data():
    return load_concept(PROBES / "more_a_than_b.yaml")


def test_features_read_the_encoded_activations(attached, data):
    inputs = data.inputs(attached)
    raw = capture(attached, inputs, "layer:0", position="all")
    latents = capture(attached, inputs, "features:layer:0", position="all")
    dictionary = attached.dictionaries["layer:0"]
    assert torch.allclose(latents, dictionary.encode(raw), atol=1e-6)
    one = capture(attached, inputs, "feature:layer:0/5", position="all")
    assert one.shape[-1] == 1 and torch.equal(one[..., 0], latents[..., 5])


def test_an_edit_of_latents_keeps_the_reconstruction_error(attached, data):
    """Zeroing latent 5 moves the site by exactly -f_5 W_dec[5]; what the dictionary misses stays."""
    inputs = data.inputs(attached)
    dictionary = attached.dictionaries["layer:0"]
    raw = capture(attached, inputs, "layer:0", position="all")
    edited = capture(attached, inputs, "layer:0", position="all",
                     interventions=[ZeroAblation(attached.site("feature:layer:0/5"))])
    expected = raw - dictionary.encode(raw)[..., 5:6] * dictionary.W_dec[5]
    assert torch.allclose(edited, expected, atol=1e-5)
    assert not torch.allclose(edited, dictionary.decode(dictionary.encode(edited)), atol=1e-3)  # error not dropped


def test_an_edit_that_changes_no_latent_changes_nothing(attached, data):
    inputs = data.inputs(attached)
    clean = attached.model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask).logits

    class Same(ZeroAblation):
        def edit(self, activation, batch):
            return activation.clone()

    with torch.no_grad(), intervene(attached, Same(attached.site("features:layer:0"))):
        after = attached.model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask).logits
    assert torch.allclose(clean, after, atol=1e-5)


def test_every_check_takes_feature_sites(attached, data):
    pairs = load_concept(PROBES / "count_swapped.yaml")
    assert float(ablate(attached, data, "features:layer:0", "zero").margin_change) < -0.1  # every latent out
    assert 0 <= float(patch(attached, pairs, "features:layer:0").iia) <= 1
    assert float(steer(attached, data, "features:layer:0").shift_per_alpha) > 0
    one = ablate(attached, data, "feature:layer:0/5", "mean")
    assert one.site == "feature:layer:0/5" and one.to_dict()["feature_examples"][0]["feature"] == "feature:layer:0/5"


def test_attribution_ranks_latents_as_real_patching_does(attached):
    pairs = load_concept(PROBES / "count_swapped.yaml")
    result = attribute(attached, pairs, "features:layer:0", validate=True)
    assert len(result.components) == attached.dictionaries["layer:0"].d_sae
    assert result.components[7] == "feature:layer:0/7" and result.rank_correlation > 0.5
    assert result.feature_examples and result.feature_examples[0][0] == result.top[0]


def test_a_circuit_of_latents_ranges_over_its_dictionary(attached, data):
    circuit = ["feature:layer:0/1", "feature:layer:0/2"]
    assert universe(attached, necessity(attached, data, circuit).components and
                    __import__("auditlens").Circuit.of(circuit)) == ["features:layer:0"]
    whole = faithfulness(attached, data, ["features:layer:0"])
    assert whole.faithfulness == pytest.approx(1.0) or whole.to_dict()["thresholds"] == []


def test_units_tied_to_a_concept_are_named_as_sites(attached, data):
    units = tied_units(attached, data, "features:layer:0", n=3)
    assert len(units.names) == 3 and all(name.startswith("feature:layer:0/") for name in units.names)
    assert all(abs(a - 0.5) >= abs(b - 0.5) for a, b in zip(units.aurocs, units.aurocs[1:]))
    assert tied_units(attached, data, "neurons:1", n=2).names[0].startswith("neuron:1.")
    result = ablate_tied(attached, data, "features:layer:0", data, n=2)
    assert result.units == units.names[:2] and "most tied to" in result.headline()


@pytest.mark.parametrize("name, message", [
    ("features:layer:1", "no dictionary is attached at layer:1"),
    ("feature:layer:0/9999", "0..31"),
    ("feature:layer:0/*", "is a pattern"),
    ("features:layer:0/3", "not a feature site"),
])
def test_a_wrong_feature_site_says_what_would_be_valid(attached, name, message):
    with pytest.raises((SiteError, DictionaryError), match=message.replace("*", r"\*").replace(".", r"\.")):
        attached.site(name)


def test_a_dictionary_of_another_width_is_refused_at_attach():
    model = load_subject("fixture:count-learned")
    with pytest.raises(SiteError, match="width 32.*64 wide"):
        model.attach_dictionary("layer:0", random_dictionary(32))
    with pytest.raises(SiteError, match="a whole site"):
        model.attach_dictionary("head:0.1", random_dictionary(16))


def test_a_transcoder_reads_one_site_and_writes_another(data):
    model = load_subject("fixture:count-learned")
    with pytest.raises(SiteError, match="say where it writes"):
        model.attach_dictionary("layer:0", random_dictionary(64, d_out=64 + 0, seed=1).__class__(
            "topk", torch.randn(64, 32), torch.zeros(32), torch.randn(32, 64), torch.zeros(64), k=4, transcoder=True))
    transcoder = random_dictionary(64, width=32, k=4, seed=2, d_out=64)
    model.attach_dictionary("layer:0", transcoder, writes_to="mlp:1")
    inputs = data.inputs(model)
    read = capture(model, inputs, "layer:0", position="all")
    out = capture(model, inputs, "mlp:1", position="all")
    latents = transcoder.encode(read)
    busiest = int((latents != 0).sum(dim=(0, 1)).argmax())  # a latent that fires on these inputs
    assert torch.allclose(capture(model, inputs, f"feature:layer:0/{busiest}", position="all")[..., 0],
                          latents[..., busiest], atol=1e-6)
    edited = capture(model, inputs, "mlp:1", position="all",
                     interventions=[ZeroAblation(model.site(f"feature:layer:0/{busiest}"))])
    # the write at mlp:1 moves by -f W_dec[latent], f read from layer:0, which the edit does not reach
    expected = out - latents[..., busiest:busiest + 1] * transcoder.W_dec[busiest]
    assert torch.allclose(edited, expected, atol=1e-5) and not torch.allclose(edited, out)


def test_attribution_over_transcoder_latents_is_refused_clearly(data):
    model = load_subject("fixture:count-learned")
    model.attach_dictionary("layer:0", random_dictionary(64, width=32, k=4, seed=2, d_out=64), writes_to="mlp:1")
    with pytest.raises(CheckError, match="transcoder"):
        attribute(model, load_concept(PROBES / "count_swapped.yaml"), "features:layer:0")


def test_a_trained_dictionary_round_trips_through_the_cli(tmp_path, capsys, monkeypatch):
    from auditlens.cli import main

    monkeypatch.chdir(ROOT)
    out = tmp_path / "sae"
    assert main(["dictionary", "train", "layer:0", "--model", "fixture:count-learned", "--data", "more_a_than_b",
                 "--width", "64", "--k", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "explained variance" in printed and "L0" in printed and "dead latents" in printed and "->" in printed
    config = json.loads((out / "cfg.json").read_text())
    assert config["architecture"] == "topk" and config["d_sae"] == 64 and config["k"] == 4
    model = load_subject("fixture:count-learned")
    site = model.attach_dictionary("layer:0", out)
    assert site.dictionary.d_sae == 64


def test_a_dictionary_is_attached_where_its_file_says_it_reads(tmp_path):
    from auditlens.dictionaries import save_saelens

    model = load_subject("fixture:count-learned")
    save_saelens(random_dictionary(64), tmp_path / "sae", hook_name="blocks.0.hook_resid_post")
    assert model.attach_dictionary(None, tmp_path / "sae").name == "features:layer:0"
    with pytest.raises(SiteError, match="was made for layer:0.*not layer:1"):
        model.attach_dictionary("layer:1", tmp_path / "sae")


def test_a_sparsify_transcoder_reads_its_modules_input_and_writes_its_output(data):
    model = load_subject("fixture:count-learned")
    transcoder = random_dictionary(64, width=32, k=4, seed=3, d_out=64)
    transcoder.reads_input = True
    site = model.attach_dictionary("mlp:1", transcoder)
    assert site.reads_input and site.writes_to.name == "mlp:1" and not site.writes_to.reads_input
    inputs = data.inputs(model)
    latents = capture(model, inputs, "feature:mlp:1/2", position="last")[:, 0]
    assert torch.allclose(latents, transcoder.encode(capture(model, inputs, "transformer.h.1.ln_2", "last"))[:, 2],
                          atol=1e-5)


def test_discover_drafts_an_audit_of_latents_with_its_dictionaries_map(tmp_path, data):
    from auditlens.declarative.discover import discover
    from auditlens.dictionaries import save_saelens
    from auditlens.features.fit import fit_dictionary

    model = load_subject("fixture:count-learned")
    dictionary, _ = fit_dictionary(model, "layer:0", [data], width=32, k=4, position="all")
    save_saelens(dictionary, tmp_path / "saes" / "layer-0", hook_name="layer:0")
    model.attach_dictionary("layer:0", tmp_path / "saes" / "layer-0")
    text, found = discover(model, data, load_concept(PROBES / "count_swapped.yaml"), over="features:layer:0", top=3,
                           dictionaries={"layer:0": "saes/layer-0"})
    assert all(member.startswith("feature:layer:0/") for member in found["circuit"])
    draft = tmp_path / "draft.audit.yaml"
    draft.write_text(text)
    from auditlens.declarative import load_audit_file

    entries = load_audit_file(draft)
    assert entries and entries[0].dictionaries[0].site == "layer:0"


def test_resample_ablation_and_minimality_take_latents(attached, data):
    from auditlens.checks import minimality

    resampled = ablate(attached, data, "features:layer:0", "resample")
    assert resampled.site == "features:layer:0" and float(resampled.margin_change) != 0
    members = ["feature:layer:0/1", "feature:layer:0/2", "feature:layer:0/3"]
    result = minimality(attached, data, members)
    assert [member for member, _ in result.member_drops] == members and result.weakest_member in members


def test_reads_of_many_latents_of_one_dictionary_encode_once_per_pass(attached, data, monkeypatch):
    dictionary = attached.dictionaries["layer:0"]
    calls = []
    original = type(dictionary).encode
    monkeypatch.setattr(type(dictionary), "encode", lambda self, x: calls.append(1) or original(self, x))
    inputs = data.inputs(attached)
    latents = capture(attached, inputs, [f"feature:layer:0/{i}" for i in range(6)], position="last", cache=None)
    batches = len(list(inputs.batches(64)))
    assert len(calls) == batches and torch.equal(latents["feature:layer:0/4"][:, 0],
                                                 original(dictionary, capture(attached, inputs, "layer:0"))[:, 4])
