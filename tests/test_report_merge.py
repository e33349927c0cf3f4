"""``auditlens report merge``: shard reports into the report of the whole run, recomputed from the audits;
bad sets of shards are clear errors; a partial merge never reads as a pass; the CI recipe runs
commands that exist. Shard reports here are built from synthetic audit records (no model runs)."""

import argparse
import json
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from auditlens.cli import shards as shard_cli
from auditlens.cli.command import parser as command_parser
from auditlens.report.compare import REGRESSION_EXIT, compare_reports, gate_status
from auditlens.report.model import build_report
from auditlens.report.record import AuditRecord
from auditlens.sharding.merge import MergeError, find_reports, merge_reports
from auditlens.sharding.plan import ShardSpec, make_plan, shard_mark

WORKFLOW = Path(__file__).parent.parent / "docs" / "ci" / "audit-shards.yml"


def record(model: str, name: str, failed: bool = False) -> dict:
    check = {"check": "probe", "site": "layer:1", "metrics": {"accuracy": 0.5 if failed else 0.95},
             "thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9, "passed": not failed}]}
    return AuditRecord(nodeid=f"test_a.py::{name}[{model}]", name=name, file="test_a.py", line=3, model=model,
                       fingerprint=f"fp-{model}", truth=None, outcome="failed" if failed else "passed",
                       kind="assertion" if failed else None, when="call", duration=0.25, forward_passes=3,
                       needs=(f"{model}-data:8:4", f"{model}-{name}:8:8"), results=(check,)).to_dict()


def run_metadata(version: str = "0.1.0") -> dict:
    return {"auditlens": version, "seed": 0, "git_commit": None, "started": "2026-01-01T00:00:00+00:00",
            "duration": 1.0, "loading": {}, "interrupted": None}


def a_run(models: int = 3, audits: int = 2) -> list[dict]:
    return [record(f"m{i}", f"audit_{j}", failed=(i == 1 and j == 0)) for i in range(models) for j in range(audits)]


def write_shards(directory: Path, records: list[dict], count: int, seed: int = 0, version: str = "0.1.0") -> list[Path]:
    """What ``pytest --audit-shard K/N`` writes for each K: the shard's report with its mark."""
    models = tuple(dict.fromkeys(r["model"] for r in records))
    plan = make_plan({r["nodeid"]: r["model"] for r in records}, models, seed, count)
    paths = []
    for k in range(1, count + 1):
        mine = [r for r in records if r["nodeid"] in plan.shards[k - 1]]
        report = build_report(mine, run_metadata(version), order=models)
        report["shard"] = shard_mark(ShardSpec(k, count), plan.summary(ShardSpec(k, count)), models, mine)
        paths.append(directory / f"shard-{k}" / "report.json")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        paths[-1].write_text(json.dumps(report))
    return paths


def single(records: list[dict]) -> dict:
    return build_report(records, run_metadata(), order=tuple(dict.fromkeys(r["model"] for r in records)))


def test_merged_shards_equal_the_one_process_report_recomputed_from_the_audits(tmp_path):
    records = a_run()
    write_shards(tmp_path, records, 2)
    merged = merge_reports([tmp_path])  # a directory of shard directories, as CI downloads them
    assert {k: v for k, v in merged.items() if k != "merged"} == single(records)
    assert merged["merged"]["shards"] == 2 and [m["verdict"] for m in merged["models"]] == ["learned", "cheated",
                                                                                           "learned"]


def test_a_model_split_across_shards_gets_one_lower_bound_from_the_union_of_needs(tmp_path):
    records = a_run(models=1, audits=4)
    write_shards(tmp_path, records, 2)
    merged = merge_reports([tmp_path])
    assert merged["models"][0]["forward_passes_lower_bound"] == single(records)["models"][0][
        "forward_passes_lower_bound"] == 2 + 4 * 1  # the shared data once, each audit's own once


def test_a_missing_shard_is_an_error_naming_it(tmp_path):
    paths = write_shards(tmp_path, a_run(), 3)
    with pytest.raises(MergeError, match=r"shard\(s\) 2 of 3 missing \(given: 1, 3\).*--allow-partial"):
        merge_reports([paths[0], paths[2]])


def test_a_duplicated_shard_is_an_error_naming_both_files(tmp_path):
    paths = write_shards(tmp_path, a_run(), 2)
    copy = tmp_path / "again" / "report.json"
    copy.parent.mkdir()
    copy.write_text(paths[0].read_text())
    with pytest.raises(MergeError, match=r"shard 1 of 2 is given twice: .*shard-1/report.json and .*again"):
        merge_reports([*paths, copy])


def test_shards_of_different_plans_do_not_merge(tmp_path):
    one = write_shards(tmp_path / "a", a_run(), 2)
    other = write_shards(tmp_path / "b", a_run(), 2, seed=1)
    with pytest.raises(MergeError, match=r"shards of different runs: .* has plan \(models, audits, seed\)"):
        merge_reports([one[0], other[1]])


def test_shards_of_different_auditlens_versions_do_not_merge(tmp_path):
    one = write_shards(tmp_path / "a", a_run(), 2)
    other = write_shards(tmp_path / "b", a_run(), 2, version="0.2.0")
    with pytest.raises(MergeError, match=r"different auditlens versions: .* by 0.1.0, .* by 0.2.0"):
        merge_reports([one[0], other[1]])


def test_a_report_that_is_no_shard_is_refused(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps(single(a_run())))
    with pytest.raises(MergeError, match=r"is not a shard report.*--audit-shard K/N"):
        merge_reports([tmp_path])


def test_shard_reports_are_found_in_the_directories_ci_downloads_them_into(tmp_path):
    # given the shards' reports as CI artifacts: one directory per shard under one directory
    write_shards(tmp_path / "artifacts", a_run(), 2)
    # then the directory above them names both, and a shard's own directory names its report
    assert find_reports([tmp_path / "artifacts"]) == [
        (tmp_path / "artifacts" / f"shard-{k}" / "report.json").resolve() for k in (1, 2)]
    assert find_reports([tmp_path / "artifacts" / "shard-2"]) == [
        (tmp_path / "artifacts" / "shard-2" / "report.json").resolve()]


def test_a_path_with_no_shard_report_is_an_error_naming_it(tmp_path):
    (tmp_path / "empty" / "nothing").mkdir(parents=True)
    with pytest.raises(MergeError, match=r"no shard report at .*nowhere: give a report.json or a directory of them"):
        find_reports([tmp_path / "nowhere"])
    with pytest.raises(MergeError, match=r"empty holds no report.json \(nor does any directory under it\)"):
        find_reports([tmp_path / "empty"])


def test_a_partial_merge_gives_no_verdict_and_fails_every_gate(tmp_path):
    paths = write_shards(tmp_path, a_run(), 3)
    partial = merge_reports(paths[:2], allow_partial=True)
    assert partial["partial"]["missing_shards"] == [3]
    assert {m["verdict"] for m in partial["models"]} == {"inconclusive"}
    assert "partial merge: shard(s) 3 of 3 missing" in partial["run"]["interrupted"]
    assert any(m["not_run"] for m in partial["models"])  # the missing shard's models are listed, not dropped
    assert sum(len(m["not_run"]) for m in partial["models"]) == partial["partial"]["audits"]  # each audit counted
    comparison = compare_reports(single(a_run()), partial)
    assert gate_status(comparison, partial) == REGRESSION_EXIT
    assert shard_cli.exit_status(partial) == shard_cli.PARTIAL_EXIT


def parser() -> argparse.ArgumentParser:
    """The commands as the ``auditlens`` command builds them."""
    return command_parser()


def test_the_merge_command_writes_the_four_files_and_exits_as_pytest_would(tmp_path, capsys):
    write_shards(tmp_path / "shards", a_run(), 2)
    args = parser().parse_args(["report", "merge", str(tmp_path / "shards"), "--out", str(tmp_path / "out")])
    assert args.run(args) == 1  # m1 failed an audit
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"report.json", "report.html", "summary.md", "junit.xml"}
    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("6", "1")
    assert "merged 2 of 2 shards: 3 models, 6 audits" in capsys.readouterr().out


def test_100_shards_merge_into_every_model_once(tmp_path):
    # (how fast is bench/shards.py's figure, not a timed assertion here)
    paths = write_shards(tmp_path, a_run(models=200, audits=3), 100)
    merged = merge_reports(paths)
    ids = [m["id"] for m in merged["models"]]
    assert len(ids) == len(set(ids)) == 200
    assert sum(m["counts"]["total"] for m in merged["models"]) == 600


def commands_in(workflow: dict) -> list[list[str]]:
    """Every auditlens and pytest command line the workflow's steps run."""
    found = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                words = shlex.split(line.split("||")[0].strip(), comments=True)
                if words and words[0] in ("auditlens", "pytest"):
                    found.append(words)
    return found


def test_the_ci_recipe_runs_commands_that_exist_with_those_flags(pytester):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert set(workflow["jobs"]) == {"shard", "merge"} and workflow["jobs"]["merge"]["needs"] == "shard"
    assert len(workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]) == int(workflow["env"]["SHARDS"])
    commands = commands_in(workflow)
    assert [c[:3] for c in commands if c[0] == "auditlens"] == [["auditlens", "report", "merge"],
                                                               ["auditlens", "report", "diff"]]
    pytest_help = pytester.runpytest("--help").stdout.str()
    for words in commands:
        flags = [w.split("=")[0] for w in words if w.startswith("--")]
        if words[0] == "pytest":
            assert "--audit-shard" in flags and all(f in pytest_help for f in flags), words
        elif words[2] == "merge":
            parser().parse_args(words[1:])  # the whole line parses
        else:
            from auditlens.cli import main

            with pytest.raises(SystemExit) as done:
                main([*words[1:3], "--help"])
            assert done.value.code == 0 and len(words) == 5  # report diff OLD NEW
