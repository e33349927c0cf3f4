"""Big models on CPU: multi-part checkpoints, accelerate device maps with disk offload, bf16 weights."""

import json

import pytest
import torch

from auditlens import ModelLoadError, ablate, capture, load_subject, run
from auditlens.readout import ClassifierLogits
from auditlens.sites.hooks import live_hook_count
from tiny_models import build, ragged_token_lists

pytest.importorskip("accelerate")

OFFLOADED = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.h.0": "cpu",
             "transformer.h.1": "disk", "transformer.h.2": "disk", "transformer.ln_f": "cpu", "score": "cpu"}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """A tiny GPT-2 classifier saved as five safetensors shards and an index."""
    directory = tmp_path_factory.mktemp("sharded")
    build("gpt2").save_pretrained(directory, max_shard_size="40KB")
    assert len(list(directory.glob("model-0000*-of-*.safetensors"))) > 1
    assert (directory / "model.safetensors.index.json").is_file()
    return directory


@pytest.fixture(scope="module")
def whole(sharded):
    return load_subject(sharded)


@pytest.fixture(scope="module")
def inputs(whole):
    return whole.encode(ragged_token_lists())


@pytest.mark.parametrize("device_map", ["auto", "sequential", OFFLOADED])
def test_a_sharded_or_offloaded_load_is_the_same_model(sharded, whole, inputs, device_map, tmp_path):
    subject = load_subject(sharded, device_map=device_map, offload_dir=tmp_path)
    assert subject.fingerprint == whole.fingerprint  # offloaded weights are read back to hash them
    for site in ("embed", "layer:1", "mlp:2"):  # layer 1 and 2 live on disk under OFFLOADED
        torch.testing.assert_close(capture(subject, inputs, site, cache=None),
                                   capture(whole, inputs, site, cache=None), rtol=1e-5, atol=1e-6)


def test_interventions_on_an_offloaded_block_act_as_on_the_whole_model(sharded, whole, inputs, tmp_path):
    from auditlens import Concept

    subject = load_subject(sharded, device_map=OFFLOADED, offload_dir=tmp_path)
    labels = tuple(int(x) for x in run(whole, inputs, readout=ClassifierLogits(), cache=None).scores.argmax(1))
    concept = Concept("own", examples=tuple(tuple(row[:n].tolist()) for row, n in zip(inputs.input_ids, inputs.lengths)),
                      labels=labels)
    on_disk = ablate(subject, concept, at="layer:1", kind="zero")
    in_memory = ablate(whole, concept, at="layer:1", kind="zero")
    assert on_disk.accuracy_after == in_memory.accuracy_after
    assert on_disk.accuracy_before == 1.0
    assert live_hook_count(subject.model) == 0


def test_bfloat16_weights_give_float32_activations_close_to_float32(sharded, whole, inputs):
    subject = load_subject(sharded, dtype="bfloat16")
    assert next(subject.model.parameters()).dtype == torch.bfloat16
    assert subject.fingerprint != whole.fingerprint  # other weights, other cache entries
    low = capture(subject, inputs, "layer:2", cache=None)
    assert low.dtype == torch.float32
    full = capture(whole, inputs, "layer:2", cache=None)
    assert (low - full).norm() / full.norm() < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bfloat16_matches_the_cpu(sharded, whole, inputs):
    subject = load_subject(sharded, device="cuda", dtype="bfloat16")
    low = capture(subject, inputs, "layer:2", cache=None)
    assert low.device.type == "cpu" and low.dtype == torch.float32
    full = capture(whole, inputs, "layer:2", cache=None)
    assert (low - full).norm() / full.norm() < 0.05


@pytest.mark.parametrize("device_map, message", [
    ("everywhere", "device_map must be one of auto, balanced, balanced_low_0, sequential or a dict"),
    (["cpu"], "device_map must be a strategy name or a dict; got list"),
])
def test_a_bad_device_map_is_named(sharded, device_map, message):
    with pytest.raises(ModelLoadError, match=message.replace("(", r"\(")):
        load_subject(sharded, device_map=device_map)


def test_device_map_needs_a_directory_not_a_module():
    with pytest.raises(ModelLoadError, match="an nn.Module is already loaded"):
        load_subject(build("gpt2"), device_map="auto")


def test_plugin_options_load_bf16_and_sharded(audit_repo, sharded):
    audit_repo.makepyfile(test_loaded="""
import torch

def test_loaded(subject):
    assert next(subject.model.parameters()).dtype == torch.bfloat16
    assert subject.model.hf_device_map["transformer.h.1"] == "disk"
""")
    device_map = json.dumps(OFFLOADED)
    result = audit_repo.runpytest("--model", str(sharded), "--audit-dtype", "bfloat16",
                                  "--audit-device-map", device_map)
    result.assert_outcomes(passed=1)
    report = json.loads((audit_repo.path / "reports" / "report.json").read_text())
    assert report["run"]["loading"] == {"device": None, "dtype": "bfloat16", "device_map": OFFLOADED}


def test_a_device_map_that_is_not_json_is_named(audit_repo, sharded):
    audit_repo.makepyfile(test_loaded="def test_loaded(subject):\n    pass\n")
    result = audit_repo.runpytest("--model", str(sharded), "--audit-device-map", "{cpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--audit-device-map is not valid JSON*"])


def test_device_map_without_accelerate_says_what_to_install(sharded, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "accelerate", None)  # import accelerate now raises ImportError
    with pytest.raises(ModelLoadError, match=r"device_map needs the accelerate package: pip install 'auditlens\[big\]'"):
        load_subject(sharded, device_map="auto")


def test_an_offloaded_embedding_takes_its_ids_on_the_cpu():
    """An offloaded (meta) embedding's accelerate hook moves the ids to where it runs."""
    from auditlens.loading import _input_device
    from tiny_models import build

    model = build("gpt2")
    model.get_input_embeddings().weight = torch.nn.Parameter(torch.empty(5, 4, device="meta"))
    assert _input_device(model) == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ids_go_to_the_gpu_the_embeddings_are_on_whatever_the_map_says():
    from auditlens.loading import _input_device
    from tiny_models import build

    model = build("gpt2").to("cuda")
    assert _input_device(model) == torch.device("cuda", 0)  # no map at all: the old lookup said cpu
    model.hf_device_map = {"": torch.device("cuda", 0)}  # a device object, which it did not read either
    assert _input_device(model) == torch.device("cuda", 0)
