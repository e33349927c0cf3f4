"""The pytest plugin, driven through pytester on small audit files."""

import json

import pytest

MODELS = ["--model", "fixture:count-learned", "--model", "fixture:count-cheated"]

AUDIT = """
from auditlens import patch, probe

def test_marker_is_ignored(subject, marker_swapped):
    assert patch(subject, marker_swapped, at="layer:0").flip_rate <= 0.05

def test_count_is_represented(subject, more_a_than_b):
    assert probe(subject, more_a_than_b, at="layer:1").accuracy >= 0.9
"""


@pytest.fixture
def audit_dir(audit_repo):
    """A user's repository: probes/ with two concepts and one audit file."""
    audit_repo.makepyfile(test_audit=AUDIT)
    return audit_repo


def test_every_audit_runs_once_per_model_with_the_model_in_its_id(audit_dir):
    result = audit_dir.runpytest("-v", *MODELS)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*test_marker_is_ignored[[]fixture:count-learned[]] PASSED*",
        "*test_marker_is_ignored[[]fixture:count-cheated[]] FAILED*",
    ])


def test_a_failed_assertion_prints_the_evidence(audit_dir):
    result = audit_dir.runpytest(*MODELS)
    result.stdout.fnmatch_lines([
        "*assert flip_rate = 1.0000 (95% CI [[]1.000, 1.000[]]), expected <= 0.05",
        "*patch layer:0 (positions all) from counterfactual sources of 'marker_swapped' on fixture:count-cheated*",
        "*auditlens evidence*",
        "*flip rate*1.000*",
        "*'m0 * <=  m1 *': prediction fewer -> more (expected fewer)*",
    ])
    assert "tensor(" not in result.stdout.str()


def test_results_are_stored_as_plain_data(audit_dir):
    audit_dir.runpytest(*MODELS, "--audit-report", "out")
    report = json.loads((audit_dir.path / "out" / "report.json").read_text())
    assert report["schema"] == "auditlens.report/2" and report["run"]["seed"] == 0
    models = {m["id"]: m for m in report["models"]}
    assert set(models) == {"fixture:count-learned", "fixture:count-cheated"}
    assert all(m["forward_passes"] > 0 and m["fingerprint"] for m in models.values())
    audit = next(a for a in models["fixture:count-cheated"]["audits"] if "test_marker_is_ignored" in a["nodeid"])
    assert audit["outcome"] == "failed" and audit["metrics"]["flip_rate"] == 1.0
    assert audit["file"] == "test_audit.py" and audit["line"] == 3  # the def line
    check = audit["checks"][0]
    assert check["check"] == "patch" and check["intervals"]["flip_rate"]["level"] == 0.95
    assert check["thresholds"] == [
        {"metric": "flip_rate", "op": "<=", "value": 0.05, "passed": False, "uncertain": False, "vacuous": None}]


def test_models_marker_pins_an_audit_by_pattern(audit_dir):
    audit_dir.makepyfile(test_pinned="""
import pytest

@pytest.mark.models("fixture:count-learn*")
def test_only_on_learned(subject):
    assert subject.id == "fixture:count-learned"

@pytest.mark.models("fixture:other-*")
def test_for_other_models(subject):
    raise AssertionError("never runs")
""")
    result = audit_dir.runpytest("test_pinned.py", "-v", "-rs", *MODELS)
    result.assert_outcomes(passed=1, skipped=1)  # no item at all for the models that do not match
    result.stdout.fnmatch_lines(["*test_only_on_learned[[]fixture:count-learned[]] PASSED*",
                                 "*no model in this run matches models('fixture:other-*')*"])


def test_verdicts_are_shown_and_stored(audit_dir):
    result = audit_dir.runpytest(*MODELS, "--audit-report", "out")
    result.stdout.fnmatch_lines(["*auditlens verdicts*",
                                 "fixture:count-learned  learned *all 2 audits that ran passed  (known truth: learned)*",
                                 "fixture:count-cheated  cheated *patch at layer:0 on marker_swapped: flip_rate = 1.000, "
                                 "needed <= 0.05 "
                                 "(test_marker_is_ignored*); 1 more mechanistic audit failed  (known truth: cheated)*"])
    report = json.loads((audit_dir.path / "out" / "report.json").read_text())
    models = {m["id"]: m for m in report["models"]}
    assert models["fixture:count-cheated"]["verdict"] == "cheated" and models["fixture:count-cheated"]["counts"]["failed"] == 2
    assert models["fixture:count-learned"]["truth"] == "learned"


def test_an_audit_that_errors_makes_the_verdict_inconclusive(audit_dir):
    audit_dir.makepyfile(test_error="""
from auditlens import probe

def test_bad_site(subject, more_a_than_b):
    probe(subject, more_a_than_b, at="layer:9")
""")
    result = audit_dir.runpytest("test_error.py", "--model", "fixture:count-learned")
    result.stdout.fnmatch_lines(["fixture:count-learned  inconclusive *1 audit ended in error or was lost "
                                 "(test_bad_site*: site 'layer:9'*"])


def test_a_library_error_in_a_python_audit_is_an_error_shown_by_its_message(audit_dir):
    """Issue 37: a SiteError showed as FAILED under some 60 lines of library traceback, with no 'did you mean'."""
    audit_dir.makepyfile(test_site="""
from auditlens import probe

def test_bad_site(subject, more_a_than_b):
    concept = more_a_than_b
    assert probe(subject, concept, at="mlp.1").accuracy >= 0.9
""")
    result = audit_dir.runpytest("test_site.py", "--model", "fixture:count-learned")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at call of test_bad_site[[]fixture:count-learned[]]*",
                                 "test_site.py:5: SiteError: unknown site 'mlp.1' in GPT2ForSequenceClassification; "
                                 "did you mean 'mlp:1'?",
                                 "  valid aliases: embed, attn:0..1, layer:0..1, mlp:0..1"])
    assert "resolve_site" not in result.stdout.str() and "Traceback" not in result.stdout.str()
    report = json.loads((audit_dir.path / "reports" / "report.json").read_text())
    assert report["models"][0]["audits"][0]["outcome"] == "error"


def test_a_misspelt_concept_fixture_names_the_closest_concepts(audit_dir):
    """Issue 37: ('sentimant_city', <FixtureRequest for <Function ...>>) leaked into the verdict line."""
    audit_dir.makepyfile(test_typo="""
def test_typo(subject, more_a_than_bb):
    pass
""")
    result = audit_dir.runpytest("test_typo.py", "--model", "fixture:count-learned")
    result.assert_outcomes(errors=1)
    message = ("fixture 'more_a_than_bb' not found: no fixture is named so, and there is no concept file "
               "probes/more_a_than_bb.yaml (a concept's fixture is named after its file); did you mean "
               "'more_a_than_b'? Concepts: marker_swapped, more_a_than_b")
    result.stdout.fnmatch_lines([message, f"fixture:count-learned  inconclusive 1 audit ended in error or was lost "
                                          f"(test_typo[[]fixture:count-learned[]]: {message})*"])
    assert "FixtureRequest" not in result.stdout.str()


def test_ini_keys_set_models_seed_and_report(audit_dir):
    audit_dir.makeini("""
[pytest]
audit_models =
    fixture:count-learned
audit_seed = 7
audit_report = ini-out
""")
    audit_dir.makepyfile(test_seed="""
from auditlens.settings import seed_or_default

def test_seed(subject):
    assert seed_or_default(None) == 7
""")
    result = audit_dir.runpytest("test_seed.py")
    result.assert_outcomes(passed=1)


def test_seed_option_reaches_the_checks(audit_dir):
    audit_dir.makepyfile(test_seed="""
from auditlens.settings import seed_or_default

def test_seed():
    assert seed_or_default(None) == 11
""")
    audit_dir.runpytest("test_seed.py", "--audit-seed", "11").assert_outcomes(passed=1)


def test_no_model_is_a_clear_failure(audit_dir):
    result = audit_dir.runpytest("test_audit.py")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*no model to audit: pass --model SPEC (repeatable) or set audit_models*"])


def test_a_model_that_cannot_load_is_named(audit_dir):
    result = audit_dir.runpytest("test_audit.py", "--model", "fixture:count-lerned")
    result.stdout.fnmatch_lines(["*cannot load model 'fixture:count-lerned': no fixture named 'count-lerned'. "
                                 "Did you mean count-learned*"])
    assert "Traceback" not in result.stdout.str()


def test_a_broken_concept_file_fails_its_audits_with_the_file_named(audit_dir):
    (audit_dir.path / "probes" / "more_a_than_b.yaml").write_text("exampels: []\n")
    result = audit_dir.runpytest("test_audit.py", "--model", "fixture:count-learned")
    result.stdout.fnmatch_lines(["*more_a_than_b.yaml:1: unknown key 'exampels'; did you mean 'examples'?*"])


def test_junit_xml_carries_the_metrics_as_properties(audit_dir):
    audit_dir.runpytest(*MODELS, "--junitxml", "junit.xml")
    xml = (audit_dir.path / "junit.xml").read_text()
    assert 'name="auditlens.patch.layer:0"' in xml and "flip_rate" in xml


def test_help_documents_every_option(pytester):
    result = pytester.runpytest("--help")
    for option in ("--model=SPEC", "--audit-report=DIR", "--audit-seed=N", "--audit-device=DEVICE",
                   "--audit-trust-remote-code", "--audit-allow-pickle", "--audit-baseline=REPORT",
                   "--audit-fail-on-regression", "--audit-regression-tolerance=X",
                   "audit_models", "audit_report", "audit_seed", "audit_device", "audit_probes"):
        result.stdout.fnmatch_lines([f"*{option}*"])


def test_a_hook_left_on_a_model_fails_the_session_loudly(audit_dir):
    audit_dir.makepyfile(test_leak="""
from auditlens import ZeroAblation, intervene

KEPT = []

def test_leaves_a_hook(subject):
    context = intervene(subject, ZeroAblation(subject.site("layer:0")))
    context.__enter__()  # never exited, and kept alive: the hook stays
    KEPT.append(context)
""")
    result = audit_dir.runpytest("test_leak.py", "--model", "fixture:count-learned")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*auditlens hooks are still installed after the session "
                                 "(fixture:count-learned: 1 hooks)*"])


def test_a_second_session_with_the_cache_dir_runs_no_forward_pass(audit_dir):
    def passes(out):
        audit_dir.runpytest(*MODELS, "--audit-cache-dir", "cache", "--audit-report", out)
        report = json.loads((audit_dir.path / out / "report.json").read_text())
        return {m["id"]: m["forward_passes"] for m in report["models"]}

    from auditlens import session_cache

    first = passes("first")
    assert all(count > 0 for count in first.values()) and (audit_dir.path / "cache").is_dir()
    session_cache.clear()  # nothing of the first session left in this process's memory
    assert passes("second") == {model: 0 for model in first}


def test_the_session_seed_does_not_outlive_the_session(audit_dir):
    from auditlens.settings import seed_or_default

    before = seed_or_default(None)
    audit_dir.runpytest("test_audit.py", "--audit-seed", "13", "--model", "fixture:count-learned")
    assert seed_or_default(None) == before


@pytest.mark.parametrize("name", ["subject", "request"])
def test_a_concept_file_cannot_shadow_a_fixture(audit_dir, name):
    (audit_dir.path / "probes" / f"{name}.yaml").write_text("labels: [a, b]\nexamples: [{text: x, label: a}]\n")
    result = audit_dir.runpytest("test_audit.py", "--model", "fixture:count-learned")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*probes/{name}.yaml: a concept file cannot be named '{name}'*rename the file"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


ROOTDIR_AUDIT = """
audits:
  - name: the count is read at the last block
    probe: {concept: more_a_than_b, at: "layer:1"}
    expect: {accuracy: ">= 0.6"}
"""


def test_a_model_directory_outside_the_repository_does_not_lose_the_configuration(audit_repo, tmp_path_factory):
    """Issue 26: `pytest --model /abs/path` (space form, no test path) made pytest take the model's directory
    for a test path when it looked for its configuration: audit_probes was lost, and every YAML audit
    failed with 'unknown concept'. Now the run stops at once and says what to type; that works."""
    import shutil

    from auditlens.zoo.registry import resolve_fixture

    outside = tmp_path_factory.mktemp("checkpoints") / "count-learned"
    shutil.copytree(resolve_fixture("count-learned")[0], outside)
    audit_repo.makefile(".toml", pyproject='[tool.pytest.ini_options]\naudit_probes = "probes"\n')
    (audit_repo.path / "audits").mkdir()
    (audit_repo.path / "audits" / "count.audit.yaml").write_text(ROOTDIR_AUDIT)
    misread = audit_repo.runpytest_subprocess("--model", str(outside), "-p", "no:cacheprovider")
    assert misread.ret == 4
    misread.stderr.fnmatch_lines([f"*pytest took the model directory {outside} for a test path*Write the option "
                                  f"with '=': pytest *--model={outside} -p no:cacheprovider*"])
    fixed = audit_repo.runpytest_subprocess(f"--model={outside}", "-p", "no:cacheprovider")
    assert fixed.ret == 0 and "unknown concept" not in fixed.stdout.str()
    fixed.stdout.fnmatch_lines(["*1 passed*"])
