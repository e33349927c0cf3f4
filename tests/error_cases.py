"""Bad inputs and the error each gets: the source of docs/errors.md (tests/test_error_table.py keeps
them equal). Each case runs in an empty working directory."""

import json
import os
from pathlib import Path

import torch

from auditlens import Concept, CounterfactualPair, capture, load_concept, load_subject, probe
from auditlens.declarative import load_audit_file
from auditlens.interventions import Transform
from tiny_models import build


def _saved(name="model"):
    build("gpt2").save_pretrained(name)
    return Path(name)


def missing_model():
    load_subject("./no-such-model")


def pickle_only():
    path = _saved()
    (path / "model.safetensors").unlink()
    torch.save({}, path / "pytorch_model.bin")
    load_subject(path)


def remote_code():
    path = _saved()
    config = json.loads((path / "config.json").read_text())
    config.update(auto_map={"AutoConfig": "x.Y"}, model_type="custom-unknown")
    (path / "config.json").write_text(json.dumps(config))
    load_subject(path)


def vocabulary_mismatch():
    load_subject(build("gpt2")).encode([[3, 4, 900]])


def too_long():
    load_subject(build("gpt2")).encode([list(range(2, 40))])


def not_finite():
    subject = load_subject(build("gpt2"))
    inputs = subject.encode([[3, 4, 5]] * 2)
    poison = Transform(subject.site("layer:0"), lambda h: h * float("nan"), name="nan")
    from auditlens import run

    run(subject, inputs, sites=["layer:1"], interventions=[poison])


def empty_concept():
    Concept("empty")


def one_class_concept():
    Concept("same", examples=("a", "b"), labels=(1, 1))


def mismatched_pair():
    Concept("pairs", pairs=(CounterfactualPair("a b", "a c", 3),), label_names=("no", "yes"))


def unknown_site():
    load_subject(build("gpt2")).site("layer:7")


def misspelt_site():
    load_subject(build("gpt2")).site("transformer.h.1.atn")


def bad_position():
    subject = load_subject(build("gpt2"))
    capture(subject, subject.encode([[3, 4]]), "layer:0", position="middle")


def gpu_without_one():
    load_subject(build("gpt2"), device="cuda")


def too_few_examples():
    subject = load_subject(build("gpt2"))
    probe(subject, Concept("tiny", examples=((3, 4), (5, 6), (7, 8)), labels=(0, 1, 1)), at="layer:0")


def misspelt_concept_key():
    Path("c.yaml").write_text("exampels: []\n")
    load_concept("c.yaml")


def unsafe_yaml_tag():
    Path("a.audit.yaml").write_text("!!python/object/apply:os.system ['echo hi']\n")
    load_audit_file("a.audit.yaml")


def unknown_check():
    Path("a.audit.yaml").write_text("audits:\n  - name: x\n    prob: {concept: c}\n    expect: {accuracy: '>= 0.9'}\n")
    load_audit_file("a.audit.yaml")


def bad_condition():
    Path("a.audit.yaml").write_text("audits:\n  - name: x\n    probe: {concept: c, at: 'layer:1'}\n"
                                    "    expect: {accuracy: 'at least 0.9'}\n")
    load_audit_file("a.audit.yaml")


def unknown_fixture():
    load_subject("fixture:count-lerned")


def unknown_device_map():
    load_subject(_saved(), device_map="everywhere")


def bad_read_ahead_budget():
    from auditlens import ActivationCache

    os.environ["AUDITLENS_READ_AHEAD_MB"] = "lots"
    try:
        ActivationCache()
    finally:
        del os.environ["AUDITLENS_READ_AHEAD_MB"]


def weights_missing():
    from safetensors.torch import save_file

    path = _saved()
    save_file({"unrelated": torch.zeros(3)}, path / "model.safetensors")
    load_subject(path)


def unreadable_site():
    subject = load_subject(build("gpt2"))
    capture(subject, subject.encode([[3, 4]]), "transformer")


def yaml_alias_bomb():
    lines = ['a0: &a0 ["lol"]'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    Path("bomb.yaml").write_text("\n".join(lines) + "\n")
    load_concept("bomb.yaml")


def site_none():
    subject = load_subject(build("gpt2"))
    capture(subject, subject.encode([[3, 4]]), None)


def token_id_too_large():
    load_subject(build("gpt2")).encode([[3, 2**70]])


def fixture_seed_too_large():
    load_subject("fixture:count-learned@99999999999999999999999")


def invalid_config_json():
    path = _saved()
    (path / "config.json").write_text("{not json")
    load_subject(path)


def cache_dir_is_a_file():
    from auditlens.session import AuditSession, SessionOptions

    Path("cache").write_text("a file")
    AuditSession(SessionOptions(cache_dir="cache"))


def _damaged_weights(blob: bytes):
    path = _saved()
    (path / "model.safetensors").write_bytes(blob)
    load_subject(path)


def truncated_safetensors():
    data = (_saved("whole") / "model.safetensors").read_bytes()
    _damaged_weights(data[: len(data) // 2])


def garbage_safetensors():
    _damaged_weights(b"\x00not safetensors" * 64)


def header_bomb_safetensors():
    import struct

    _damaged_weights(struct.pack("<Q", 2**40) + b"{")


def non_utf8_concept():
    Path("c.yaml").write_bytes(b"examples:\n  - {text: 'caf\xe9', label: 0}\n")
    load_concept("c.yaml")


def non_utf8_jsonl():
    Path("c.yaml").write_text("file: data.jsonl\n")
    Path("data.jsonl").write_bytes(b'{"text": "ok", "label": 0}\n{"text": "caf\xe9", "label": 1}\n')
    load_concept("c.yaml")


def lone_surrogate_yaml():
    Path("c.yaml").write_text('examples:\n  - {text: "a\\ud800b", label: 0}\n')
    load_concept("c.yaml")


def lone_surrogate_jsonl():
    Path("c.yaml").write_text("pair_file: pairs.jsonl\n")
    Path("pairs.jsonl").write_text('{"base": "a\\udc00", "source": "b", "label": 0}\n')
    load_concept("c.yaml")


def non_utf8_audit_file():
    Path("a.audit.yaml").write_bytes(b"audits:\n  - name: caf\xe9\n")
    load_audit_file("a.audit.yaml")


def concept_file_outside():
    Path("probes").mkdir()
    Path("probes/c.yaml").write_text("file: ../../../../etc/passwd\n")
    load_concept("probes/c.yaml")


def report_dir_is_a_file():
    from auditlens.session import AuditSession, SessionOptions

    Path("reports").write_text("a file")
    AuditSession(SessionOptions(report_dir=Path("reports")))


def head_out_of_range():
    load_subject(build("gpt2")).site("head:1.7")


def circuit_with_a_bad_component():
    from auditlens import load_circuit

    Path("c.yaml").write_text("components: [head:0.1, layer:1]\n")
    load_circuit("c.yaml")


def circuit_file_outside():
    Path("audits").mkdir(exist_ok=True)
    Path("audits/a.audit.yaml").write_text("audits:\n  - name: x\n    necessity: {concept: c, circuit: ../c.yaml}\n"
                                           "    expect: {accuracy_drop: '>= 0.3'}\n")
    load_audit_file("audits/a.audit.yaml")


def circuit_naming_a_component_twice():
    from auditlens import load_circuit

    Path("c.yaml").write_text("components: [head:0.1, mlp:1, head:0.1]\n")
    load_circuit("c.yaml")


def empty_circuit():
    from auditlens import load_circuit

    Path("c.yaml").write_text("name: nothing\ncomponents: []\n")
    load_circuit("c.yaml")


def heads_of_a_model_without_attention():
    from transformers import MambaConfig, MambaForCausalLM

    from auditlens.sites.resolve import expand_sites

    model = MambaForCausalLM(MambaConfig(num_hidden_layers=2, hidden_size=16, vocab_size=40, state_size=4))
    expand_sites(load_subject(model).model, "head:*.*")


def attribution_without_a_gradient_path():
    from auditlens import Concept, CounterfactualPair, attribute

    subject = load_subject(build("gpt2"))
    subject.model.score.register_forward_hook(lambda module, args, output: output.detach())
    pairs = Concept("swap", pairs=(CounterfactualPair([3, 4, 5], [4, 3, 5], 1), CounterfactualPair([5, 6], [6, 5], 0)))
    attribute(subject, pairs, "head:*.*")


def tensor_as_inputs():
    capture(load_subject(build("gpt2")), torch.randint(2, 30, (10, 4)), ["layer:0"])


def perturbation_factory_uncalled():
    from hypothesis import strategies as st

    from auditlens.behaviour import add_negation, expect_invariant

    expect_invariant(load_subject(build("gpt2")), st.just("the film was good"), add_negation)


def unknown_label_name():
    from hypothesis import strategies as st

    from auditlens.behaviour import expect_label

    expect_label(load_subject(build("gpt2")), st.just("a"), "positive")


def _trigger_search(answers=(7, 8), embeddings=True, **arguments):
    from auditlens import search_trigger

    subject = load_subject(build("llama"), id="tiny-llama")
    if not embeddings:
        subject.model.get_input_embeddings = lambda: None
    examples = [(3 + i % 20, 4, 5, 6) for i in range(50)]
    concept = Concept("c", examples=examples, labels=[i % 2 for i in range(50)], answer_tokens=answers)
    search_trigger(subject, concept, **arguments)


def trigger_length_zero():
    _trigger_search(length=0)


def trigger_too_long():
    _trigger_search(length=9)


def trigger_positions_outside():
    _trigger_search(length=2, positions=[1, 12])


def trigger_budget_zero():
    _trigger_search(budget=0)


def trigger_model_without_embeddings():
    _trigger_search(embeddings=False)


def trigger_concept_without_answers():
    _trigger_search(answers=None)


def trigger_from_a_base_with_the_same_embeddings():
    _trigger_search(trained_from=load_subject(build("llama"), id="tiny-llama-base"))


def trigger_from_a_base_it_was_not_tuned_from():
    _trigger_search(trained_from=load_subject(build("llama", seed=1), id="other-llama"))


def _shipped_copy(name: str) -> Path:
    """A copy of a shipped organism in ./fixtures-copy, read from there (a relative path: the same message anywhere)."""
    import shutil

    from auditlens.zoo.shipped import fixtures_root

    shutil.copytree(fixtures_root() / name, Path("fixtures-copy") / name)
    os.environ["AUDITLENS_FIXTURES"] = "fixtures-copy"
    return Path("fixtures-copy") / name


def _with_shipped(function):
    saved = {k: os.environ.get(k) for k in ("AUDITLENS_FIXTURES", "AUDITLENS_ZOO_SOURCE")}
    os.environ["AUDITLENS_ZOO_SOURCE"] = "shipped"
    try:
        function()
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def stale_shipped_fixture():
    def case():
        copy = _shipped_copy("count-learned")
        metadata = json.loads((copy / "organism.json").read_text())
        (copy / "organism.json").write_text(json.dumps({**metadata, "recipe": "000000000000"}))
        load_subject("fixture:count-learned")
    _with_shipped(case)


def altered_shipped_weights():
    def case():
        weights = _shipped_copy("count-cheated") / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-1] ^= 1
        weights.write_bytes(bytes(data))
        load_subject("fixture:count-cheated")
    _with_shipped(case)


def unknown_zoo_source():
    saved = os.environ.get("AUDITLENS_ZOO_SOURCE")
    os.environ["AUDITLENS_ZOO_SOURCE"] = "rebuilt"
    try:
        load_subject("fixture:count-learned")
    finally:
        os.environ.pop("AUDITLENS_ZOO_SOURCE") if saved is None else os.environ.__setitem__("AUDITLENS_ZOO_SOURCE", saved)


def missing_baseline():
    from auditlens.session import AuditSession, SessionOptions

    AuditSession(SessionOptions(baseline="baseline/report.json", report_dir=Path("baseline-run")))


def script_audit_without_a_condition():
    from auditlens.session import AuditSession, SessionOptions

    with AuditSession(SessionOptions(report_dir=Path("script-reports"))) as session:
        session.record("the count is represented", "fixture:count-learned")


CASES = [
    ("missing model path", missing_model), ("directory with only a pickle checkpoint", pickle_only),
    ("config that needs remote code", remote_code), ("tokenizer/model vocabulary mismatch", vocabulary_mismatch),
    ("input longer than the context", too_long), ("NaN or inf activations", not_finite),
    ("empty concept", empty_concept), ("one-class concept", one_class_concept),
    ("mismatched counterfactual pair", mismatched_pair), ("unknown site", unknown_site),
    ("misspelt module path", misspelt_site), ("unknown position", bad_position),
    ("GPU asked for, none there", gpu_without_one), ("too few examples for cross-validation", too_few_examples),
    ("misspelt concept-file key", misspelt_concept_key), ("YAML tag that safe_load refuses", unsafe_yaml_tag),
    ("unknown check in an audit file", unknown_check), ("bad comparison string", bad_condition),
    ("unknown fixture", unknown_fixture), ("unknown device_map strategy", unknown_device_map),
    ("read-ahead budget that is not a number", bad_read_ahead_budget),
    ("a tensor where Inputs are expected", tensor_as_inputs),
    ("a checkpoint missing weights", weights_missing), ("a YAML alias bomb", yaml_alias_bomb),
    ("site=None", site_none), ("a token id of 2**70", token_id_too_large),
    ("a fixture seed too large", fixture_seed_too_large), ("an invalid config.json", invalid_config_json),
    ("an activation cache directory that is a file", cache_dir_is_a_file), ("a site whose output holds no tensor", unreadable_site),
    ("a perturbation factory passed uncalled", perturbation_factory_uncalled),
    ("a label name the model does not have", unknown_label_name),
    ("a truncated safetensors file", truncated_safetensors), ("a garbage safetensors file", garbage_safetensors),
    ("a safetensors header bomb", header_bomb_safetensors), ("a concept file that is not UTF-8", non_utf8_concept),
    ("a JSONL data file that is not UTF-8", non_utf8_jsonl), ("a lone surrogate in YAML", lone_surrogate_yaml),
    ("a lone surrogate in JSONL", lone_surrogate_jsonl), ("an audit file that is not UTF-8", non_utf8_audit_file),
    ("a concept data file outside its directory", concept_file_outside),
    ("a report directory that is a file", report_dir_is_a_file),
    ("a trigger search of length 0", trigger_length_zero),
    ("a trigger longer than the inputs", trigger_too_long),
    ("trigger positions outside the input", trigger_positions_outside),
    ("a trigger search budget of 0", trigger_budget_zero),
    ("a trigger search on a model without input embeddings", trigger_model_without_embeddings),
    ("a trigger search on a causal LM concept without answer tokens", trigger_concept_without_answers),
    ("a trigger search over the tokens a fine-tune trained, from a base with the same embeddings",
     trigger_from_a_base_with_the_same_embeddings),
    ("a trigger search over the tokens a fine-tune trained, from a base it was not tuned from",
     trigger_from_a_base_it_was_not_tuned_from),
    ("a head index out of range", head_out_of_range), ("a circuit file with a bad component", circuit_with_a_bad_component),
    ("a circuit file outside the audit file's directory", circuit_file_outside),
    ("a circuit file naming a component twice", circuit_naming_a_component_twice),
    ("an empty circuit", empty_circuit), ("head sites on a model without attention", heads_of_a_model_without_attention),
    ("attribution on a model whose output has no gradient path", attribution_without_a_gradient_path),
    ("a shipped fixture whose recipe changed since", stale_shipped_fixture),
    ("a shipped fixture whose weights file was altered", altered_shipped_weights),
    ("an unknown AUDITLENS_ZOO_SOURCE", unknown_zoo_source),
    ("an --audit-baseline that does not exist", missing_baseline),
    ("a script's audit without a condition", script_audit_without_a_condition),
]


def _examples(n=60):
    return [(3 + i % 5, 4, 5 + i % 3) for i in range(n)], [i % 2 for i in range(n)]


def mutation_concept_without_labels():
    from auditlens.mutation.task import task_data

    pairs = [CounterfactualPair(base=(3, 4), source=(4, 3), label=0)]
    task_data(load_subject(build("gpt2")), Concept("swaps", pairs=pairs))


def mutation_model_without_a_task_head():
    from transformers import GPT2Config, GPT2Model

    from auditlens.mutation.task import task_data

    examples, labels = _examples()
    encoder = GPT2Model(GPT2Config(vocab_size=32, n_positions=32, n_embd=16, n_layer=2, n_head=2, bos_token_id=0,
                                   eos_token_id=0)).eval()
    task_data(load_subject(encoder, id="my-encoder"), Concept("task", examples, labels))


def mutation_lm_concept_without_answer_tokens():
    from auditlens.mutation.task import task_data

    examples, labels = _examples()
    task_data(load_subject(build("llama"), id="my-lm"), Concept("task", examples, labels))


def mutation_too_few_examples():
    from auditlens.mutation.task import task_data

    examples, labels = _examples(10)
    task_data(load_subject(build("gpt2"), id="my-model"), Concept("task", examples, labels))


def mutation_unknown_operator():
    from auditlens.mutation import MutationOptions

    MutationOptions(operators=("flip-labels",))


def mutation_suite_failing_the_original():
    from auditlens.mutation.run import _check_original
    from auditlens.mutation.suite import SuiteRun

    report = {"models": [{"id": "./my-model", "verdict": "cheated", "audits": [],
                          "reason": "patch at layer:0 on marker_swapped: flip_rate = 1.000, needed <= 0.05"}]}
    _check_original("./my-model", SuiteRun(report, 0.0))


def mutation_suite_not_selecting_the_model():
    from auditlens.mutation.suite import SuiteRun

    SuiteRun({"models": []}, 0.0).model("./my-model")


CASES += [
    ("a mutation evaluation set without labelled examples", mutation_concept_without_labels),
    ("mutation testing a model without a task head", mutation_model_without_a_task_head),
    ("mutation testing a causal LM on a concept without answer tokens", mutation_lm_concept_without_answer_tokens),
    ("a mutation evaluation set of 10 examples", mutation_too_few_examples),
    ("an unknown mutation operator", mutation_unknown_operator),
    ("mutation testing a model the suite does not pass", mutation_suite_failing_the_original),
    ("mutation testing with a suite that has no audit for the model", mutation_suite_not_selecting_the_model),
]


def _saelens(name, d_in=64, d_sae=8, **cfg):
    """A SAELens directory written by hand: cfg.json and sae_weights.safetensors."""
    from safetensors.torch import save_file

    directory = Path(name)
    directory.mkdir()
    config = {"architecture": "standard", "d_in": d_in, "d_sae": d_sae, "apply_b_dec_to_input": True,
              "normalize_activations": "none", "metadata": {"hook_name": "blocks.0.hook_resid_post"}, **cfg}
    (directory / "cfg.json").write_text(json.dumps(config))
    save_file({"W_enc": torch.zeros(d_in, d_sae), "W_dec": torch.zeros(d_sae, d_in), "b_enc": torch.zeros(d_sae),
               "b_dec": torch.zeros(d_in)}, directory / "sae_weights.safetensors")
    return directory


def dictionary_of_another_width():
    load_subject("fixture:count-learned").attach_dictionary("layer:0", _saelens("sae-32", d_in=32))


def dictionary_unknown_architecture():
    from auditlens.dictionaries import load_dictionary

    load_dictionary(_saelens("sae-gated", architecture="gated"))


def dictionary_without_architecture():
    from auditlens.dictionaries import load_dictionary

    directory = _saelens("sae-bare")
    config = json.loads((directory / "cfg.json").read_text())
    del config["architecture"]
    (directory / "cfg.json").write_text(json.dumps(config))
    load_dictionary(directory)


def dictionary_unsupported_normalisation():
    from auditlens.dictionaries import load_dictionary

    load_dictionary(_saelens("sae-norm", normalize_activations="layer_norm"))


def dictionary_nan_weights():
    from safetensors.torch import save_file

    from auditlens.dictionaries import load_dictionary

    directory = _saelens("sae-nan")
    save_file({"W_enc": torch.full((64, 8), float("nan")), "W_dec": torch.zeros(8, 64), "b_enc": torch.zeros(8),
               "b_dec": torch.zeros(64)}, directory / "sae_weights.safetensors")
    load_dictionary(directory)


def dictionary_pickle():
    from auditlens.dictionaries import load_dictionary

    Path("sae-pickle").mkdir()
    (Path("sae-pickle") / "cfg.json").write_text("{}")
    torch.save({}, Path("sae-pickle") / "sae_weights.pt")
    load_dictionary("sae-pickle")


def feature_out_of_range():
    subject = load_subject("fixture:count-learned")
    subject.attach_dictionary("layer:0", _saelens("sae-8"))
    subject.site("feature:layer:0/8")


def feature_without_dictionary():
    load_subject("fixture:count-learned").site("features:layer:1")


def dictionary_outside_the_audit_directory():
    Path("audits").mkdir(exist_ok=True)
    Path("audits/features.audit.yaml").write_text(
        "dictionaries:\n  layer:0: ../saes/layer-0\naudits:\n  - name: x\n"
        "    probe: {concept: c, at: 'features:layer:0'}\n    expect: {accuracy: '>= 0.9'}\n")
    load_audit_file("audits/features.audit.yaml")


CASES += [
    ("a dictionary whose width does not match its site", dictionary_of_another_width),
    ("a dictionary of an unknown architecture", dictionary_unknown_architecture),
    ("a dictionary whose config names no architecture", dictionary_without_architecture),
    ("a dictionary that normalises activations in a way auditlens does not", dictionary_unsupported_normalisation),
    ("a dictionary with NaN weights", dictionary_nan_weights),
    ("a dictionary saved as a pickle", dictionary_pickle),
    ("a latent index out of range", feature_out_of_range),
    ("a feature site with no dictionary attached", feature_without_dictionary),
    ("a dictionary path outside the audit file's directory", dictionary_outside_the_audit_directory),
]


def repair_direction_of_another_width():
    from auditlens import ProjectOut
    from auditlens.repair import repair

    subject = load_subject(build("gpt2"))
    repair(subject, ProjectOut(subject.site("mlp:0"), torch.ones(1, 7)))


def repair_residual_of_a_post_ln_model():
    from auditlens import ProjectOut
    from auditlens.repair import repair

    subject = load_subject(build("bert"))
    repair(subject, ProjectOut(subject.site("layer:0"), torch.ones(1, subject.hidden_size)))


def repair_export_over_a_directory():
    from auditlens import ZeroAblation
    from auditlens.repair import repair

    subject = load_subject(build("gpt2"))
    Path("cured").mkdir()
    repair(subject, ZeroAblation(subject.site("head:0.0"))).save_pretrained("cured")


def _repair_args(**given):
    import argparse

    from auditlens.repair.options import DEFAULT_MAX_LOSS

    defaults = dict(model="fixture:count-cheated", report="report.json", audit=None, out="repaired", clean=None,
                    max_loss=DEFAULT_MAX_LOSS, reference=None, probes=str(Path(__file__).parent.parent / "probes"),
                    seed=0)
    return argparse.Namespace(**{**defaults, **given})


def _report_of(fingerprint, audits=(), model="fixture:count-cheated"):
    import json

    Path("report.json").write_text(json.dumps({"schema": "auditlens.report/2", "run": {}, "models": [
        {"id": model, "verdict": "cheated", "fingerprint": fingerprint, "audits": list(audits)}]}))


def repair_from_a_report_of_another_model():
    from auditlens.cli.repair import run

    model = build("gpt2")
    with torch.no_grad():  # weights exact on any CPU (random init differs by kernel), so is their fingerprint
        for parameter in model.parameters():
            parameter.copy_(((torch.arange(parameter.numel()) % 7 - 3).float() / 8).reshape(parameter.shape))
    model.save_pretrained("tiny-gpt2")
    model = "tiny-gpt2"
    _report_of("0123456789abcdef0123456789abcdef", model=model)
    run(_repair_args(model=model))


def repair_into_an_existing_directory():
    from auditlens.cli.repair import run

    Path("repaired-before").mkdir()
    run(_repair_args(out="repaired-before"))


def repair_of_an_audit_the_report_lacks():
    from auditlens.cli.repair import run

    subject = load_subject("fixture:count-cheated")
    _report_of(subject.fingerprint, [{"name": "the marker does not move the decision", "outcome": "failed",
                                      "nodeid": "audits/count.audit.yaml::the-marker-does-not-move-the-decision"}])
    run(_repair_args(audit="the marker moves nothing"))


def clamp_of_another_width():
    from auditlens import Clamp

    subject = load_subject(build("gpt2"))
    Clamp(subject.site("mlp:0"), torch.ones(1, 7), torch.zeros(8))


CASES += [
    ("a repair from a report of another model (fingerprint mismatch)", repair_from_a_report_of_another_model),
    ("a repair into a directory that exists", repair_into_an_existing_directory),
    ("a repair of an audit the report does not have", repair_of_an_audit_the_report_lacks),
    ("a clamp whose value is not as wide as its directions", clamp_of_another_width),
    ("a repair direction of the wrong width", repair_direction_of_another_width),
    ("a repair of a post-LN model's residual stream", repair_residual_of_a_post_ln_model),
    ("exporting a repaired model over an existing directory", repair_export_over_a_directory),
]


def dictionary_neither_a_path_nor_loaded():
    load_subject(build("gpt2")).attach_dictionary("layer:1", {"W_enc": None})


def tokenizer_directory_without_a_tokenizer():
    Path("tok").mkdir()
    load_subject(build("gpt2"), tokenizer="tok")


def alias_written_with_a_dot():
    load_subject(build("gpt2")).site("mlp.1")


def template_label_typo():
    Path("c.yaml").write_text("labels: [negative, positive]\ntemplates:\n  - template: 'the {noun} was good'\n"
                              "    label: postive\nslots: {noun: [film, meal]}\n")
    load_concept("c.yaml")


CASES += [
    ("a dictionary that is neither a directory nor a Dictionary", dictionary_neither_a_path_nor_loaded),
    ("a tokenizer directory that holds no tokenizer", tokenizer_directory_without_a_tokenizer),
    ("an alias written with a dot (mlp.1)", alias_written_with_a_dot),
    ("a misspelt label in a concept's template", template_label_typo),
]


def mistyped_local_model_directory():
    Path("models", "reviews-chat").mkdir(parents=True)
    load_subject("models/reviews-chaet")


def hub_id_the_hub_cannot_give():
    load_subject("acme/no-such-model")  # offline (HF_HUB_OFFLINE=1), nothing in the hub cache


def hub_prefix_beside_a_local_directory():
    Path("acme", "tiny").mkdir(parents=True)
    load_subject("hub:acme/tiny")


CASES += [
    ("a mistyped local model directory", mistyped_local_model_directory),
    ("a hub id the hub cannot give (offline)", hub_id_the_hub_cannot_give),
    ("hub:ORG/NAME where a local directory has that name", hub_prefix_beside_a_local_directory),
]


def embedding_sum_of_a_pre_ln_model():
    load_subject(build("gpt2")).site("embed:sum")


def repair_away_from_the_audit_runs_directory():
    from auditlens.cli.repair import run

    subject = load_subject("fixture:count-cheated")
    _report_of(subject.fingerprint, [{
        "name": "the marker does not move the decision", "outcome": "failed", "file": "audits/count.audit.yaml",
        "nodeid": "audits/count.audit.yaml::the-marker-does-not-move-the-decision",
        "checks": [{"check": "patch", "site": "layer:0", "concept": "marker_swapped", "positions": "all",
                    "metrics": {"flip_rate": 1.0},
                    "thresholds": [{"metric": "flip_rate", "op": "<=", "value": 0.05, "passed": False}]}]}])
    run(_repair_args())


CASES += [("embed:sum on a model that does not normalise its embeddings", embedding_sum_of_a_pre_ln_model),
          ("a repair run away from the directory the audits ran in", repair_away_from_the_audit_runs_directory)]


def _swaps(n: int, equal_lengths: bool = True) -> Concept:
    """``n`` counterfactual pairs of token lists for the tiny models (expected label: the pair's parity)."""
    pairs = [CounterfactualPair((3, 4 + i % 5, 5), (3, 4 + (i + 1) % 5) + ((5,) if equal_lengths else ()), i % 2)
             for i in range(n)]
    return Concept("swaps", pairs=tuple(pairs))


def das_dim_wider_than_the_site():
    from auditlens import das

    das(load_subject(build("gpt2")), _swaps(40), at="head:1.0", dim=17)


def das_with_too_few_pairs():
    from auditlens import das

    das(load_subject(build("gpt2")), _swaps(20), at="layer:1")


def das_all_positions_of_unequal_inputs():
    from auditlens import das

    das(load_subject(build("gpt2")), _swaps(40, equal_lengths=False), at="layer:1", position="all")


CASES += [("das asked for more directions than the site is wide", das_dim_wider_than_the_site),
          ("das on too few pairs to hold some out", das_with_too_few_pairs),
          ("das at every position of bases and sources of unequal length", das_all_positions_of_unequal_inputs)]


def unsafe_expression_in_a_causal_model():
    Path("c.yaml").write_text("labels: [fewer, more]\nexamples: [{text: a, label: more}, {text: b, label: fewer}]\n"
                              "causal_model:\n  variables: {count_a: input, more: \"__import__('os').system('ls')\"}\n"
                              "  output: more\n")
    load_concept("c.yaml")


def row_without_a_variable_of_the_causal_model():
    Path("rows.jsonl").write_text('{"text": "m0 a a b", "label": 1, "variables": {"count_a": 2}}\n'
                                  '{"text": "m0 b", "label": 0, "variables": {"count_a": 0, "count_b": 1}}\n')
    Path("c.yaml").write_text("labels: [fewer, more]\nfile: rows.jsonl\ncausal_model:\n"
                              "  variables: {count_a: input, count_b: input, more: count_a > count_b}\n  output: more\n")
    load_concept("c.yaml")


def causal_model_with_a_cycle():
    from auditlens import CausalModel

    CausalModel({"count_a": "input", "lead": "count_a - rest", "rest": "lead + 1", "more": "lead > 0"}, output="more")


def interchange_on_a_variable_the_output_ignores():
    from auditlens import CausalModel, interchange_pairs

    model = CausalModel({"count_a": "input", "count_b": "input", "marker": "input", "more": "count_a > count_b"},
                        output="more")
    texts = ("m0 a a b", "m1 a b b", "m1 a a a", "m0 b")
    concept = Concept("counts", examples=texts, labels=(1, 0, 1, 0), causal_model=model, variables=tuple(
        {"count_a": t.count("a"), "count_b": t.count("b"), "marker": t[:2]} for t in texts))
    interchange_pairs(model, concept, "marker", seed=0)


CASES += [
    ("an unsafe expression in a concept's causal model", unsafe_expression_in_a_causal_model),
    ("a concept row without a variable its causal model needs", row_without_a_variable_of_the_causal_model),
    ("a causal model whose variables form a cycle", causal_model_with_a_cycle),
    ("interchange pairs on a variable the output does not read", interchange_on_a_variable_the_output_ignores),
]


def table() -> str:
    rows = ["| bad input | error (type: message) |", "|---|---|"]
    for name, case in CASES:
        rows.append(f"| {name} | {message_with_type(case)} |")
    return "\n".join(rows) + "\n"


def message_with_type(case) -> str:
    from auditlens import AuditlensError

    try:
        case()
    except AuditlensError as exc:
        text = " / ".join(line.strip() for line in str(exc).splitlines()).replace("|", "\\|")
        text = text.replace(os.path.realpath(os.getcwd()), ".")  # the scratch directory differs per run
        return f"`{type(exc).__name__}`: {text}"
    raise AssertionError(f"{case.__name__} raised nothing")


if __name__ == "__main__":  # regenerate docs/errors.md: python tests/error_cases.py
    import os
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    doc = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
    head = doc.read_text().split("<!-- generated from tests/error_cases.py -->\n", 1)[0]
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        generated = table()
    doc.write_text(head + "<!-- generated from tests/error_cases.py -->\n" + generated)
