"""Every code block of the README and docs/ runs as written: Python blocks run (an audit file's test
functions under pytest, against the models the text names), YAML audit blocks validate, YAML concept
blocks match the concept schema. A block that is a fragment of a larger file says so in a comment
(``# ...`` as its first line is not enough: it must parse)."""

import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from auditlens.declarative import schema
from auditlens.declarative.audit_file import read_audit_file

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list:
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) == language:
                line = text[:match.start()].count("\n") + 1
                found.append(pytest.param(match.group(2), id=f"{path.relative_to(ROOT)}:{line}"))
    return found


def in_a_copy_of_the_repo(tmp_path, monkeypatch) -> Path:
    """Run where the docs' relative paths (probes/, reports/) mean what they say, without touching the checkout."""
    shutil.copytree(ROOT / "probes", tmp_path / "probes")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("code", [b for b in blocks("python") if "def test_" not in b.values[0]])
def test_a_python_block_runs_as_written(code, tmp_path, monkeypatch):
    in_a_copy_of_the_repo(tmp_path, monkeypatch)
    exec(compile(code, "<docs>", "exec"), {"__name__": "__docs__"})


# the models an audit block of the docs is written for (by the concepts it names)
AUDIT_MODELS = {"more_a_than_b": "fixture:count-learned", "negation": "fixture:minilm"}


@pytest.mark.slow
@pytest.mark.parametrize("code", [b for b in blocks("python") if "def test_" in b.values[0]])
def test_a_python_audit_block_runs_under_pytest(code, pytester):
    shutil.copytree(ROOT / "probes", pytester.path / "probes")
    if "negation" in code:  # the concept `auditlens init` scaffolds
        from auditlens.cli.init import SAMPLE_CONCEPT

        (pytester.path / "probes" / "negation.yaml").write_text(SAMPLE_CONCEPT)
    model = next(m for concept, m in AUDIT_MODELS.items() if concept in code)
    (pytester.path / "audits").mkdir()
    (pytester.path / "audits" / "test_docs_block.py").write_text(code)
    result = pytester.runpytest("audits", "--model", model, "-p", "no:cacheprovider", "--audit-report", "reports")
    outcomes = result.parseoutcomes()
    assert not outcomes.get("error") and outcomes.get("passed", 0) + outcomes.get("failed", 0) >= 1, result.stdout.str()
    if model == "fixture:count-learned":  # the README's audits hold the learned twin: the text says so
        assert result.ret == 0, result.stdout.str()


@pytest.mark.parametrize("text", blocks("yaml"))
def test_a_yaml_block_is_valid(text, tmp_path):
    data = yaml.safe_load(text)
    if isinstance(data, dict) and "audits" in data:
        (tmp_path / "block.audit.yaml").write_text(text)
        entries, errors = read_audit_file(tmp_path / "block.audit.yaml")
        assert not errors, [str(e) for e in errors]
    elif isinstance(data, dict) and "labels" in data:
        jsonschema.validate(data, schema("concept"))
    elif isinstance(data, list):  # entries of an audit file, shown alone
        (tmp_path / "block.audit.yaml").write_text(yaml.safe_dump({"audits": data}))
        entries, errors = read_audit_file(tmp_path / "block.audit.yaml")
        assert not errors or all("circuit" in str(e) for e in errors), [str(e) for e in errors]
    else:
        assert isinstance(data, dict), f"a YAML block that is neither an audit file, its entries, nor a concept: {data!r}"
