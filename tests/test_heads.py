"""Attention heads as sites (issue 18, item 1): head:L.H is head H's slice of the input of block L's
attention output projection, read and edited with a pre-hook, on every architecture we support."""

import pytest
import torch

from auditlens import ActivationCache, SiteError, ablate, capture, load_subject, run
from auditlens.interventions import MeanAblation, ZeroAblation
from auditlens.sites.resolve import expand_sites
from tiny_models import ARCHS, build

PROJECTION = {"gpt2": "transformer.h.1.attn.c_proj", "bert": "bert.encoder.layer.1.attention.output.dense",
              "llama": "model.layers.1.self_attn.o_proj", "distilbert": "distilbert.transformer.layer.1.attention.out_lin"}


def projection_input(subject, inputs, interventions=()):
    """What block 1's output projection received (after any edit), read with a plain torch forward hook."""
    seen = []
    module = subject.model.get_submodule(PROJECTION[subject.id])
    handle = module.register_forward_hook(lambda m, args, output: seen.append(args[0].detach().clone()))
    try:
        run(subject, inputs, sites=["layer:2"], interventions=interventions, cache=None, batch_size=len(inputs))
    finally:
        handle.remove()
    return seen[-1]


@pytest.fixture(params=ARCHS)
def tiny_subject(request):
    return load_subject(build(request.param), id=request.param)


def test_the_heads_of_a_block_side_by_side_are_what_its_output_projection_reads(tiny_subject):
    subject = tiny_subject
    inputs = subject.encode([[3, 4, 5, 6], [7, 8, 9, 10]])  # no padding: "all" keeps every position as is
    heads = capture(subject, inputs, [s.name for s in expand_sites(subject.model, "head:1.*")], position="all",
                    cache=None)
    assert len(heads) == 2 and subject.site("head:1.1").module_path == PROJECTION[subject.id]
    torch.testing.assert_close(torch.cat(list(heads.values()), dim=-1), projection_input(subject, inputs))


def test_ablating_a_head_edits_its_slice_only(tiny_subject):
    subject = tiny_subject
    inputs = subject.encode([[3, 4, 5, 6], [7, 8, 9, 10]])
    clean = projection_input(subject, inputs)
    zeroed = projection_input(subject, inputs, [ZeroAblation(subject.site("head:1.0"))])
    width = clean.shape[-1] // 2
    assert zeroed[..., :width].abs().max() == 0
    torch.testing.assert_close(zeroed[..., width:], clean[..., width:])
    mean = torch.full((width,), 0.5)
    replaced = projection_input(subject, inputs, [MeanAblation(subject.site("head:1.1"), mean)])
    torch.testing.assert_close(replaced[..., width:], mean.expand_as(replaced[..., width:]))
    torch.testing.assert_close(replaced[..., :width], clean[..., :width])


def test_each_head_has_its_own_cache_entry(tiny_subject):
    subject = tiny_subject
    inputs, store = subject.encode([[3, 4, 5, 6]]), ActivationCache()
    first = capture(subject, inputs, "head:1.0", position="last", cache=store)
    second = capture(subject, inputs, "head:1.1", position="last", cache=store)
    assert not torch.equal(first, second)
    torch.testing.assert_close(second, capture(subject, inputs, "head:1.1", position="last", cache=None))


@pytest.mark.parametrize("name, message", [
    ("head:9.0", "has 3 blocks, so the layer must be in -3..2"),
    ("head:1.7", "each block has 2 heads, so the head must be in -2..1"),
    ("head:1", "not of the form head:LAYER.HEAD"),
    ("head:1.*", "a pattern: give it to a sweep"),
])
def test_a_bad_head_site_says_what_would_be_valid(name, message):
    subject = load_subject(build("gpt2"))
    with pytest.raises(SiteError, match=message.replace("*", r"\*")):
        subject.site(name)


def test_head_patterns_expand_to_every_head_asked_for():
    model = build("llama")
    assert [s.name for s in expand_sites(model, "head:*.*")] == [f"head:{l}.{h}" for l in range(3) for h in range(2)]
    assert [s.name for s in expand_sites(model, "head:-1.*")] == ["head:-1.0", "head:-1.1"]


def test_ablate_takes_a_head(learned, concepts):
    result = ablate(learned, concepts["more_a_than_b"], at="head:1.0", kind="zero")
    assert result.site == "head:1.0" and 0.0 <= float(result.accuracy_drop) <= 1.0


def test_an_audit_file_names_a_head(audit_repo):
    audit_repo.makefile(".audit.yaml", heads="""
audits:
  - name: the first head of block 1 can be removed
    ablate: {concept: more_a_than_b, at: "head:1.0", kind: zero}
    expect: {accuracy_drop: "<= 1.0"}
""")
    result = audit_repo.runpytest("--model", "fixture:count-learned", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


MLP_PROJECTION = {"gpt2": "transformer.h.1.mlp.c_proj", "bert": "bert.encoder.layer.1.output.dense",
                  "llama": "model.layers.1.mlp.down_proj", "distilbert": "distilbert.transformer.layer.1.ffn.lin2"}


def test_neurons_are_the_mlp_hidden_units_its_output_projection_reads(tiny_subject):
    subject = tiny_subject
    inputs = subject.encode([[3, 4, 5, 6], [7, 8, 9, 10]])
    seen = []
    module = subject.model.get_submodule(MLP_PROJECTION[subject.id])
    handle = module.register_forward_hook(lambda m, args, output: seen.append(args[0].detach().clone()))
    try:
        every = capture(subject, inputs, "neurons:1", position="all", cache=None)
    finally:
        handle.remove()
    torch.testing.assert_close(every, seen[-1])
    one = capture(subject, inputs, "neuron:1.5", position="all", cache=None)
    torch.testing.assert_close(one, every[..., 5:6])
    assert [s.name for s in expand_sites(subject.model, "neurons:*")] == ["neurons:0", "neurons:1", "neurons:2"]
    width = every.shape[-1]  # 128 for the GPT-2 (4 d), 64 for the others
    with pytest.raises(SiteError, match=f"each MLP has {width} hidden units, so the unit must be in -{width}"):
        subject.site(f"neuron:1.{width}")


def test_zeroing_a_neuron_silences_that_unit_only(tiny_subject):
    subject = tiny_subject
    inputs = subject.encode([[3, 4, 5, 6]])
    clean = capture(subject, inputs, "neurons:1", position="all", cache=None)
    seen = []
    module = subject.model.get_submodule(MLP_PROJECTION[subject.id])
    handle = module.register_forward_hook(lambda m, args, output: seen.append(args[0].detach().clone()))
    try:
        run(subject, inputs, sites=["layer:2"], interventions=[ZeroAblation(subject.site("neuron:1.5"))], cache=None)
    finally:
        handle.remove()
    assert seen[-1][..., 5].abs().max() == 0
    torch.testing.assert_close(seen[-1][..., :5], clean[..., :5])
