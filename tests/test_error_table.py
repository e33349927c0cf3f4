"""docs/errors.md lists every bad input we handle and the message it gets; this keeps it true."""

import os
from pathlib import Path

import error_cases

DOC = Path(__file__).parent.parent / "docs" / "errors.md"
MARKER = "<!-- generated from tests/error_cases.py -->\n"


def test_every_bad_input_gets_its_documented_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    table = error_cases.table()
    documented = DOC.read_text().split(MARKER, 1)[1]
    assert documented == table, "docs/errors.md is stale: regenerate it with python tests/error_cases.py"
