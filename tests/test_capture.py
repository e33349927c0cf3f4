import pytest
import torch

from auditlens import ActivationCache, CaptureError, capture, load_subject, run
from tiny_models import build, ragged_token_lists


def _one_by_one(subject, inputs, site, position):
    """Reference: each example alone, unpadded."""
    rows = []
    for i in range(len(inputs)):
        single = subject.encode([inputs.input_ids[i, : int(inputs.lengths[i])].tolist()])
        rows.append(capture(subject, single, site, position=position, cache=None))
    return torch.cat(rows)


@pytest.mark.parametrize("position", ["last", "first", "mean", 0, 2, -1, -2])
def test_reduction_is_padding_aware(tiny, ragged, position):
    # given a padded batch, when reduced at hook time, then it equals each example run alone
    batched = capture(tiny, ragged, "layer:1", position=position, batch_size=4)
    torch.testing.assert_close(batched, _one_by_one(tiny, ragged, "layer:1", position), rtol=1e-4, atol=1e-5)


def test_all_positions_has_shape_n_t_d_and_zero_padding(tiny, ragged):
    activations = capture(tiny, ragged, "layer:0", position="all", batch_size=3)
    assert activations.shape == (*ragged.input_ids.shape, 32)
    assert activations[~ragged.attention_mask.bool()].abs().sum() == 0


def test_batch_size_does_not_change_results(tiny, ragged):
    small = capture(tiny, ragged, "layer:2", batch_size=2, cache=None)
    large = capture(tiny, ragged, "layer:2", batch_size=64, cache=None)
    torch.testing.assert_close(small, large, rtol=1e-5, atol=1e-6)


def test_several_sites_cost_one_forward_pass_per_batch(tiny, ragged):
    capture(tiny, ragged, ["embed", "layer:0", "attn:1", "mlp:2"], batch_size=5)
    assert tiny.forward_passes == 2  # 10 examples in batches of 5


def test_second_request_is_served_from_the_cache(tiny, ragged):
    first = capture(tiny, ragged, ["layer:0", "layer:1"])
    passes = tiny.forward_passes
    second = capture(tiny, ragged, ["layer:1", "layer:0"])
    assert tiny.forward_passes == passes
    torch.testing.assert_close(first["layer:1"], second["layer:1"])


def test_cache_is_keyed_by_data_site_and_reduction(tiny, ragged):
    cache = ActivationCache(read_ahead_bytes=0)  # read-ahead would answer the last two (tests/test_read_ahead.py)
    capture(tiny, ragged, "layer:0", cache=cache)
    passes = tiny.forward_passes
    capture(tiny, ragged, "layer:0", position="mean", cache=cache)  # another reduction
    capture(tiny, ragged.select(range(5)), "layer:0", cache=cache)  # other data
    capture(tiny, ragged, "layer:1", cache=cache)  # another site
    assert tiny.forward_passes == passes + 3


def test_cache_is_keyed_by_model_fingerprint(arch):
    # two models with different weights never share an entry
    cache = ActivationCache()
    a, b = load_subject(build(arch, seed=0)), load_subject(build(arch, seed=1))
    inputs = a.encode(ragged_token_lists())
    capture(a, inputs, "layer:0", cache=cache)
    capture(b, inputs, "layer:0", cache=cache)
    assert b.forward_passes == 1 and a.fingerprint != b.fingerprint


def test_cache_evicts_least_recently_used_beyond_its_budget(tiny, ragged):
    one_entry = 10 * 32 * 4
    cache = ActivationCache(max_bytes=2 * one_entry)
    for site in ("layer:0", "layer:1", "layer:2"):
        capture(tiny, ragged, site, cache=cache)
    assert len(cache) == 2 and cache.nbytes <= 2 * one_entry


def test_readout_and_sites_share_the_forward_pass(tiny, ragged, arch):
    if tiny.kind != "classifier":
        pytest.skip("classifier readout")
    from auditlens import ClassifierLogits

    result = run(tiny, ragged, sites=["layer:0"], readout=ClassifierLogits(), batch_size=64)
    with torch.no_grad():
        expected = tiny.model(input_ids=ragged.input_ids, attention_mask=ragged.attention_mask).logits
    assert tiny.forward_passes == 1
    torch.testing.assert_close(result.scores, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("position", ["middle", 1.5, None, True])
def test_bad_position_is_refused_before_any_forward_pass(tiny, ragged, position):
    with pytest.raises(CaptureError, match="position must be one of last, first, mean, max, all or an int"):
        capture(tiny, ragged, "layer:0", position=position)
    assert tiny.forward_passes == 0


def test_index_beyond_an_example_names_it(tiny):
    inputs = tiny.encode([[3, 4, 5, 6, 7], [3, 4]])
    with pytest.raises(CaptureError, match=r"position 3 is outside examples \[1\]"):
        capture(tiny, inputs, "layer:0", position=3)


def test_non_finite_activations_are_reported_with_the_site(tiny, ragged):
    from auditlens.interventions import Transform

    poison = Transform(tiny.site("layer:0"), lambda h: h * float("nan"), name="nan")
    with pytest.raises(CaptureError, match=r"activations at 'layer:1' hold NaN or inf for examples \[0, 1"):
        run(tiny, ragged, sites=["layer:1"], interventions=[poison])


def test_capture_runs_without_gradients(tiny, ragged):
    activations = capture(tiny, ragged, "layer:0")
    assert not activations.requires_grad and activations.device.type == "cpu"
    assert activations.dtype == torch.float32


def test_captured_activations_can_be_edited_in_place(tiny, ragged):
    activations = capture(tiny, ragged, "layer:0", position="all", cache=None)
    activations += 1.0  # an inference-mode tensor would refuse this
    assert not activations.is_inference()


class _TwiceCalled(torch.nn.Module):
    """A model that runs one block twice per forward pass (weight sharing)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(50, 8)
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(8, 8)])

    def forward(self, input_ids, attention_mask=None):
        hidden = self.embed(input_ids)
        return self.blocks[0](self.blocks[0](hidden))


def test_a_module_called_twice_per_pass_is_named_not_mixed_up():
    subject = load_subject(_TwiceCalled(), kind="encoder", id="twice")
    inputs = subject.encode([[1, 2, 3], [4, 5]])
    with pytest.raises(CaptureError, match=r"once per forward pass \(4 of 2 rows\)"):
        capture(subject, inputs, "blocks.0")


def test_a_tensor_is_not_inputs(tiny):
    with pytest.raises(CaptureError, match=r"inputs must be Inputs, as subject.encode\(.*got Tensor of shape \(3, 4\)"):
        capture(tiny, torch.randint(2, 30, (3, 4)), "layer:0")


def test_results_can_stay_on_the_device_and_equal_the_host_copy(tiny, ragged):
    on_host = run(tiny, ragged, sites=["layer:0", "layer:1"], position="all", cache=None)
    kept = run(tiny, ragged, sites=["layer:0", "layer:1"], position="all", cache=None, keep_on_device=True)
    for site in ("layer:0", "layer:1"):
        assert kept.activations[site].device == tiny.device and on_host.activations[site].device.type == "cpu"
        torch.testing.assert_close(kept.activations[site].cpu(), on_host.activations[site], rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("position", ["all", "last", "mean", 1])
def test_capture_on_cuda_equals_capture_on_cpu(position):
    model = build("gpt2")
    cpu, gpu = load_subject(model, id="cpu"), load_subject(build("gpt2"), device="cuda", id="gpu")
    gpu.model.load_state_dict(model.state_dict())
    inputs = cpu.encode(ragged_token_lists())
    expected = capture(cpu, inputs, "layer:1", position=position, cache=None)
    got = capture(gpu, gpu.encode(ragged_token_lists()), "layer:1", position=position, cache=ActivationCache())
    assert got.device.type == "cpu" and got.is_pinned()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    kept = run(gpu, gpu.encode(ragged_token_lists()), sites=["layer:1"], position=position, cache=None,
               keep_on_device=True).activations["layer:1"]
    assert kept.device.type == "cuda"
