"""Declarative audits: every malformed file gets an error naming the file, the line, the entry and the
key; well-formed files run as pytest items beside Python audits."""

import json
import shutil
from pathlib import Path

import pytest

from auditlens.declarative import AuditFileError, load_audit_file, parse_condition, schema
from auditlens.declarative.audit_file import read_audit_file

PROBES = Path(__file__).parent.parent / "probes"
CONCEPTS = {p.stem for p in PROBES.glob("*.yaml")}

GOOD = """\
audits:
  - name: count represented
    probe: {concept: more_a_than_b, at: "layer:1", position: last}
    expect: {accuracy: ">= 0.9", selectivity: ">= 0.2"}
"""


def load(tmp_path, text):
    path = tmp_path / "bad.audit.yaml"
    path.write_text(text)
    return load_audit_file(path, CONCEPTS)


def test_a_good_file_gives_one_spec_per_entry(tmp_path):
    (spec,) = load(tmp_path, GOOD)
    assert spec.check == "probe" and spec.id == "count-represented" and spec.line == 2
    assert spec.arguments == {"concept": "more_a_than_b", "at": "layer:1", "position": "last"}
    assert spec.expect["accuracy"].holds(0.95) and not spec.expect["accuracy"].holds(0.85)


@pytest.mark.parametrize("text, line, message", [
    ("", 1, "the file is empty"),
    ("audits: [\n  {name: x\n", 3, "not valid YAML"),
    ("audit:\n  - {name: x}\n", 1, "unknown key 'audit'; did you mean 'audits'? Allowed: models, audits"),
    ("audits:\n  - name: x\n    prob: {concept: more_a_than_b}\n    expect: {accuracy: '>= 0.9'}\n", 3,
     "entry 'x' (audits[0]), unknown check or key 'prob'; did you mean 'probe'?"),
    ("audits:\n  - name: x\n    probe: {concept: more_a_than_c}\n    expect: {accuracy: '>= 0.9'}\n", 3,
     "entry 'x' (audits[0]), key 'probe.concept': unknown concept 'more_a_than_c'; did you mean 'more_a_than_b'?"),
    ("audits:\n  - name: x\n    probe: {concept: more_a_than_b, at: 'layer:1'}\n    expect: {accuracy: 'at least 0.9'}\n", 4,
     "key 'expect.accuracy': 'at least 0.9' is not a condition; write '>= 0.9'"),
    ("audits:\n  - name: x\n    probe: {concept: more_a_than_b, folds: five}\n    expect: {accuracy: '>= 0.9'}\n", 3,
     "entry 'x' (audits[0]), key 'probe.folds' is str 'five'; expected integer"),
    ("audits:\n  - name: x\n    probe: {concept: more_a_than_b, at: 'layer:1'}\n    expect: {accuracy: '>= 0.9'}\n"
     "  - name: x\n    probe: {concept: more_a_than_b, at: 'layer:0'}\n    expect: {accuracy: '>= 0.8'}\n", 5,
     "entry 'x': id 'x' is already used by the entry on line 2"),
    ("!!python/object/apply:os.system ['echo hi']\n", 1, "spec files are read with yaml.safe_load"),
    ("audits:\n  - name: x\n    probe: {concept: more_a_than_b, at: 'layr:1'}\n    expect: {accuracy: '>= 0.9'}\n",
     3, "'layr:1' is not a site; did you mean 'layer:1'?"),
    ("audits:\n  - name: x\n    probe: {concept: more_a_than_b, at: 'layer:1'}\n    expect: {acuracy: '>= 0.9'}\n",
     4, "key 'expect.acuracy': a probe result has no field 'acuracy'; did you mean 'accuracy'?"),
    ("audits:\n  - name: x\n    expect: {accuracy: '>= 0.9'}\n", 2,
     "an entry names exactly one check (probe, erase, ablate, patch, das, steer, necessity, faithfulness, "
     "minimality, ablate_tied, remove_spurious, search_trigger, expect_label, expect_invariant, expect_direction); "
     "found none"),
    ("audits:\n  - name: x\n    probe: {concept: more_a_than_b}\n    patch: {pairs: marker_swapped, at: embed}\n"
     "    expect: {accuracy: '>= 0.9'}\n", 2, "found probe, patch"),
    ("audits:\n  - name: x\n    ablate: {concept: more_a_than_b, at: embed, kind: noise}\n"
     "    expect: {accuracy_drop: '<= 0.1'}\n", 3, "key 'ablate.kind' is 'noise'; allowed: zero, mean, resample"),
    ("audits:\n  - probe: {concept: more_a_than_b}\n    expect: {accuracy: '>= 0.9'}\n", 2, "'name' is required"),
    ("- just a list\n", 1, "an audit file is a mapping with an `audits:` list; got list"),
])
def test_malformed_files_name_the_file_line_and_key(tmp_path, text, line, message):
    with pytest.raises(AuditFileError) as info:
        load(tmp_path, text)
    assert info.value.line == line, str(info.value)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{tmp_path / 'bad.audit.yaml'}:{line}: ")
    assert len(str(info.value).splitlines()) <= 2


@pytest.mark.parametrize("text, holds, fails", [
    (">= 0.9", 0.9, 0.89), ("<= 0.05", 0.05, 0.06), ("> 0", 0.01, 0.0), ("< 1", 0.5, 1.0),
    ("== 1", 1.0, 0.99), ("between 0.4 and 0.6", 0.4, 0.61), ("between -0.05 and 0.05", -0.05, 0.06),
])
def test_conditions(text, holds, fails):
    condition = parse_condition(text)
    assert condition.holds(holds) and not condition.holds(fails)


@pytest.mark.parametrize("text", ["=> 0.9", "between 0.6 and 0.4", "0.9", 0.9, ">= x"])
def test_bad_conditions_are_refused(text):
    with pytest.raises(ValueError, match="is not a condition"):
        parse_condition(text)


def test_the_schemas_are_shipped_and_valid_json_schemas():
    import jsonschema

    for kind in ("audit", "concept"):
        jsonschema.Draft202012Validator.check_schema(schema(kind))


@pytest.fixture
def repo(audit_repo):
    """A user's repository: probes/ with two concepts."""
    return audit_repo


MODELS = ["--model", "fixture:count-learned", "--model", "fixture:count-cheated"]


def test_yaml_entries_run_per_model_beside_python_audits(repo):
    repo.makefile(".audit.yaml", count=GOOD + """\
  - name: marker ignored
    patch: {pairs: marker_swapped, at: "layer:0"}
    expect: {flip_rate: "<= 0.05"}
""")
    result = repo.runpytest("-v", *MODELS)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*count.audit.yaml::count-represented[[]fixture:count-learned[]] PASSED*",
        "*count.audit.yaml::marker-ignored[[]fixture:count-cheated[]] FAILED*",
        "*count represented on fixture:count-cheated: 2 of 2 expectations missed",
        "*accuracy = 0.6450 (95% CI [[]*[]]), expected >= 0.9",
        "fixture:count-cheated  cheated *",
    ])


def test_a_malformed_file_is_one_clean_collection_error(repo):
    repo.makefile(".audit.yaml", broken="audits:\n  - name: x\n    prob: {concept: more_a_than_b}\n"
                                         "    expect: {accuracy: '>= 0.9'}\n")
    result = repo.runpytest(*MODELS)
    result.stdout.fnmatch_lines(["*broken.audit.yaml:3: entry 'x' (audits[[]0[]]), unknown check or key 'prob'; "
                                 "did you mean 'probe'?*"])
    assert "Traceback" not in result.stdout.str() and "spec.py" not in result.stdout.str()


def test_marks_and_model_patterns(repo):
    repo.makefile(".audit.yml", marked="""\
audits:
  - name: skipped one
    probe: {concept: more_a_than_b, at: "layer:1"}
    expect: {accuracy: ">= 0.9"}
    marks: [{skip: "not ready"}]
  - name: known failure
    models: ["fixture:count-cheated"]
    probe: {concept: more_a_than_b, at: "layer:1"}
    expect: {accuracy: ">= 0.9"}
    marks: [{xfail: "the cheated twin does not count"}]
""")
    result = repo.runpytest("-rsx", *MODELS)
    result.assert_outcomes(skipped=2, xfailed=1)
    result.stdout.fnmatch_lines(["*not ready*", "*the cheated twin does not count*"])


def test_yaml_and_python_forms_give_identical_numbers(repo):
    repo.makefile(".audit.yaml", count=GOOD)
    repo.makepyfile(test_count="""
from auditlens import probe

def test_count_represented(subject, more_a_than_b):
    result = probe(subject, more_a_than_b, at="layer:1", position="last")
    assert result.accuracy >= 0.9 and result.selectivity >= 0.2
""")
    repo.runpytest("--model", "fixture:count-cheated", "--audit-report", "out")
    (model,) = json.loads((repo.path / "out" / "report.json").read_text())["models"]
    yaml_result, = [a["checks"][0] for a in model["audits"] if "audit.yaml" in a["nodeid"]]
    python_result, = [a["checks"][0] for a in model["audits"] if a["nodeid"].startswith("test_count.py")]
    for timing in ("seconds_forward", "seconds_fit"):
        yaml_result["metrics"].pop(timing), python_result["metrics"].pop(timing)
    assert yaml_result["metrics"] == python_result["metrics"] and yaml_result["intervals"] == python_result["intervals"]
    # both record what they required; YAML checks every condition, Python stops at the first failed assert
    assert python_result["thresholds"] == [
        {"metric": "accuracy", "op": ">=", "value": 0.9, "passed": False, "uncertain": False, "vacuous": None}]
    assert yaml_result["thresholds"] == python_result["thresholds"] + [
        # selectivity 0.160, interval [0.098, 0.225]: the 0.2 threshold lies inside it
        {"metric": "selectivity", "op": ">=", "value": 0.2, "passed": False, "uncertain": True, "vacuous": None}]


def test_validate_command_checks_without_a_model(tmp_path, capsys, monkeypatch):
    from auditlens.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copytree(PROBES, tmp_path / "probes")
    (tmp_path / "audits").mkdir()
    (tmp_path / "audits" / "good.audit.yaml").write_text(GOOD)
    assert main(["validate", "audits", "probes/more_a_than_b.yaml"]) == 0
    assert "ok    audits/good.audit.yaml (1 audit)\n" in capsys.readouterr().out
    (tmp_path / "audits" / "bad.audit.yaml").write_text("audits: 3\n")
    (tmp_path / "probes" / "broken.yaml").write_text("examples: [{text: a}]\n")
    assert main(["validate", "audits", "probes/broken.yaml"]) == 1
    out = capsys.readouterr().out
    assert "error audits/bad.audit.yaml:1: key 'audits' is int 3; expected array" in out
    assert "error probes/broken.yaml:1: examples[0].label is missing or not a label; give a class index" in out


def test_init_scaffolds_a_repository_that_passes_validation(tmp_path, capsys, monkeypatch):
    from auditlens.cli import main

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    assert main(["init", str(tmp_path)]) == 0
    text = (tmp_path / "pyproject.toml").read_text()
    assert "[tool.pytest.ini_options]\naudit_models = " in text and 'name = "mine"' in text
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "audits", "probes"]) == 0
    assert main(["init", str(tmp_path)]) == 0  # a second run keeps what exists
    assert "kept" in capsys.readouterr().out and (tmp_path / "pyproject.toml").read_text() == text


SEVERAL_ERRORS = """\
audits:
  - name: x
    expect_invariant:
      inputs: {words: [a, b]}
      perturb: {insert: {word: [c]}}
    expect: {failure_rate: "<= 0.1"}
  - name: y
    prob: {concept: more_a_than_b}
    expect: {accuracy: ">= 0.9"}
  - name: z
    probe: {concept: more_a_than_c}
    expect: {accuracy: ">= 0.9"}
"""


def test_validate_reports_every_error_of_a_file_in_line_order(tmp_path, capsys):
    from auditlens.cli import main

    (tmp_path / "a.audit.yaml").write_text(SEVERAL_ERRORS)
    assert main(["validate", str(tmp_path / "a.audit.yaml"), "--probes", str(PROBES)]) == 1
    lines = capsys.readouterr().out.splitlines()
    # every error, the fourth one too (it hid behind the third before: one error per entry)
    assert [line.split(":")[1] for line in lines] == ["5", "8", "11", "12"]
    assert "unknown key 'word'; did you mean 'words'? Allowed: words, min_count, max_count, keep_last" in lines[0]
    assert "unknown check or key 'prob'; did you mean 'probe'?" in lines[1]
    assert "unknown concept 'more_a_than_c'; did you mean 'more_a_than_b'?" in lines[2]


THREE_IN_ONE_ENTRY = """
audits:
  - name: the count is represented
    probe: {concept: more_a_than_b, at: "layer:1", more_positiv: 3}
    expect: {accuracy: "at least 0.9", acuracy: ">= 0.9"}
  - name: fine
    probe: {concept: more_a_than_b, at: "layer:1"}
    expect: {accuracy: ">= 0.9"}
"""


def test_validate_lists_every_error_of_one_entry(tmp_path, capsys):
    """Issue 26: 'more_positiv' hid 'at least 0.9', which hid 'acuracy': three rounds to see all three."""
    from auditlens.cli import main

    (tmp_path / "a.audit.yaml").write_text(THREE_IN_ONE_ENTRY)
    assert main(["validate", str(tmp_path / "a.audit.yaml"), "--probes", str(PROBES)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("error ") for line in lines)
    assert "unknown key 'more_positiv'; did you mean 'position'?" in lines[0]
    assert "key 'expect.accuracy': 'at least 0.9' is not a condition" in lines[1]
    assert "key 'expect.acuracy': a probe result has no field 'acuracy'; did you mean 'accuracy'?" in lines[2]
    entries, errors = read_audit_file(tmp_path / "a.audit.yaml", CONCEPTS)
    assert [e.name for e in entries] == ["fine"] and len(errors) == 3  # the valid entry still reads


def test_validate_names_the_bad_condition_of_an_unknown_metric_in_the_same_round(tmp_path, capsys):
    """Issue 37: 'acuracy' hid 'at least 0.9', which is no condition whatever the key."""
    from auditlens.cli import main

    (tmp_path / "a.audit.yaml").write_text("audits:\n  - name: x\n    probe: {concept: more_a_than_b, at: 'layer:1'}\n"
                                           "    expect: {acuracy: 'at least 0.9'}\n")
    assert main(["validate", str(tmp_path / "a.audit.yaml"), "--probes", str(PROBES)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error {tmp_path / 'a.audit.yaml'}:4: ") for line in lines)
    assert "key 'expect.acuracy': a probe result has no field 'acuracy'; did you mean 'accuracy'?" in lines[0]
    assert "key 'expect.acuracy': 'at least 0.9' is not a condition; write '>= 0.9'" in lines[1]


def test_validate_lists_every_error_of_a_concept_file(tmp_path, capsys):
    """Issue 37: validate stopped at the first error of a concept file (it named all of an audit file's)."""
    from auditlens.cli import main

    (tmp_path / "c.yaml").write_text("labels: [negative, positive]\ntemplates:\n  - template: 'the {noun} was good'\n"
                                     "    label: postive\n    grup: g\nslots: {noun: [film, 3]}\n"
                                     "examples:\n  - {words: ok, label: 1}\n")
    assert main(["validate", str(tmp_path / "c.yaml"), "--probes", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1] for line in lines] == ["4", "5", "6", "8"]
    assert "templates[0].label is 'postive'; expected an index or one of ['negative', 'positive']" in lines[0]
    assert "key 'templates.0.grup': Additional properties are not allowed ('grup' was unexpected)" in lines[1]
    assert "key 'slots.noun.1': 3 is not of type 'string'" in lines[2]
    assert "examples[0] needs 'text' (text) or 'tokens' (token ids)" in lines[3]


def test_a_condition_of_the_wrong_type_does_not_hide_its_unknown_metric(tmp_path):
    (tmp_path / "a.audit.yaml").write_text("audits:\n  - name: x\n    probe: {concept: more_a_than_b, at: 'layer:1'}\n"
                                           "    expect: {acuracy: 0.9}\n")
    _, errors = read_audit_file(tmp_path / "a.audit.yaml", CONCEPTS)
    assert [error.line for error in errors] == [4, 4]
    assert "key 'expect.acuracy' is float 0.9; expected string" in str(errors[0])
    assert "a probe result has no field 'acuracy'; did you mean 'accuracy'?" in str(errors[1])


def test_collection_names_the_first_error_and_counts_the_rest(tmp_path):
    (tmp_path / "a.audit.yaml").write_text(SEVERAL_ERRORS)
    with pytest.raises(AuditFileError, match=r"a.audit.yaml:5: .*'word'.*\(3 more error\(s\) in this file: auditlens "
                                             r"validate .*a.audit.yaml\)"):
        load_audit_file(tmp_path / "a.audit.yaml", CONCEPTS)


def alias_bomb(levels=9):
    """A few hundred bytes that expand to 10**levels strings."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    from auditlens import ConceptError, load_concept

    (tmp_path / "bomb.audit.yaml").write_text(alias_bomb())
    with pytest.raises(AuditFileError, match=r"bomb.audit.yaml:\d+: not valid YAML: its aliases \(\*name\) "
                                             r"expand it to more than 100,000 values"):
        load_audit_file(tmp_path / "bomb.audit.yaml", CONCEPTS)
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    with pytest.raises(ConceptError, match="expand it to more than 100,000 values"):
        load_concept(tmp_path / "bomb.yaml")


def test_a_huge_value_is_cut_in_the_error(tmp_path):
    (tmp_path / "a.audit.yaml").write_text("audits:\n  - name: x\n    probe: {concept: more_a_than_b, folds: '"
                                           + "9" * 5000 + "'}\n    expect: {accuracy: '>= 0.9'}\n")
    with pytest.raises(AuditFileError) as info:
        load_audit_file(tmp_path / "a.audit.yaml", CONCEPTS)
    assert len(str(info.value)) < 600 and "(5002 characters)" in str(info.value)
