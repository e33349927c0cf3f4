import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from auditlens import AuditlensError, ConceptError, ModelLoadError, capture, load_subject
from auditlens.zoo.vocab import word_tokenizer
from tiny_models import VOCAB, build

WORDS = [f"w{i}" for i in range(VOCAB - 3)]


@pytest.fixture
def saved_dir(tmp_path):
    """A tiny GPT-2 classifier and its word tokenizer, written by save_pretrained."""
    directory = tmp_path / "tiny-gpt2"
    build("gpt2").save_pretrained(directory)
    word_tokenizer(WORDS).save_pretrained(directory)
    return directory


def test_loads_a_save_pretrained_directory_with_its_tokenizer(saved_dir):
    subject = load_subject(saved_dir)
    assert subject.kind == "classifier" and subject.n_layers == 3
    assert not subject.model.training
    assert not any(p.requires_grad for p in subject.model.parameters())
    inputs = subject.encode(["w1 w2 w3", "w4"])
    assert inputs.input_ids.tolist() == [[4, 5, 6], [7, 0, 0]] and inputs.texts == ("w1 w2 w3", "w4")


def test_loaded_weights_equal_the_saved_ones(saved_dir):
    subject = load_subject(saved_dir)
    saved = load_file(saved_dir / "model.safetensors")
    state = subject.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())


def test_kind_is_inferred_from_the_config(tmp_path):
    build("llama").save_pretrained(tmp_path / "lm")
    assert load_subject(tmp_path / "lm").kind == "causal-lm"


def test_kind_can_be_forced_to_the_bare_encoder(saved_dir):
    assert load_subject(saved_dir, kind="encoder").kind == "encoder"


def _load_offline(hub_cache: Path, spec: str) -> subprocess.CompletedProcess:
    """load_subject(spec) in a fresh interpreter whose hub cache and offline mode are set at start-up."""
    code = (
        "from auditlens import load_subject, ModelLoadError\n"
        f"try:\n    s = load_subject({spec!r}); print('LOADED', s.id, s.n_layers, s.tokenizer is not None)\n"
        "except ModelLoadError as e:\n    print('ERROR', e)\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_hub_id_goes_through_from_pretrained_offline(saved_dir, tmp_path):
    # given a hub cache laid out as huggingface_hub writes it, and no network
    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--tiny" / "snapshots" / "0123abcd"
    shutil.copytree(saved_dir, snapshot)
    (cache / "models--acme--tiny" / "refs").mkdir()
    (cache / "models--acme--tiny" / "refs" / "main").write_text("0123abcd")
    # when loaded by its hub id, then the real hub path resolves it
    result = _load_offline(cache, "acme/tiny")
    assert "LOADED acme/tiny 3 True" in result.stdout, result.stdout + result.stderr
    # and an id the hub cannot give is a clear error
    result = _load_offline(cache, "acme/missing")
    assert "ERROR cannot load 'acme/missing': it is not a local directory" in result.stdout, result.stderr


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no local directory .*nowhere exists, so it was not looked up on the hub"):
        load_subject(str(tmp_path / "nowhere"))


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_subject(tmp_path)


def test_directory_without_weights_is_refused(saved_dir):
    (saved_dir / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"has no model weights \(\*.safetensors\)"):
        load_subject(saved_dir)


def test_pickle_only_checkpoint_is_refused_unless_allowed(saved_dir):
    # given a directory whose only weights are a pickle
    model = build("gpt2")
    (saved_dir / "model.safetensors").unlink()
    torch.save(model.state_dict(), saved_dir / "pytorch_model.bin")
    # then it is refused by default, naming the file
    with pytest.raises(ModelLoadError, match=r"only pickle checkpoints \(pytorch_model.bin\).*allow_pickle=True"):
        load_subject(saved_dir)
    # and loads when the user says they trust it
    subject = load_subject(saved_dir, allow_pickle=True)
    assert torch.equal(subject.model.score.weight, model.score.weight)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_an_allowed_pickle_still_cannot_run_code(saved_dir, monkeypatch):
    monkeypatch.chdir(saved_dir)
    (saved_dir / "model.safetensors").unlink()
    torch.save({"transformer.wte.weight": _Payload()}, saved_dir / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"torch.load\(weights_only=True\) even when allowed, so it was not run"):
        load_subject(saved_dir, allow_pickle=True)
    assert not (saved_dir / "PWNED").exists()


def test_remote_code_is_never_run_unless_asked(saved_dir):
    config = json.loads((saved_dir / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "custom.CustomConfig"}
    config["model_type"] = "custom-unknown"
    (saved_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="trust_remote_code"):
        load_subject(saved_dir)


def test_in_memory_module_with_its_tokenizer():
    tokenizer = word_tokenizer(WORDS)
    subject = load_subject(build("bert"), tokenizer=tokenizer, id="mine")
    assert subject.id == "mine" and subject.kind == "classifier" and subject.tokenizer is tokenizer


def test_dtype_option_converts_the_weights(saved_dir):
    assert load_subject(saved_dir, dtype="bfloat16").model.score.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("option, match", [
    ({"dtype": "float8"}, "dtype must be one of float32, bfloat16, float16; got 'float8'"),
    ({"device": "tpu:9"}, "device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"),
    ({"kind": "regressor"}, "kind must be one of classifier, causal-lm, encoder"),
])
def test_bad_options_are_named(option, match):
    with pytest.raises(ModelLoadError, match=match):
        load_subject(build("gpt2"), **option)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_asking_for_a_gpu_without_one_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="torch sees no CUDA GPU here"):
        load_subject(build("gpt2"), device="cuda")


def test_fingerprint_is_stable_and_tracks_the_weights():
    a, b = load_subject(build("gpt2", seed=0)), load_subject(build("gpt2", seed=0))
    assert a.fingerprint == b.fingerprint
    c = build("gpt2", seed=0)
    with torch.no_grad():
        c.score.weight[0, 0] += 1e-3
    assert load_subject(c).fingerprint != a.fingerprint


def test_a_moved_model_directory_keeps_its_fingerprint_and_one_ulp_moves_it(saved_dir, tmp_path):
    """The fingerprint hashes what the model computes with, not where it was loaded from (issue 26)."""
    elsewhere = tmp_path / "a" / "copy"
    shutil.copytree(saved_dir, elsewhere)
    here, there = load_subject(saved_dir), load_subject(elsewhere)
    assert here.model.config._name_or_path != there.model.config._name_or_path
    assert here.fingerprint == there.fingerprint
    with torch.no_grad():  # one unit in the last place of one weight
        weight = there.model.score.weight
        weight[0, 0] = torch.nextafter(weight[0, 0], torch.tensor(float("inf")))
    assert there.fingerprint != here.fingerprint


def test_a_weight_changed_in_place_never_serves_the_old_activations():
    """A notebook user fine-tunes in place and audits again: the capture must see the new weights
    (the red team's case: an MLP weight times 3 gave back the old numbers)."""
    subject = load_subject(build("gpt2", seed=0))
    inputs = subject.encode([[3, 4, 5, 6], [7, 8, 9, 10]])
    before, fingerprint = capture(subject, inputs, "layer:1"), subject.fingerprint
    with torch.no_grad():
        subject.model.transformer.h[0].mlp.c_fc.weight.mul_(3)
    after = capture(subject, inputs, "layer:1")
    assert subject.fingerprint != fingerprint and not torch.allclose(before, after)
    fresh = load_subject(subject.model)  # the same edited weights, never cached: the same numbers
    assert torch.equal(capture(fresh, inputs, "layer:1"), after)


def test_a_parameter_swapped_for_another_tensor_changes_the_fingerprint():
    subject = load_subject(build("gpt2", seed=0))
    fingerprint = subject.fingerprint
    old = subject.model.score.weight
    subject.model.score.weight = torch.nn.Parameter(old.detach().clone() * 2, requires_grad=False)
    assert subject.fingerprint != fingerprint


def test_unknown_fixture_suggests_the_closest():
    with pytest.raises(ModelLoadError, match="no fixture named 'minilmm'. Did you mean minilm"):
        load_subject("fixture:minilmm")


@pytest.mark.parametrize("examples, match", [
    ([], "the dataset is empty"),
    ([[3, 4], []], r"inputs \[1\] have no tokens"),
    ([[3, VOCAB + 5]], "token ids outside the vocabulary"),
    ([list(range(2, 35))], r"longer than the context of .* \(32 tokens\)"),
    (["some text"], "has no tokenizer"),
])
def test_bad_inputs_are_named(examples, match):
    subject = load_subject(build("gpt2"))
    with pytest.raises(ConceptError, match=match):
        subject.encode(examples)


def _edited_checkpoint(tmp_path, edit):
    import json

    from tiny_models import build

    directory = tmp_path / "model"
    build("gpt2").save_pretrained(directory)
    config = json.loads((directory / "config.json").read_text())
    edit(directory, config)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_a_checkpoint_missing_weights_is_refused_not_filled_with_random_ones(tmp_path):
    from safetensors.torch import save_file

    directory = _edited_checkpoint(tmp_path, lambda d, c: save_file({"unrelated": torch.zeros(3)},
                                                                     d / "model.safetensors"))
    with pytest.raises(ModelLoadError, match=r"lacks 41 weight\(s\) GPT2ForSequenceClassification needs "
                                             r"\(score.weight, transformer.h.0.attn.c_attn.bias, .*\); they would "
                                             "be random"):
        load_subject(directory)


def test_weights_the_model_would_drop_are_refused_with_the_kind_to_try(tmp_path):
    directory = _edited_checkpoint(tmp_path, lambda d, c: c.pop("architectures"))
    with pytest.raises(ModelLoadError, match=r"holds 1 weight\(s\) GPT2Model does not use \(score.weight\); they "
                                             r"would be dropped. .*pass kind='classifier'"):
        load_subject(directory)
    assert load_subject(directory, kind="classifier").kind == "classifier"


def test_weights_of_the_wrong_shape_are_a_load_error(tmp_path):
    def three_labels(directory, config):
        config.update(id2label={"0": "a", "1": "b", "2": "c"}, label2id={"a": 0, "b": 1, "c": 2})

    with pytest.raises(ModelLoadError, match="weights of the wrong shape for its config.json"):
        load_subject(_edited_checkpoint(tmp_path, three_labels))


def _indexed(tmp_path, weight_file):
    directory = _edited_checkpoint(tmp_path, lambda d, c: None)
    index = {"metadata": {}, "weight_map": {"score.weight": weight_file}}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    return directory


def test_a_checkpoint_index_cannot_let_a_pickle_in(tmp_path):
    torch.save({}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"names 'pytorch_model.bin', a pickle checkpoint"):
        load_subject(_indexed(tmp_path, "pytorch_model.bin"))


def test_a_checkpoint_index_cannot_reach_outside_its_directory(tmp_path):
    with pytest.raises(ModelLoadError, match=r"names '../elsewhere.safetensors', outside the model directory"):
        load_subject(_indexed(tmp_path, "../elsewhere.safetensors"))


def test_a_directory_without_a_tokenizer_loads_with_its_layers_and_says_so_on_text(saved_dir):
    for name in [p.name for p in saved_dir.iterdir() if p.name not in ("config.json", "model.safetensors")]:
        (saved_dir / name).unlink()
    subject = load_subject(saved_dir)
    assert (subject.kind, subject.n_layers, subject.tokenizer) == ("classifier", 3, None)
    subject.encode([[3, 4, 5]])  # token ids still work
    with pytest.raises(AuditlensError, match="has no tokenizer, so text inputs cannot be encoded"):
        subject.encode(["some text"])
