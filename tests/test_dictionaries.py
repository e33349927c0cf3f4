"""Sparse dictionaries: SAELens and sparsify folders made by hand from their formats load and encode
as those libraries do (expected numbers worked out by hand), save_saelens round-trips, bad files get
errors that name them, and train_topk is deterministic and finds planted features."""

import json

import pytest
import torch
from safetensors.torch import save_file

from auditlens.dictionaries import (
    Dictionary,
    DictionaryError,
    load_dictionary,
    max_cosine_recovery,
    save_saelens,
    site_for_hook,
    train_topk,
)

# d_in = 3, d_sae = 4; every expected number below is worked out from these by hand
W_ENC = [[1.0, 0.0, 0.0, 1.0],
         [0.0, 1.0, 0.0, -1.0],
         [0.0, 0.0, 1.0, 1.0]]
B_ENC = [0.0, -0.5, 0.5, 0.0]
W_DEC = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
B_DEC = [0.5, 0.0, -1.0]
THRESHOLD = [1.0, 2.0, 0.5, 2.0]
X = [[1.0, 2.0, 3.0], [-1.0, 0.25, 0.0]]
# pre = (x - b_dec * apply) @ W_enc + b_enc:
#   apply false: [1, 1.5, 3.5, 2] and [-1, -0.25, 0.5, -1.25]
#   apply true:  x - b_dec = [0.5, 2, 4] and [-1.5, 0.25, 1]  ->  [0.5, 1.5, 4.5, 2.5] and [-1.5, -0.25, 1.5, -0.75]
EXPECTED = {
    ("standard", False): [[1.0, 1.5, 3.5, 2.0], [0.0, 0.0, 0.5, 0.0]],
    ("standard", True): [[0.5, 1.5, 4.5, 2.5], [0.0, 0.0, 1.5, 0.0]],
    # kept where pre > threshold, strictly: 1 > 1 and 2 > 2 are false
    ("jumprelu", False): [[0.0, 0.0, 3.5, 0.0], [0.0, 0.0, 0.0, 0.0]],
    ("jumprelu", True): [[0.0, 0.0, 4.5, 2.5], [0.0, 0.0, 1.5, 0.0]],
    # k = 2: the two largest pre-activations, then relu (-0.25 is kept by topk and zeroed by relu)
    ("topk", False): [[0.0, 0.0, 3.5, 2.0], [0.0, 0.0, 0.5, 0.0]],
    ("topk", True): [[0.0, 0.0, 4.5, 2.5], [0.0, 0.0, 1.5, 0.0]],
}


def tensor(values):
    return torch.tensor(values, dtype=torch.float32)


def write_saelens(directory, cfg, tensors):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cfg.json").write_text(json.dumps(cfg))
    save_file({name: tensor(value) if isinstance(value, list) else value for name, value in tensors.items()},
              str(directory / "sae_weights.safetensors"))
    return directory


def saelens_v6_cfg(architecture, apply, **extra):
    cfg = {"architecture": architecture, "d_in": 3, "d_sae": 4, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": apply, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": "6.5.1", "hook_name": "blocks.1.hook_resid_post", "model_name": "gpt2"}}
    if architecture == "topk":
        cfg["k"] = 2
    return {**cfg, **extra}


def saelens_weights(architecture):
    weights = {"W_enc": W_ENC, "b_enc": B_ENC, "W_dec": W_DEC, "b_dec": B_DEC}
    return {**weights, "threshold": THRESHOLD} if architecture == "jumprelu" else weights


def write_sparsify(directory, *, transcode=False, skip=False, d_out=3):
    directory.mkdir(parents=True, exist_ok=True)
    cfg = {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True, "num_latents": 4, "k": 2,
           "multi_topk": False, "skip_connection": skip, "transcode": transcode, "d_in": 3}
    (directory / "cfg.json").write_text(json.dumps(cfg))
    weights = {"encoder.weight": tensor(W_ENC).T.contiguous(), "encoder.bias": tensor(B_ENC)}
    if d_out == 3:
        weights |= {"W_dec": tensor(W_DEC), "b_dec": tensor(B_DEC)}
    else:  # a transcoder into 2 dimensions; W_skip is stored [d_out, d_in]
        weights |= {"W_dec": tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]]), "b_dec": tensor([0.5, -0.5])}
    if skip:
        weights["W_skip"] = tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    save_file(weights, str(directory / "sae.safetensors"))
    return directory


# --- SAELens files made by hand ---------------------------------------------------------------------------

@pytest.mark.parametrize("apply", [False, True])
@pytest.mark.parametrize("architecture", ["standard", "jumprelu", "topk"])
def test_a_hand_made_saelens_file_encodes_as_saelens_does(tmp_path, architecture, apply):
    # given a SAELens 6 folder written from the format description
    folder = write_saelens(tmp_path / "sae", saelens_v6_cfg(architecture, apply), saelens_weights(architecture))
    # when it is loaded and encodes two rows
    dictionary = load_dictionary(folder)
    latents = dictionary.encode(tensor(X))
    # then the latents are the ones worked out by hand
    assert torch.allclose(latents, tensor(EXPECTED[architecture, apply]))
    assert (dictionary.architecture, dictionary.format, dictionary.apply_b_dec_to_input) == (architecture, "saelens",
                                                                                             apply)
    assert dictionary.hook_name == "blocks.1.hook_resid_post" and not dictionary.is_transcoder
    assert dictionary.source == (folder / "sae_weights.safetensors").resolve()


def test_decode_is_the_latents_times_the_decoder_plus_its_bias(tmp_path):
    # given a loaded SAE
    dictionary = load_dictionary(write_saelens(tmp_path / "sae", saelens_v6_cfg("standard", False),
                                               saelens_weights("standard")))
    # when latents [1, 0, 0, 2] are decoded: [1, 0, 0] + 2 * [1, 1, 1] + b_dec [0.5, 0, -1]
    out = dictionary.decode(tensor([1.0, 0.0, 0.0, 2.0]))
    # then
    assert torch.allclose(out, tensor([3.5, 2.0, 1.0]))


def test_an_old_flat_saelens_config_names_topk_by_its_activation_function(tmp_path):
    # given a config from before SAELens 6: no architecture, k in activation_fn_kwargs, hook_name at the top
    cfg = {"d_in": 3, "d_sae": 4, "dtype": "float32", "hook_name": "blocks.0.hook_resid_pre", "hook_layer": 0,
           "apply_b_dec_to_input": True, "normalize_activations": None, "activation_fn_str": "topk",
           "activation_fn_kwargs": {"k": 2}, "sae_lens_training_version": "3.13.0"}
    dictionary = load_dictionary(write_saelens(tmp_path / "old", cfg, saelens_weights("topk")))
    # then it is a topk SAE with k 2, encoding as one
    assert (dictionary.architecture, dictionary.k, dictionary.hook_name) == ("topk", 2, "blocks.0.hook_resid_pre")
    assert torch.allclose(dictionary.encode(tensor(X)), tensor(EXPECTED["topk", True]))


def test_an_old_config_without_architecture_is_standard_and_centres_its_input(tmp_path):
    cfg = {"d_in": 3, "d_sae": 4, "dtype": "float32", "hook_point": "blocks.2.hook_mlp_out"}
    dictionary = load_dictionary(write_saelens(tmp_path / "old", cfg, saelens_weights("standard")))
    # SAELens before 6.0 defaulted apply_b_dec_to_input to true
    assert (dictionary.architecture, dictionary.apply_b_dec_to_input) == ("standard", True)
    assert dictionary.hook_name == "blocks.2.hook_mlp_out"
    assert torch.allclose(dictionary.encode(tensor(X)), tensor(EXPECTED["standard", True]))


def test_a_config_without_architecture_that_is_not_an_old_saelens_one_is_refused(tmp_path):
    cfg = {"d_in": 3, "d_sae": 4, "dtype": "float32", "metadata": {"hook_name": "blocks.0.hook_resid_post"}}
    with pytest.raises(DictionaryError, match="names no architecture; add"):
        load_dictionary(write_saelens(tmp_path / "sae", cfg, saelens_weights("standard")))


def test_a_jumprelu_training_checkpoint_stores_log_threshold(tmp_path):
    # given jumprelu weights with log_threshold rather than threshold
    weights = saelens_weights("standard") | {"log_threshold": torch.log(tensor(THRESHOLD))}
    dictionary = load_dictionary(write_saelens(tmp_path / "j", saelens_v6_cfg("jumprelu", False), weights))
    # then the threshold is its exponential, and encoding is unchanged
    assert torch.allclose(dictionary.threshold, tensor(THRESHOLD))
    assert torch.allclose(dictionary.encode(tensor(X)), tensor(EXPECTED["jumprelu", False]))


def test_rescale_acts_by_decoder_norm_is_folded_exactly(tmp_path):
    # given a topk SAE whose decoder rows are not unit norm and that rescales by them (SAELens' option)
    w_dec = tensor(W_DEC) * tensor([[2.0], [0.5], [1.0], [3.0]])
    cfg = saelens_v6_cfg("topk", False, rescale_acts_by_decoder_norm=True)
    dictionary = load_dictionary(write_saelens(tmp_path / "r", cfg, saelens_weights("topk") | {"W_dec": w_dec}))
    # then encode and decode follow SAELens' TopKSAE: pre * ||W_dec row||, topk, relu; decode f / norm @ W_dec
    norms = w_dec.norm(dim=-1)
    pre = tensor(X) @ tensor(W_ENC) + tensor(B_ENC)
    scaled = pre * norms
    values, indices = scaled.topk(2, dim=-1)
    expected = torch.zeros_like(scaled).scatter(-1, indices, values.relu())
    assert torch.allclose(dictionary.encode(tensor(X)), expected)
    assert torch.allclose(dictionary.decode(expected), (expected / norms) @ w_dec + tensor(B_DEC))


def test_a_saelens_transcoder_loads_as_a_transcoder(tmp_path):
    # given a SAELens skip transcoder 3 -> 2 (W_skip stored [d_out, d_in], added as x @ W_skip.T)
    cfg = saelens_v6_cfg("skip_transcoder", False, d_out=2)
    cfg["metadata"] |= {"hook_name": "blocks.2.ln2.hook_normalized", "hook_name_out": "blocks.2.hook_mlp_out"}
    weights = {"W_enc": W_ENC, "b_enc": B_ENC, "W_dec": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]],
               "b_dec": [0.5, -0.5], "W_skip": [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]}
    dictionary = load_dictionary(write_saelens(tmp_path / "t", cfg, weights))
    # then it maps one hook to another, and its output adds the skip term
    assert dictionary.is_transcoder and (dictionary.d_in, dictionary.d_out) == (3, 2)
    assert (dictionary.hook_name, dictionary.hook_name_out) == ("blocks.2.ln2.hook_normalized",
                                                                "blocks.2.hook_mlp_out")
    x = tensor([1.0, 2.0, 3.0])
    latents = dictionary.encode(x)  # standard, input not centred: [1, 1.5, 3.5, 2]
    assert torch.allclose(latents, tensor([1.0, 1.5, 3.5, 2.0]))
    # decode: 1*[1,0] + 1.5*[0,1] + 3.5*[1,1] + 2*[2,0] + [0.5,-0.5] = [9, 4.5]; skip: [x0, x2] = [1, 3]
    assert torch.allclose(dictionary.decode(latents), tensor([9.0, 4.5]))
    assert torch.allclose(dictionary.reconstruct(x), tensor([10.0, 7.5]))


# --- sparsify folders made by hand --------------------------------------------------------------------------

def test_a_hand_made_sparsify_folder_encodes_as_sparsify_does(tmp_path):
    # given one sparsify hookpoint folder: sparsify subtracts b_dec, takes relu, then the top 2
    dictionary = load_dictionary(write_sparsify(tmp_path / "layers.3"))
    # then relu([-1.5, -0.25, 1.5, -0.75]) = [0, 0, 1.5, 0]: its top 2 is 1.5 and a zero
    assert torch.allclose(dictionary.encode(tensor(X)), tensor([[0.0, 0.0, 4.5, 2.5], [0.0, 0.0, 1.5, 0.0]]))
    assert (dictionary.format, dictionary.hook_name, dictionary.k) == ("sparsify", "layers.3", 2)
    assert not dictionary.is_transcoder and not dictionary.reads_input


def test_a_sparsify_transcoder_reads_its_module_input_uncentred(tmp_path):
    # given a sparsify transcoder 3 -> 2 with a skip connection
    dictionary = load_dictionary(write_sparsify(tmp_path / "layers.6.mlp", transcode=True, skip=True, d_out=2))
    # then it is a transcoder reading the input of layers.6.mlp; the input is not centred by b_dec
    assert dictionary.is_transcoder and dictionary.reads_input
    assert (dictionary.hook_name, dictionary.hook_name_out, dictionary.d_out) == ("layers.6.mlp", "layers.6.mlp", 2)
    x = tensor([1.0, 2.0, 3.0])
    latents = dictionary.encode(x)  # top 2 of relu([1, 1.5, 3.5, 2])
    assert torch.allclose(latents, tensor([0.0, 0.0, 3.5, 2.0]))
    # 3.5 * [1, 1] + 2 * [2, 0] + [0.5, -0.5] = [8, 3]; plus the skip [x0, x2] = [1, 3]
    assert torch.allclose(dictionary.reconstruct(x), tensor([9.0, 6.0]))


def test_relu_then_topk_equals_topk_then_relu():
    # sparsify keeps the top k of relu(pre); SAELens relus the top k of pre: the same tensor
    pre = torch.randn(500, 40, generator=torch.Generator().manual_seed(0)) - 1.0
    values, indices = pre.topk(6, dim=-1)
    saelens_order = torch.zeros_like(pre).scatter(-1, indices, values.relu())
    values, indices = pre.relu().topk(6, dim=-1)
    sparsify_order = torch.zeros_like(pre).scatter(-1, indices, values)
    assert torch.equal(saelens_order, sparsify_order)


# --- writing SAELens ----------------------------------------------------------------------------------------

def random_dictionary(architecture, generator, d_in=6, d_sae=10, d_out=6, **extra):
    weights = {"W_enc": torch.randn(d_in, d_sae, generator=generator), "b_enc": torch.randn(d_sae, generator=generator),
               "W_dec": torch.randn(d_sae, d_out, generator=generator), "b_dec": torch.randn(d_out, generator=generator)}
    if architecture == "jumprelu":
        weights["threshold"] = torch.rand(d_sae, generator=generator)
    return Dictionary(architecture=architecture, **weights, k=3 if architecture == "topk" else None, **extra)


@pytest.mark.parametrize("architecture", ["standard", "jumprelu", "topk"])
def test_save_saelens_round_trips(tmp_path, architecture):
    # given a dictionary and some inputs
    generator = torch.Generator().manual_seed(1)
    original = random_dictionary(architecture, generator, apply_b_dec_to_input=True, hook_name="blocks.0.hook_resid_post")
    x = torch.randn(4, 7, 6, generator=generator)
    # when it is written for SAELens and read back
    folder = save_saelens(original, tmp_path / "out", extra_metadata={"model_name": "tiny"})
    loaded = load_dictionary(folder)
    # then it encodes and decodes the same, and says the same things
    assert torch.allclose(loaded.encode(x), original.encode(x), atol=1e-6)
    assert torch.allclose(loaded.reconstruct(x), original.reconstruct(x), atol=1e-6)
    assert (loaded.architecture, loaded.k, loaded.hook_name) == (architecture, original.k, "blocks.0.hook_resid_post")
    assert loaded.key == original.key
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["metadata"]["model_name"] == "tiny" and cfg["normalize_activations"] == "none"


def test_save_saelens_round_trips_a_trained_skip_transcoder(tmp_path):
    generator = torch.Generator().manual_seed(2)
    original = random_dictionary("standard", generator, d_out=4, W_skip=torch.randn(6, 4, generator=generator),
                                 hook_name="blocks.1.ln2.hook_normalized", hook_name_out="blocks.1.hook_mlp_out")
    loaded = load_dictionary(save_saelens(original, tmp_path / "tc"))
    x = torch.randn(5, 6, generator=generator)
    assert json.loads((tmp_path / "tc" / "cfg.json").read_text())["architecture"] == "skip_transcoder"
    assert loaded.is_transcoder and loaded.hook_name_out == "blocks.1.hook_mlp_out"
    assert torch.allclose(loaded.reconstruct(x), original.reconstruct(x), atol=1e-6)


# --- errors that name the file and say what to do -------------------------------------------------------------

def test_an_unknown_architecture_names_the_file_and_the_supported_ones(tmp_path):
    folder = write_saelens(tmp_path / "g", saelens_v6_cfg("gated", False), saelens_weights("standard"))
    with pytest.raises(DictionaryError) as error:
        load_dictionary(folder)
    assert str((folder / "cfg.json").resolve()) in str(error.value)
    assert "'gated'" in str(error.value) and "standard, jumprelu, topk" in str(error.value)


@pytest.mark.parametrize("value", ["expected_average_only_in", "layer_norm", "constant_norm_rescale", True])
def test_an_unsupported_normalization_is_refused(tmp_path, value):
    cfg = saelens_v6_cfg("standard", False, normalize_activations=value)
    folder = write_saelens(tmp_path / "n", cfg, saelens_weights("standard"))
    with pytest.raises(DictionaryError) as error:
        load_dictionary(folder)
    message = str(error.value)
    assert str((folder / "cfg.json").resolve()) in message and repr(value) in message and "'none'" in message


def test_nan_weights_name_the_file_and_the_tensor(tmp_path):
    weights = saelens_weights("standard") | {"W_enc": [[1.0, float("nan"), 0.0, 1.0], *W_ENC[1:]]}
    folder = write_saelens(tmp_path / "nan", saelens_v6_cfg("standard", False), weights)
    with pytest.raises(DictionaryError) as error:
        load_dictionary(folder)
    assert str((folder / "sae_weights.safetensors").resolve()) in str(error.value)
    assert "W_enc holds 1 NaN" in str(error.value)


def test_a_config_that_disagrees_with_the_weights_names_both(tmp_path):
    folder = write_saelens(tmp_path / "s", saelens_v6_cfg("standard", False, d_sae=5), saelens_weights("standard"))
    with pytest.raises(DictionaryError) as error:
        load_dictionary(folder)
    message = str(error.value)
    assert str((folder / "cfg.json").resolve()) in message and "d_sae=5" in message and "(3, 4)" in message
    assert str((folder / "sae_weights.safetensors").resolve()) in message


def test_a_pickle_is_never_loaded_and_the_error_says_how_to_convert(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "cfg.json").write_text(json.dumps(saelens_v6_cfg("standard", False)))
    torch.save({"W_enc": tensor(W_ENC)}, folder / "sae_weights.pt")
    with pytest.raises(DictionaryError) as error:
        load_dictionary(folder)
    message = str(error.value)
    assert str((folder / "sae_weights.pt").resolve()) in message and "never unpickles" in message
    assert "safetensors.torch.save_file(torch.load(" in message and "sae_weights.safetensors" in message


def test_a_missing_directory_says_what_is_expected(tmp_path):
    with pytest.raises(DictionaryError) as error:
        load_dictionary(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(error.value) and "sae_weights.safetensors" in str(error.value)


def test_a_folder_without_weights_lists_what_it_holds(tmp_path):
    (tmp_path / "cfg.json").write_text("{}")
    with pytest.raises(DictionaryError) as error:
        load_dictionary(tmp_path)
    assert "holds cfg.json;" in str(error.value) and "sae.safetensors (one sparsify" in str(error.value)


def test_malformed_json_names_the_file_and_line(tmp_path):
    folder = write_saelens(tmp_path / "j", {}, saelens_weights("standard"))
    (folder / "cfg.json").write_text('{\n  "d_in": 3,\n  "d_sae": 4,,\n}')
    with pytest.raises(DictionaryError, match=r"cfg.json is not valid JSON: line 3"):
        load_dictionary(folder)


def test_a_folder_of_sparsify_hookpoints_lists_them(tmp_path):
    for hookpoint in ("layers.10", "layers.2", "layers.2.mlp"):
        write_sparsify(tmp_path / "run" / hookpoint)
    with pytest.raises(DictionaryError) as error:
        load_dictionary(tmp_path / "run")
    assert "layers.2, layers.2.mlp, layers.10;" in str(error.value)
    assert f"load_dictionary('{tmp_path / 'run' / 'layers.2'}')" in str(error.value)


@pytest.mark.parametrize("index", [4, -1, True, 1.5])
def test_a_latent_out_of_range_names_where_and_the_range(index):
    dictionary = random_dictionary("standard", torch.Generator().manual_seed(0), d_sae=4)
    with pytest.raises(DictionaryError, match=r"^audit.yaml, audit 'x': latent .* give an integer in 0\.\.3$"):
        dictionary.check_latent(index, "audit.yaml, audit 'x'")
    assert dictionary.check_latent(3, "anywhere") == 3


def test_construction_refuses_inconsistent_weights():
    w_enc, b_enc, w_dec, b_dec = torch.zeros(6, 10), torch.zeros(10), torch.zeros(10, 6), torch.zeros(6)
    with pytest.raises(DictionaryError, match=r"k=11 must be an integer in 1\.\.d_sae=10"):
        Dictionary("topk", w_enc, b_enc, w_dec, b_dec, k=11)
    with pytest.raises(DictionaryError, match="threshold"):
        Dictionary("jumprelu", w_enc, b_enc, w_dec, b_dec)
    with pytest.raises(DictionaryError, match=r"b_enc has shape \(9,\), expected \(10,\)"):
        Dictionary("standard", w_enc, torch.zeros(9), w_dec, b_dec)
    with pytest.raises(DictionaryError, match="the dictionary made in memory .* b_dec holds 1 NaN"):
        Dictionary("standard", w_enc, b_enc, w_dec, torch.tensor([0.0, 0, 0, 0, 0, float("nan")]))


def test_encode_keeps_leading_dims_and_the_callers_dtype():
    dictionary = random_dictionary("topk", torch.Generator().manual_seed(0))
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    latents = dictionary.encode(x)
    assert latents.shape == (2, 5, 10) and latents.dtype == torch.float64
    assert ((latents > 0).sum(-1) <= 3).all()
    assert dictionary.to(dtype=torch.float64) is dictionary.to(dtype=torch.float64)
    with pytest.raises(DictionaryError, match=r"x has shape \(2, 5\), but this dictionary takes \[\.\.\., d_in=6\]"):
        dictionary.encode(torch.zeros(2, 5))


# --- hook names ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hook_name, site", [
    ("blocks.3.hook_resid_post", "layer:3"),
    ("blocks.0.hook_resid_pre", "embed"),
    ("blocks.4.hook_resid_pre", "layer:3"),
    ("blocks.2.hook_mlp_out", "mlp:2"),
    ("blocks.5.hook_attn_out", "attn:5"),
    ("blocks.2.ln2.hook_normalized", None),
    ("blocks.1.attn.hook_z", None),
    ("hook_embed", None),
    ("layers.6", "layer:6"),
    ("layers.6.mlp", "mlp:6"),
    ("layers.6.self_attn", "attn:6"),
    ("layers.6.attn", "attn:6"),
    ("model.layers.3", "model.layers.3"),
    ("transformer.h.1.mlp", "transformer.h.1.mlp"),
    ("layer:3", "layer:3"),  # a dictionary trained here names its auditlens site
])
def test_site_for_hook(hook_name, site):
    assert site_for_hook(hook_name, 12) == site


def test_site_for_hook_refuses_a_block_the_model_lacks():
    with pytest.raises(DictionaryError, match=r"names block 12, but the model has 12 blocks \(0\.\.11\)"):
        site_for_hook("blocks.12.hook_resid_post", n_layers=12)


# --- training ------------------------------------------------------------------------------------------------

def planted_data(rows, seed, d=16, features=34):
    """Rows that sum 3 to 5 of 34 random unit directions in R^16, magnitudes U(0.5, 1.5), plus an offset."""
    generator = torch.Generator().manual_seed(seed)
    planted = torch.nn.functional.normalize(torch.randn(features, d, generator=generator), dim=-1)
    active = torch.randint(3, 6, (rows, 1), generator=generator)
    chosen = torch.rand(rows, features, generator=generator).argsort(-1).argsort(-1) < active
    magnitudes = 0.5 + torch.rand(rows, features, generator=generator)
    return (chosen * magnitudes) @ planted + 2.0 * torch.randn(d, generator=generator), planted


@pytest.fixture(scope="module")
def trained(one_thread):
    x, planted = planted_data(8192, seed=100)
    calls = []
    dictionary, stats = train_topk(x, width=128, k=5, seed=0, progress=lambda *a: calls.append(a),
                                   hook_name="blocks.0.hook_resid_post")
    return dictionary, stats, planted, calls


def test_train_topk_recovers_planted_features(trained):
    dictionary, stats, planted, _ = trained
    assert max_cosine_recovery(planted, dictionary) >= 0.9
    assert stats.explained_variance > 0.8


def test_train_topk_reports_sane_stats_and_a_cpu_dictionary(trained):
    dictionary, stats, _, calls = trained
    assert 0 < stats.l0 <= 5 and 0.0 <= stats.dead_fraction <= 1.0 and stats.seconds > 0
    assert calls[-1][:2] == (stats.steps, stats.steps) and len(calls) <= 201
    assert (dictionary.architecture, dictionary.k, dictionary.apply_b_dec_to_input, dictionary.format) == (
        "topk", 5, True, "auditlens")
    assert dictionary.W_enc.device.type == "cpu" and dictionary.hook_name == "blocks.0.hook_resid_post"
    assert torch.allclose(dictionary.W_dec.norm(dim=-1), torch.ones(128), atol=1e-5)


def test_train_topk_is_deterministic_under_its_seed(one_thread):
    x, _ = planted_data(1024, seed=7)
    first, _ = train_topk(x, width=32, k=4, seed=3, steps=40, batch_size=128)
    again, _ = train_topk(x, width=32, k=4, seed=3, steps=40, batch_size=128)
    other, _ = train_topk(x, width=32, k=4, seed=4, steps=40, batch_size=128)
    assert all(torch.equal(getattr(first, n), getattr(again, n)) for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
    assert first.key == again.key and first.key != other.key
    assert not torch.equal(first.W_dec, other.W_dec)


@pytest.mark.parametrize("activations, width, k, message", [
    (torch.zeros(0, 16), 32, 4, "it is empty"),
    (torch.tensor([[1.0, float("nan")], [1.0, 2.0], [float("inf"), 0.0]]), 8, 2, "2 of 3 activation rows hold NaN"),
    (torch.randn(64, 16), 8, 8, r"k=8 with width=8: .* 1\.\.7"),
    (torch.randn(64, 16), 0, 1, "width=0"),
    (torch.randn(16), 32, 4, r"shape \(16,\), one dimension"),
])
def test_train_topk_refuses_bad_input(activations, width, k, message):
    with pytest.raises(DictionaryError, match=message):
        train_topk(activations, width=width, k=k)
