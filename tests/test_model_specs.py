"""What a --model spec names: a mistyped local directory is refused before any hub lookup, with the
closest directory; a hub id that fails is tried once per session; either way the run is a usage error
(exit 4), not a finding about a model."""

from __future__ import annotations

import pytest

from auditlens import load_subject
from auditlens.errors import ModelLoadError
from auditlens.model_spec import check_local_path, closest_directory, hub_id_of, looks_like_a_path

AUDIT = """
from auditlens import probe

def test_count_is_represented(subject, more_a_than_b):
    assert probe(subject, more_a_than_b, at="layer:1").accuracy >= 0.9
"""

YAML_AUDITS = """
audits:
  - name: count represented
    probe: {concept: more_a_than_b, at: "layer:1"}
    expect: {accuracy: ">= 0.9"}
  - name: count represented at the first block
    probe: {concept: more_a_than_b, at: "layer:0"}
    expect: {accuracy: ">= 0.5"}
"""


@pytest.fixture
def project(audit_repo, monkeypatch):
    """A user's repository with a local model directory models/reviews-chat, one Python audit and two
    YAML audits; every call of the session's loader counted."""
    (audit_repo.path / "models" / "reviews-chat").mkdir(parents=True)
    audit_repo.makepyfile(test_audit=AUDIT)
    (audit_repo.path / "count.audit.yaml").write_text(YAML_AUDITS)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(audit_repo.path / "empty-hub-cache"))
    import auditlens.session

    calls = []
    real = auditlens.session.load_subject

    def counted(spec, **kwargs):
        calls.append(spec)
        return real(spec, **kwargs)

    monkeypatch.setattr(auditlens.session, "load_subject", counted)
    return audit_repo, calls


def test_a_mistyped_local_directory_stops_the_run_with_the_closest_one_as_a_usage_error(project):
    pytester, calls = project
    result = pytester.runpytest("test_audit.py", "count.audit.yaml", "--model", "models/reviews-chaet")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no local directory models/reviews-chaet exists, so it was not looked up on the "
                                 "hub. Did you mean models/reviews-chat?*hub:ORG/NAME*"])
    assert calls == []  # refused before any audit, loader or hub lookup
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_hub_id_that_fails_is_tried_once_and_the_run_exits_as_a_usage_error(project):
    pytester, calls = project
    result = pytester.runpytest("test_audit.py", "count.audit.yaml", "--model", "acme/no-such-model")
    assert calls == ["acme/no-such-model"]  # three audits, one try
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(failed=2, errors=1)  # each audit of the model says why, from the one try
    result.stdout.fnmatch_lines(["cannot load 'acme/no-such-model': it is not a local directory, and the hub gave no "
                                 "model for it (offline or unknown id; without a network, HF_HUB_OFFLINE=1 *"])
    assert "Traceback" not in result.stdout.str()


def test_a_model_that_loads_is_not_a_usage_error(project):
    pytester, calls = project
    result = pytester.runpytest("test_audit.py", "--model", "fixture:count-learned")
    assert result.ret == pytest.ExitCode.OK and calls == ["fixture:count-learned"]


@pytest.mark.parametrize("spec", ["./model", "~/model", "/models/x", "models/x", "a/b/c", "models\\x", "a b"])
def test_specs_with_path_syntax_or_a_local_first_part_look_like_paths(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert looks_like_a_path(spec) and hub_id_of(spec) is None


@pytest.mark.parametrize("spec", ["gpt2", "acme/tiny", "sentence-transformers/all-MiniLM-L6-v2"])
def test_hub_ids_do_not_look_like_paths(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not looks_like_a_path(spec) and hub_id_of(spec) == spec


def test_hub_prefix_names_a_hub_id_even_where_a_local_directory_has_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme" / "tiny").mkdir(parents=True)
    assert hub_id_of("acme/tiny") is None and hub_id_of("hub:acme/tiny") == "acme/tiny"
    check_local_path("hub:acme/nothing")  # not refused as a missing directory


def test_a_hub_prefix_looks_the_id_up_on_the_hub_beside_a_local_directory_of_its_first_part(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelLoadError, match="no local directory models/tiny exists"):
        load_subject("models/tiny")
    with pytest.raises(ModelLoadError, match="cannot load 'models/tiny': it is not a local directory, and the hub"):
        load_subject("hub:models/tiny")


def test_a_hub_prefix_naming_a_local_directory_too_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme" / "tiny").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="hub:acme/tiny: a local directory acme/tiny exists too, and "
                                             "transformers would read it instead of the hub"):
        load_subject("hub:acme/tiny")


def test_the_closest_directory_is_found_part_by_part(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "reviews-chat").mkdir(parents=True)
    assert closest_directory("models/reviews-chaet") == "models/reviews-chat"
    assert closest_directory("modls/reviews-chat") == "models/reviews-chat"
    assert closest_directory("./models/reveiws-chat") == "./models/reviews-chat"
    assert closest_directory("models/something-else") is None


def test_load_subject_refuses_a_mistyped_directory_with_the_closest_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "reviews-chat").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match=r"no local directory \./models/reviews-chaet exists.*Did you mean "
                                             r"\./models/reviews-chat\?"):
        load_subject("./models/reviews-chaet")


def test_init_writes_the_hub_offline_guidance_into_the_project(tmp_path, capsys):
    from auditlens.cli.init import init_repository

    init_repository(tmp_path)
    assert "export HF_HUB_OFFLINE=1" in (tmp_path / "pyproject.toml").read_text()
    assert "HF_HUB_OFFLINE=1" in capsys.readouterr().out
