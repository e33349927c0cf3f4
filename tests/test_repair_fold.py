"""Folding an audit's edits into the weights (``auditlens.repair``): the repaired model computes what the
hooked edit computes, exports as a plain transformers model, and keeps as hooks what no weight can hold."""

import hashlib
import types
from functools import cache

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
)

from auditlens import (
    CheckError,
    Clamp,
    LinearEraser,
    MeanAblation,
    PartialMean,
    Patch,
    ProjectOut,
    SiteError,
    Steer,
    Transform,
    ZeroAblation,
    intervene,
    load_subject,
)
from auditlens.repair import repair
from auditlens.sites.resolve import input_width
from auditlens.sites.site import Site
from tiny_models import LAYERS, build, ragged_token_lists

FOLD_ARCHS = ("gpt2", "bert", "llama")
PRE_LN = ("gpt2", "llama")
AUTO = {"gpt2": AutoModelForSequenceClassification, "bert": AutoModelForSequenceClassification,
        "llama": AutoModelForCausalLM}
HIDDEN, HEAD = 32, 16  # the tiny models' residual width and head width


@cache
def subject(arch):
    """One tiny subject per architecture for the whole module: repair never changes it (tested below)."""
    return load_subject(build(arch), id=f"tiny-{arch}")


def inputs_for(subject):
    return subject.encode(ragged_token_lists(seed=3, n=4))  # padded: lengths differ


def outputs(model, inputs):
    """The logits and every hidden state of one forward pass."""
    with torch.no_grad():
        out = model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask, output_hidden_states=True)
    return [out.logits, *out.hidden_states]


def max_gap(left, right):
    return max(float((a - b).abs().max()) for a, b in zip(left, right, strict=True))


def random(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def eraser(width, seed):
    """A LEACE eraser fitted on random width-wide activations whose first unit carries the label."""
    features = random(128, width, seed=seed)
    return LinearEraser.fit(features, (features[:, 0] > 0).long(), 2)


def mlp_width(s):
    return input_width(s.model.get_submodule(s.site("neurons:0").module_path))


EDITS = {
    "zero a head": lambda s: ZeroAblation(s.site("head:1.0")),
    "mean-ablate a head": lambda s: MeanAblation(s.site("head:1.1"), random(HEAD, seed=1)),
    "zero a neuron": lambda s: ZeroAblation(s.site("neuron:1.3")),
    "mean-ablate the neurons": lambda s: MeanAblation(s.site("neurons:0"), random(mlp_width(s), seed=2)),
    "zero an attention sublayer": lambda s: ZeroAblation(s.site("attn:1")),
    "mean-ablate an MLP sublayer": lambda s: MeanAblation(s.site("mlp:2"), random(HIDDEN, seed=3)),
    "project out of a head": lambda s: ProjectOut(s.site("head:0.1"), random(2, HEAD, seed=4)),
    "project out of an attention sublayer": lambda s: ProjectOut(s.site("attn:0"), random(HIDDEN, seed=5)),
    "LEACE at the neurons": lambda s: Transform(s.site("neurons:1"), eraser(mlp_width(s), seed=6)),
    "LEACE at an MLP sublayer": lambda s: Transform(s.site("mlp:1"), eraser(HIDDEN, seed=7)),
    "steer an attention sublayer": lambda s: Steer(s.site("attn:2"), random(HIDDEN, seed=8), alpha=2.0),
    "clamp a direction of an MLP sublayer": lambda s: Clamp(s.site("mlp:0"), random(2, HIDDEN, seed=13),
                                                             random(HIDDEN, seed=14)),
    "clamp a head obliquely": lambda s: oblique_clamp(s.site("head:1.1"), HEAD),
    "mean-ablate some neurons": lambda s: PartialMean(s.site("neurons:2"), random(mlp_width(s), seed=9),
                                                      ((0, 5), (10, 12))),
}


def oblique_clamp(site, width):
    """A Clamp read obliquely, as repair fits it: R = (D S Dᵀ)⁻¹ D S for a positive definite S."""
    directions = torch.linalg.qr(random(width, 2, seed=19).double()).Q.T
    spread = random(width, width, seed=20).double()
    spread = spread @ spread.T + torch.eye(width, dtype=torch.float64)
    reading = torch.linalg.solve(directions @ spread @ directions.T, directions @ spread)
    return Clamp(site, directions, random(width, seed=21), reading)


def hooked_outputs(s, inputs, *edits):
    with intervene(s, *edits):
        return outputs(s.model, inputs)


def everywhere(s, direction):
    """ProjectOut at every write to the residual stream: the embeddings and each attention and MLP output."""
    return [ProjectOut(s.site("embed"), direction)] + [
        ProjectOut(s.site(f"{kind}:{index}"), direction) for index in range(LAYERS) for kind in ("attn", "mlp")]


@pytest.mark.parametrize("arch", FOLD_ARCHS)
@pytest.mark.parametrize("kind", EDITS)
def test_a_folded_edit_computes_what_the_hooked_edit_computes(arch, kind):
    # given a tiny model and one edit of a head, neuron or sublayer
    s = subject(arch)
    inputs, edit = inputs_for(s), EDITS[kind](s)
    # when it is folded into the weights
    repaired = repair(s, edit)
    # then nothing stays a hook, and the repaired model equals the hooked edit, not the unedited model
    assert repaired.hooked == () and len(repaired.folded) == 1
    folded = outputs(repaired.model, inputs)
    assert max_gap(folded, hooked_outputs(s, inputs, edit)) < 1e-5
    assert max_gap(folded, outputs(s.model, inputs)) > 1e-3


@pytest.mark.parametrize("arch", PRE_LN)
def test_projecting_out_of_the_residual_stream_orthogonalises_every_writer(arch):
    # given a pre-LN model and a direction to remove from the residual stream
    s = subject(arch)
    inputs, direction = inputs_for(s), random(HIDDEN, seed=10)
    # when the projection at layer:1 is folded
    repaired = repair(s, ProjectOut(s.site("layer:1"), direction))
    # then it equals the projection hooked at every write (the global edit), and says so
    folded = outputs(repaired.model, inputs)
    assert max_gap(folded, hooked_outputs(s, inputs, *everywhere(s, direction))) < 1e-5
    assert max_gap(folded, outputs(s.model, inputs)) > 1e-3
    (edit,) = repaired.folded
    assert "residual stream" in edit.edit and "every write" in edit.note
    assert len(edit.parameters) >= 1 + 2 * LAYERS


@pytest.mark.parametrize("arch", PRE_LN)
def test_a_clamp_at_embed_folds_into_the_embeddings_alone(arch):
    # given a pre-LN model and a clamp of two directions where the residual stream begins
    s = subject(arch)
    inputs = inputs_for(s)
    edit = Clamp(s.site("embed"), random(2, HIDDEN, seed=15), random(HIDDEN, seed=16))
    # when it is folded
    repaired = repair(s, edit)
    # then only embedding tables changed, and the model equals the clamp hooked at embed (not at every write)
    (folded,) = repaired.folded
    assert folded.parameters and all("emb" in name or "wte" in name or "wpe" in name for name in folded.parameters)
    assert max_gap(outputs(repaired.model, inputs), hooked_outputs(s, inputs, edit)) < 1e-5
    assert max_gap(outputs(repaired.model, inputs), outputs(s.model, inputs)) > 1e-3


def test_a_clamp_at_a_post_ln_embed_stays_a_hook_with_its_reason():
    s = subject("bert")
    repaired = repair(s, Clamp(s.site("embed"), random(HIDDEN, seed=17), random(HIDDEN, seed=18)))
    (hooked,) = repaired.hooked
    assert "post-LN" in hooked.reason and "LayerNorm" in hooked.reason and repaired.folded == ()
    assert "embed:sum" in hooked.reason  # where the same edit does fold


POST_LN = ("bert", "distilbert")
EMBEDDING_SUM_EDITS = {
    "clamp": lambda s: Clamp(s.site("embed:sum"), random(2, HIDDEN, seed=22), random(HIDDEN, seed=23)),
    "oblique clamp": lambda s: oblique_clamp(s.site("embed:sum"), HIDDEN),
    "project out": lambda s: ProjectOut(s.site("embed:sum"), random(2, HIDDEN, seed=24)),
    "LEACE": lambda s: Transform(s.site("embed:sum"), eraser(HIDDEN, seed=25)),
    "mean-ablate": lambda s: MeanAblation(s.site("embed:sum"), random(HIDDEN, seed=26)),
    "steer": lambda s: Steer(s.site("embed:sum"), random(HIDDEN, seed=27), alpha=1.5),
}


@cache
def post_ln_subject(arch):
    return load_subject(build(arch), id=f"tiny-{arch}")


@pytest.mark.parametrize("arch", POST_LN)
@pytest.mark.parametrize("kind", EMBEDDING_SUM_EDITS)
def test_an_edit_of_a_post_ln_models_embedding_sum_folds_into_its_tables(arch, kind, tmp_path):
    # given a post-LN model, whose embed is a LayerNorm's output, and an affine edit of the sum that LayerNorm reads
    s = post_ln_subject(arch)
    inputs, edit = inputs_for(s), EMBEDDING_SUM_EDITS[kind](s)
    # when it is folded and exported
    repaired = repair(s, edit)
    reloaded = AutoModelForSequenceClassification.from_pretrained(repaired.save_pretrained(tmp_path / "m")).eval()
    # then only embedding tables changed, and the model equals the hooked edit (not the unedited model)
    assert repaired.hooked == ()
    (folded,) = repaired.folded
    assert folded.parameters and all("embeddings" in name and "LayerNorm" not in name for name in folded.parameters)
    hooked = hooked_outputs(s, inputs, edit)
    assert max_gap(outputs(repaired.model, inputs), hooked) < 1e-5
    assert max_gap(outputs(reloaded, inputs), hooked) < 1e-5
    assert max_gap(outputs(repaired.model, inputs), outputs(s.model, inputs)) > 1e-3


def test_a_tied_readout_is_untied_so_it_keeps_the_direction(tmp_path):
    # given a GPT-2 LM whose output embeddings are the input embeddings
    torch.manual_seed(0)
    s = load_subject(GPT2LMHeadModel(GPT2Config(n_layer=LAYERS, n_embd=HIDDEN, n_head=2, vocab_size=40,
                                                n_positions=32, pad_token_id=0, bos_token_id=1, eos_token_id=1)))
    assert s.model.lm_head.weight is s.model.transformer.wte.weight
    inputs, direction = inputs_for(s), random(HIDDEN, seed=11)
    # when a residual direction is folded out and exported
    repaired = repair(s, ProjectOut(s.site("layer:0"), direction))
    reloaded = AutoModelForCausalLM.from_pretrained(repaired.save_pretrained(tmp_path / "lm")).eval()
    # then the readout was untied and both equal the hooked global edit
    assert "untied" in repaired.folded[0].note
    hooked = hooked_outputs(s, inputs, *everywhere(s, direction))
    assert max_gap(outputs(repaired.model, inputs), hooked) < 1e-5
    assert max_gap(outputs(reloaded, inputs), hooked) < 1e-5


def test_projecting_out_of_a_post_ln_residual_stream_is_refused():
    # given BERT, which applies LayerNorm after every residual add
    s = subject("bert")
    # when a residual direction is folded, then it is refused with the reason
    with pytest.raises(CheckError, match="post-LN.*LayerNorm") as error:
        repair(s, ProjectOut(s.site("layer:1"), random(HIDDEN, seed=12)))
    assert "layer:1" in str(error.value)


def state_hash(model):
    digest = hashlib.blake2b()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode() + tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def some_edits(s, arch):
    """A head zeroed, a head mean-ablated (Llama gains biases for it) and, pre-LN, a residual direction."""
    edits = [ZeroAblation(s.site("head:1.0")), MeanAblation(s.site("head:0.1"), random(HEAD, seed=13)),
             Transform(s.site("neurons:2"), eraser(mlp_width(s), seed=14))]
    return edits + ([ProjectOut(s.site("layer:1"), random(HIDDEN, seed=15))] if arch in PRE_LN else [])


@pytest.mark.parametrize("arch", FOLD_ARCHS)
def test_the_export_loads_in_plain_transformers_and_computes_the_repair(arch, tmp_path):
    # given a repair of several edits
    s = subject(arch)
    before = state_hash(s.model)
    inputs = inputs_for(s)
    repaired = repair(s, *some_edits(s, arch))
    # when it is exported and loaded back without auditlens
    directory = repaired.save_pretrained(tmp_path / "repaired")
    reloaded = AUTO[arch].from_pretrained(directory).eval()
    # then it computes what the folded model computes, and the subject's own model is unchanged
    assert (directory / "model.safetensors").is_file() and (directory / "config.json").is_file()
    assert max_gap(outputs(reloaded, inputs), outputs(repaired.model, inputs)) < 1e-6
    assert state_hash(s.model) == before
    assert max_gap(outputs(reloaded, inputs), outputs(s.model, inputs)) > 1e-3


def test_an_existing_directory_is_refused(tmp_path):
    # given a repair and a directory that exists
    s = subject("gpt2")
    repaired = repair(s, ZeroAblation(s.site("head:0.0")))
    # when it is exported there, then it is refused and nothing is written
    with pytest.raises(CheckError, match="exists"):
        repaired.save_pretrained(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_repair_with_hooked_edits_refuses_to_export_naming_them(tmp_path):
    # given a repair where one edit only applies at the last position
    s = subject("gpt2")
    repaired = repair(s, ZeroAblation(s.site("head:0.0")), ZeroAblation(s.site("mlp:1"), positions="last"))
    # when it is exported, then it is refused naming the edit and why
    with pytest.raises(CheckError, match=r"(?s)zero mlp:1.*positions='last'"):
        repaired.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("where", "make", "message"), [
    ("head:1.0", lambda s: MeanAblation(s.site("head:1.0"), torch.zeros(7)), r"'head:1.0'.*\(7,\).*16 wide"),
    ("attn:0", lambda s: ProjectOut(s.site("attn:0"), torch.ones(31)), r"'attn:0'.*31 wide.*32 wide"),
    ("neurons:1", lambda s: Transform(s.site("neurons:1"), eraser(HIDDEN, seed=16)), r"'neurons:1'.*32.*128"),
])
def test_a_vector_of_the_wrong_width_is_an_error_naming_both_widths(where, make, message):
    # given an edit whose mean, direction or eraser does not fit its site
    s = subject("gpt2")
    # when it is folded, then the error names the site, the width given and the width expected
    with pytest.raises(CheckError, match=message):
        repair(s, make(s))


def test_a_dictionary_feature_site_stays_a_hook_with_its_reason():
    # given an edit of a sparse dictionary's latents
    s = subject("gpt2")
    site = Site("features:layer:1", s.site("layer:1").module_path, dictionary=types.SimpleNamespace(key="sae"))
    edit = ZeroAblation(site)
    # when it is folded, then it stays a hook, saying why
    repaired = repair(s, edit)
    assert repaired.folded == ()
    (hooked,) = repaired.hooked
    assert hooked.edit is edit and "dictionary" in hooked.reason and "nonlinear" in hooked.reason


@pytest.mark.parametrize(("make", "reason"), [
    (lambda s: ZeroAblation(s.site("layer:1")), "LayerNorm"),
    (lambda s: Steer(s.site("attn:1"), torch.ones(HIDDEN), positions="last"), "positions='last'"),
    (lambda s: Patch(s.site("mlp:1"), torch.zeros(4, 11, HIDDEN), torch.ones(4, 11)), "other inputs"),
    (lambda s: Transform(s.site("mlp:1"), torch.tanh, name="tanh"), "arbitrary function"),
])
def test_an_edit_no_weight_can_hold_stays_a_hook(make, reason):
    # given an edit that is no fixed affine map of a linear map's input or output
    s = subject("gpt2")
    edit = make(s)
    # when it is folded, then it is kept as a hook with its reason, never dropped
    repaired = repair(s, edit)
    assert repaired.folded == () and [h.edit for h in repaired.hooked] == [edit]
    assert reason in repaired.hooked[0].reason


def test_an_edit_at_the_same_place_as_a_hook_stays_a_hook_to_keep_their_order():
    # given a foldable edit of attn:1 and an unfoldable one at the same place
    s = subject("gpt2")
    mean = MeanAblation(s.site("attn:1"), torch.ones(HIDDEN))
    last = ZeroAblation(s.site("attn:1"), positions="last")
    # when both are folded, then both stay hooks and the weights are untouched
    repaired = repair(s, mean, last, ZeroAblation(s.site("head:2.0")))
    assert [h.edit for h in repaired.hooked] == [mean, last]
    assert "same place" in repaired.hooked[0].reason
    assert [f.edit for f in repaired.folded] == ["zero head:2.0"]


def test_edits_of_one_input_fold_in_the_order_they_apply():
    # given two edits of the same head: a zero, then a mean (the mean wins when hooked)
    s = subject("llama")
    inputs = inputs_for(s)
    edits = (ZeroAblation(s.site("head:1.0")), MeanAblation(s.site("head:1.0"), random(HEAD, seed=17)))
    # when both are folded, then the repaired model equals the hooks in that order
    folded = outputs(repair(s, *edits).model, inputs)
    assert max_gap(folded, hooked_outputs(s, inputs, *edits)) < 1e-5
    assert max_gap(folded, hooked_outputs(s, inputs, *reversed(edits))) > 1e-3


def test_a_site_the_model_lacks_is_a_site_error():
    # given a site whose module is not in the model, when it is folded, then SiteError names it
    s = subject("gpt2")
    with pytest.raises(SiteError, match="no.such.module"):
        repair(s, ZeroAblation(Site("mine", "no.such.module")))


def test_a_projection_tied_to_another_stays_a_hook():
    # given a model whose MLP output projection of block 1 is the same module as block 0's
    s = load_subject(build("gpt2"))
    s.model.transformer.h[1].mlp.c_proj = s.model.transformer.h[0].mlp.c_proj
    # when an edit of it is folded, then it stays a hook: folding would edit block 0 too
    repaired = repair(s, ZeroAblation(s.site("neuron:1.0")))
    assert repaired.folded == () and "tied to transformer.h.0.mlp.c_proj.weight" in repaired.hooked[0].reason
