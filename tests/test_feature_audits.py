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
