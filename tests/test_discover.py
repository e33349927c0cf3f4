"""auditlens discover (issue 18, item 3): a draft audit file from attribution and measured circuit checks."""

import shutil
from pathlib import Path

import pytest
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


def few(concepts, n=60):
    """Some of the count's examples and pairs: a draft costs passes in proportion to them."""
    from dataclasses import replace

    examples = concepts["more_a_than_b"]
    return (replace(examples, examples=examples.examples[:n], labels=examples.labels[:n], _encoded={}),
            replace(concepts["count_swapped"], pairs=concepts["count_swapped"].pairs[:n], _encoded={}))


def test_discover_drafts_a_das_audit_on_the_pairs_with_bounds_to_tune(learned, concepts, tmp_path):
    from auditlens.declarative.discover import discover, write_draft

    # given the learned twin, when discover is asked for a DAS sweep on the pairs too
    concept, pairs = few(concepts)
    text, found = discover(learned, concept, pairs, over="head:1.*", top=1,
                           das_arguments={"at": "layer:*", "max_steps": 20})
    # then the draft holds a das audit on the pairs, held to the best site's IIA and selectivity, under what was
    # measured there, and says what to tune
    (audit,) = [a for a in yaml.safe_load(text)["audits"] if "das" in a]
    assert audit["das"] == {"pairs": "count_swapped", "at": "layer:*", "dim": 1, "max_steps": 20}
    bounds = {metric: float(condition.removeprefix(">= ")) for metric, condition in audit["expect"].items()}
    assert set(bounds) == {"best_iia", "best_selectivity"} and found["das_site"] in ("layer:0", "layer:1")
    assert 0 < bounds["best_iia"] < found["das_iia"] and 0 < bounds["best_selectivity"] < found["das_selectivity"]
    assert "tune both" in text
    # and the draft is a valid audit file
    draft = write_draft(text, tmp_path / "audits" / "discovered.audit.yaml")
    assert main(["validate", str(draft), "--probes", str(PROBES)]) == 0


def test_discover_drafts_no_das_audit_where_the_control_fits_as_well(cheated, concepts):
    from auditlens import CheckError
    from auditlens.declarative.discover import discover

    # given the cheated twin, whose count no subspace carries: nothing to draft, and the error says why for das too
    concept, pairs = few(concepts)
    with pytest.raises(CheckError, match=r"das at layer:0, dim 1: .*selectivity's 95% interval .* reaches 0"):
        discover(cheated, concept, pairs, over="head:1.*", top=1, das_arguments={"at": "layer:0", "max_steps": 20})
