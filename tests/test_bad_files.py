"""Files a user or a pull request can hand auditlens: outside paths, bytes that are not text (issue 16: 13, 15)."""

import subprocess
import sys

import pytest

from auditlens import ConceptError, load_concept


def write_concept(directory, data_path: str):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "c.yaml").write_text(f"file: {data_path}\n")
    return directory / "c.yaml"


@pytest.fixture
def data(tmp_path):
    (tmp_path / "data.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n')
    return tmp_path / "data.jsonl"


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_a_concept_cannot_read_a_file_outside_its_directory(tmp_path, data, monkeypatch, how):
    monkeypatch.delenv("AUDITLENS_ALLOW_OUTSIDE_FILES", raising=False)
    probes = tmp_path / "repo" / "probes"
    if how == "symlink":
        probes.mkdir(parents=True)
        (probes / "innocent.jsonl").symlink_to(data)
    target = {"relative": "../../data.jsonl", "absolute": str(data), "symlink": "innocent.jsonl"}[how]
    with pytest.raises(ConceptError, match="lies outside the concept file's directory"):
        load_concept(write_concept(probes, target))
    assert len(load_concept(write_concept(probes, target), allow_outside_files=True)) == 2
    monkeypatch.setenv("AUDITLENS_ALLOW_OUTSIDE_FILES", "1")
    assert len(load_concept(write_concept(probes, target))) == 2


def test_a_data_file_below_the_concept_is_fine(tmp_path, data):
    (tmp_path / "probes" / "data").mkdir(parents=True)
    (tmp_path / "probes" / "data" / "d.jsonl").write_text(data.read_text())
    assert len(load_concept(write_concept(tmp_path / "probes", "data/d.jsonl"))) == 2


def test_validate_names_every_bad_file_and_goes_on(tmp_path):
    (tmp_path / "a.audit.yaml").write_bytes(b"audits:\n  - name: caf\xe9\n")
    (tmp_path / "b.yaml").write_text('examples:\n  - {text: "x\\ud800", label: 0}\n')
    (tmp_path / "c.audit.yaml").write_text("audits:\n  - name: x\n    probe: {concept: c, at: 'layer:0'}\n"
                                           "    expect: 'accuracy >= 0.9'\n")
    out = subprocess.run([sys.executable, "-m", "auditlens.cli", "validate", "a.audit.yaml", "b.yaml", "c.audit.yaml"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    lines = out.stdout.splitlines() + out.stderr.splitlines()
    assert any(line.startswith("error a.audit.yaml:2: not UTF-8 text: byte 0xE9") for line in lines), lines
    assert any(line.startswith("error b.yaml:2:") and "lone surrogate" in line for line in lines), lines
    assert any(line.startswith("error c.audit.yaml:4:") for line in lines), lines
    assert "Traceback" not in out.stderr
