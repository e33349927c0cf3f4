"""Every public call that takes a path takes a str and an os.PathLike alike (issue 37: attach_dictionary
took a Path and crashed on the str the README shows)."""

from pathlib import Path

import pytest
import torch

from auditlens import (
    ActivationStore,
    Circuit,
    ZeroAblation,
    load_circuit,
    load_concept,
    load_dictionary,
    load_subject,
    save_saelens,
    train_topk,
)
from auditlens.concepts.files import concept_files
from auditlens.declarative import load_audit_file, read_audit_file, validate_paths
from auditlens.dictionaries import DictionaryError
from auditlens.repair import repair
from auditlens.report import build_report, read_report, write_report
from auditlens.zoo.vocab import word_tokenizer
from tiny_models import VOCAB, build

CONCEPT = "examples:\n- {text: w1 w2, label: 0}\n- {text: w3 w4, label: 1}\n"
AUDIT = "audits:\n- name: p\n  probe: {concept: c, at: 'layer:0'}\n  expect: {accuracy: '>= 0.5'}\n"
RUN = {"auditlens": "0", "torch": "t", "transformers": "x", "seed": 0, "git_commit": None}


def _dictionary(tmp_path) -> Path:
    dictionary, _ = train_topk(torch.randn(64, 32, generator=torch.Generator().manual_seed(0)), width=8, k=2, steps=3)
    return save_saelens(dictionary, tmp_path / "sae")


def _model(tmp_path) -> Path:
    build("gpt2").save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def _file(tmp_path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path / name


def attach_dictionary(tmp_path, given):
    site = load_subject(build("gpt2")).attach_dictionary("layer:1", given(_dictionary(tmp_path)))
    assert site.name == "features:layer:1"


def load_dictionary_(tmp_path, given):
    assert load_dictionary(given(_dictionary(tmp_path))).d_sae == 8


def save_saelens_(tmp_path, given):
    dictionary = load_dictionary(_dictionary(tmp_path))
    assert (save_saelens(dictionary, given(tmp_path / "again")) / "cfg.json").is_file()


def load_subject_(tmp_path, given):
    assert load_subject(given(_model(tmp_path))).n_layers == 3


def load_subject_tokenizer(tmp_path, given):
    word_tokenizer([f"w{i}" for i in range(VOCAB - 3)]).save_pretrained(tmp_path / "tokenizer")
    subject = load_subject(build("gpt2"), tokenizer=given(tmp_path / "tokenizer"))
    assert subject.encode(["w1 w2"]).input_ids.shape == (1, 2)


def load_subject_offload_dir(tmp_path, given):
    subject = load_subject(given(_model(tmp_path)), device_map={"": "cpu"}, offload_dir=given(tmp_path / "offload"))
    assert subject.n_layers == 3


def load_concept_(tmp_path, given):
    assert len(load_concept(given(_file(tmp_path, "c.yaml", CONCEPT)))) == 2


def concept_files_(tmp_path, given):
    _file(tmp_path, "c.yaml", CONCEPT)
    assert [p.name for p in concept_files(given(tmp_path))] == ["c.yaml"]


def load_circuit_(tmp_path, given):
    assert load_circuit(given(_file(tmp_path, "circuit.yaml", "components: ['head:0.1']\n"))).components == ("head:0.1",)


def circuit_of_a_file(tmp_path, given):
    assert Circuit.of(given(_file(tmp_path, "circuit.yaml", "components: ['mlp:0']\n"))).components == ("mlp:0",)


def load_audit_file_(tmp_path, given):
    assert [e.name for e in load_audit_file(given(_file(tmp_path, "a.audit.yaml", AUDIT)), {"c"})] == ["p"]


def read_audit_file_(tmp_path, given):
    entries, errors = read_audit_file(given(_file(tmp_path, "a.audit.yaml", AUDIT)), {"c"})
    assert len(entries) == 1 and errors == []


def validate_paths_(tmp_path, given):
    (tmp_path / "probes").mkdir()
    _file(tmp_path / "probes", "c.yaml", CONCEPT)
    assert validate_paths([given(_file(tmp_path, "a.audit.yaml", AUDIT))], probes=given(tmp_path / "probes")) == 0


def write_and_read_report(tmp_path, given):
    written = write_report(build_report([], RUN), given(tmp_path / "report"))
    assert read_report(given(written["json"]))["run"]["seed"] == 0
    assert read_report(given(tmp_path / "report"))["run"]["seed"] == 0


def activation_store_directory(tmp_path, given):
    store = ActivationStore(directory=given(tmp_path / "cache"))
    store.use_directory(given(tmp_path / "cache2"))
    assert store.disk.directory == tmp_path / "cache2" and store.disk.directory.is_dir()


def repaired_save_pretrained(tmp_path, given):
    subject = load_subject(build("gpt2"))
    assert (repair(subject, ZeroAblation(subject.site("mlp:0"))).save_pretrained(given(tmp_path / "out"))
            / "config.json").is_file()


CALLS = [attach_dictionary, load_dictionary_, save_saelens_, load_subject_, load_subject_tokenizer,
         load_subject_offload_dir, load_concept_, concept_files_, load_circuit_, circuit_of_a_file, load_audit_file_,
         read_audit_file_, validate_paths_, write_and_read_report, activation_store_directory, repaired_save_pretrained]


@pytest.mark.parametrize("given", [str, Path], ids=["str", "Path"])
@pytest.mark.parametrize("call", CALLS, ids=[c.__name__.rstrip("_") for c in CALLS])
def test_a_path_may_be_a_str_or_a_path(call, given, tmp_path, capsys):
    call(tmp_path, given)


def test_attach_dictionary_names_what_it_was_given_when_it_is_neither_a_path_nor_a_dictionary():
    with pytest.raises(DictionaryError, match=r"attach_dictionary\('layer:1', \.\.\.\).*directory \(str or "
                                              r"os\.PathLike\).*got dict"):
        load_subject(build("gpt2")).attach_dictionary("layer:1", {"W_enc": None})
