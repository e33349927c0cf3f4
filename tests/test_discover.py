"""auditlens discover (issue 18, item 3): a draft audit file from attribution and measured circuit checks."""

import shutil
from pathlib import Path

import yaml

from auditlens.cli import main

PROBES = Path(__file__).parent.parent / "probes"


def test_discover_drafts_an_audit_that_holds_the_learned_twin_and_fails_the_cheated(audit_repo, monkeypatch,
                                                                                  capsys):
    monkeypatch.chdir(audit_repo.path)
    shutil.copy(PROBES / "count_swapped.yaml", audit_repo.path / "probes")
    shutil.copy(PROBES / "count_swapped.jsonl", audit_repo.path / "probes")
    assert main(["discover", "more_a_than_b", "--pairs", "count_swapped", "--model", "fixture:count-learned",
                 "--top", "4"]) == 0
    assert "review it before use" in capsys.readouterr().out
    draft = audit_repo.path / "audits" / "discovered_more_a_than_b.audit.yaml"
    text = draft.read_text()
    assert text.startswith("# Drafted by `auditlens discover`") and "Spearman" in text and "&id" not in text
    audits = yaml.safe_load(text)["audits"]
    # a necessity audit always; a faithfulness audit where the top components alone recover something (on
    # some builds of the count twin they recover nothing: MLPs carry it too, and no bound could fail)
    kinds = [next(k for k in a if k in ("necessity", "faithfulness")) for a in audits]
    assert kinds[0] == "necessity" and kinds in (["necessity"], ["necessity", "faithfulness"])
    assert all(float(list(a["expect"].values())[0].split()[-1]) > 0 for a in audits)  # no bound that cannot fail
    assert main(["validate", str(draft), "--probes", "probes"]) == 0
    result = audit_repo.runpytest("audits", "--model", "fixture:count-learned", "--model", "fixture:count-cheated",
                                  "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*fixture:count-learned*learned*", "*fixture:count-cheated*cheated*"])


def test_discover_refuses_a_circuit_of_nothing(capsys):
    assert main(["discover", "more_a_than_b", "--pairs", "count_swapped", "--model", "fixture:count-learned",
                 "--top", "0", "--probes", str(PROBES)]) == 2
    assert "--top must be 1 or more; got 0" in capsys.readouterr().err
