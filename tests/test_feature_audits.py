"""Audit files name dictionary features: a ``dictionaries:`` map attaches them (a directory beside the
file, or a TopK SAE trained on the model's activations and cached), and entries name features:SITE."""

from pathlib import Path

import pytest

from auditlens.declarative import AuditFileError, load_audit_file

PROBES = Path(__file__).parent.parent / "probes"
CONCEPTS = {p.stem for p in PROBES.glob("*.yaml")}

TRAINED = """\
dictionaries:
  layer:0: {train: {data: [more_a_than_b], width: 32, k: 4, position: last}}
audits:
  - name: the latents hold the count
    probe: {concept: more_a_than_b, at: "features:layer:0", position: last}
    expect: {accuracy: ">= 0.9"}
"""


def load(tmp_path, text):
    path = tmp_path / "features.audit.yaml"
    path.write_text(text)
    return load_audit_file(path, CONCEPTS)


def test_a_dictionaries_map_is_read_with_the_entries(tmp_path):
    (entry,) = load(tmp_path, TRAINED)
    (declared,) = entry.dictionaries
    assert declared.site == "layer:0" and dict(declared.train)["width"] == 32 and declared.path is None


@pytest.mark.parametrize("text, message", [
    ("dictionaries:\n  layer:0: ../elsewhere\n", "lies outside the audit file's directory"),
    ("dictionaries:\n  layer:0: saes/missing\n", "no dictionary directory at"),
    ("dictionaries:\n  head:0.1: saes\n", "is not a site a dictionary reads"),
    ("dictionaries:\n  layer:0: {train: {data: [no_such_concept]}}\n", "not a concept in probes/"),
    ("dictionaries:\n  layer:0: {path: saes, train: {data: [more_a_than_b]}}\n", "dictionaries.layer:0"),
])
def test_a_bad_dictionaries_map_names_the_file_line_and_key(tmp_path, text, message):
    audits = ("audits:\n  - name: x\n    probe: {concept: more_a_than_b, at: 'features:layer:0'}\n"
              "    expect: {accuracy: '>= 0.5'}\n")
    with pytest.raises(AuditFileError, match=message) as caught:
        load(tmp_path, text + audits)
    assert "features.audit.yaml:2" in str(caught.value)


def test_a_feature_site_is_checked_when_the_file_is_read(tmp_path):
    with pytest.raises(AuditFileError, match="not a feature site"):
        load(tmp_path, "audits:\n  - name: x\n    probe: {concept: more_a_than_b, at: 'features:layer:0/3'}\n"
                       "    expect: {accuracy: '>= 0.5'}\n")
    with pytest.raises(AuditFileError, match="is not a site"):
        load(tmp_path, "audits:\n  - name: x\n    probe: {concept: more_a_than_b, at: 'feature:lyr:0/3'}\n"
                       "    expect: {accuracy: '>= 0.5'}\n")


def test_a_trained_dictionary_is_attached_before_the_audit_runs(audit_repo, monkeypatch, tmp_path):
    monkeypatch.setenv("AUDITLENS_DICTIONARY_CACHE", str(tmp_path / "cache"))
    audit_repo.makefile(".audit.yaml", features=TRAINED)
    result = audit_repo.runpytest("-v", "--model", "fixture:count-learned", "--model", "fixture:count-cheated")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the-latents-hold-the-count[[]fixture:count-learned[]] PASSED*"])
    assert len(list((tmp_path / "cache").iterdir())) == 2  # one per model, trained once each


ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def superposition_outcomes(tmp_path_factory):
    """Every audit of audits/superposition.audit.yaml on both twins: {truth: {audit name: passed}}."""
    import os

    from auditlens import load_concept, load_subject

    os.environ["AUDITLENS_DICTIONARY_CACHE"] = str(tmp_path_factory.mktemp("dictionaries"))
    try:
        entries = load_audit_file(ROOT / "audits" / "superposition.audit.yaml", CONCEPTS)
        outcomes = {}
        for truth in ("learned", "cheated"):
            subject = load_subject(f"fixture:superposition-{truth}")
            outcomes[truth] = {e.name: not e.run(subject, lambda n: load_concept(PROBES / f"{n}.yaml"))[1]
                               for e in entries}
        return outcomes
    finally:
        del os.environ["AUDITLENS_DICTIONARY_CACHE"]


def test_audits_on_latents_tell_the_superposition_twins_apart(superposition_outcomes):
    """34 features in a 16-wide residual: the latents most tied to 'alpha' decide the learned twin's answer and
    the ones tied to 'beta' the cheated twin's; every audit fails the cheated twin."""
    assert all(superposition_outcomes["learned"].values()), superposition_outcomes["learned"]
    assert not any(superposition_outcomes["cheated"].values()), superposition_outcomes["cheated"]


def test_a_dictionary_recovers_the_planted_features():
    from auditlens import load_concept, load_subject
    from auditlens.dictionaries import max_cosine_recovery
    from auditlens.features.fit import fit_dictionary
    from auditlens.zoo import superposition_task

    subject = load_subject("fixture:superposition-learned")
    dictionary, stats = fit_dictionary(subject, "layer:0", [load_concept(PROBES / "superposition_corpus.yaml")],
                                       width=64, k=4, position="last")
    _, planted = superposition_task.planted_directions(subject.model, subject.tokenizer)
    assert max_cosine_recovery(planted, dictionary) >= 0.9 and stats.l0 <= 4


def test_a_dictionary_may_read_the_hidden_units_of_an_mlp(tmp_path):
    (tmp_path / "saes").mkdir()
    (entry,) = load(tmp_path, "dictionaries:\n  neurons:1: {train: {data: [more_a_than_b]}}\naudits:\n  - name: x\n"
                              "    probe: {concept: more_a_than_b, at: 'features:neurons:1'}\n"
                              "    expect: {accuracy: '>= 0.5'}\n")
    assert entry.dictionaries[0].site == "neurons:1"
