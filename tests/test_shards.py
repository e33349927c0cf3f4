"""Sharded runs: the partition (by model, deterministic, balanced), ``--audit-shard K/N`` in pytest, and
the shards merged, in sequence and as Ray tasks, equal to the same run in one process."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from auditlens import session_cache
from auditlens.errors import AuditlensError
from auditlens.report.model import strip_timings
from auditlens.sharding.merge import merge_reports
from auditlens.sharding.plan import make_plan, parse_shard, partition

ROOT = Path(__file__).parent.parent
MODELS = ["--model", "fixture:count-learned", "--model", "fixture:count-cheated"]
_SINGLE: dict = {}  # the one-process report of the count audits, run once per test session


def audits_of(models: dict[str, int]) -> dict[str, str]:
    return {f"test_a.py::audit_{i}[{model}]": model for model, n in models.items() for i in range(n)}


def test_shard_is_parsed_and_a_bad_one_says_what_is_valid():
    assert (parse_shard("2/4").index, parse_shard("2/4").count) == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "2/4/1"):
        with pytest.raises(AuditlensError, match=r"K/N with 1 <= K <= N; got .*e\.g\. --audit-shard 2/4"):
            parse_shard(bad)


def test_each_model_stays_in_one_shard_and_every_audit_runs_once():
    audits = audits_of({f"m{i}": 3 + i % 4 for i in range(10)})
    shards = partition(audits, 4)
    assert sorted(n for s in shards for n in s) == sorted(audits)
    owners = {}
    for k, shard in enumerate(shards):
        for nodeid in shard:
            assert owners.setdefault(audits[nodeid], k) == k


def test_the_partition_is_the_same_whatever_the_order_given():
    audits = audits_of({f"m{i}": 1 + i for i in range(7)})
    reversed_order = dict(reversed(list(audits.items())))
    assert partition(audits, 3) == partition(reversed_order, 3)
    assert make_plan(audits, ("m0",), 0, 3).digest == make_plan(reversed_order, ("m0",), 0, 3).digest


def test_a_model_is_split_only_when_there_are_fewer_models_than_shards():
    shards = partition(audits_of({"big": 6, "small": 2}), 4)
    assert all(shards) and len({tuple(s) for s in shards}) == 4
    assert partition(audits_of({"a": 6, "b": 2}), 2) == [sorted(audits_of({"a": 6})), sorted(audits_of({"b": 2}))]


def test_costs_balance_the_shards():
    audits = audits_of({f"m{i}": 2 for i in range(8)})
    costs = {n: (10.0 if audits[n] == "m0" else 1.0) for n in audits}  # m0 alone outweighs the rest
    shards = partition(audits, 2, costs)
    loads = [sum(costs[n] for n in s) for s in shards]
    assert loads == [20.0, 14.0] and {audits[n] for n in shards[0]} == {"m0"}


def test_the_plan_hash_covers_the_seed_models_and_definitions():
    audits = audits_of({"a": 2, "b": 2})
    digest = make_plan(audits, ("a", "b"), 0, 2).digest
    assert make_plan(audits, ("a", "b"), 1, 2).digest != digest
    assert make_plan(audits, ("b", "a"), 0, 2).digest != digest
    assert make_plan(audits, ("a", "b"), 0, 2, definitions={next(iter(audits)): "x"}).digest != digest


@pytest.fixture
def count_repo(audit_repo):
    """The repo's count audits with the concepts they name (an ini file, so a pytest run in a subprocess
    finds its rootdir, and probes/, there)."""
    audit_repo.makeini("[pytest]\n")
    shutil.copy(ROOT / "audits" / "count.audit.yaml", audit_repo.path / "count.audit.yaml")
    for name in ("count_in_distribution", "count_swapped"):
        for suffix in (".yaml", ".jsonl"):
            source = ROOT / "probes" / f"{name}{suffix}"
            if source.exists():
                shutil.copy(source, audit_repo.path / "probes" / source.name)
    return audit_repo


def comparable(report: dict) -> dict:
    """A report without timings and shard marks: what must equal between a merged and a one-process run
    (through JSON, so that NaN metrics compare equal)."""
    return json.loads(json.dumps({k: v for k, v in strip_timings(report).items() if k not in ("merged", "shard")}))


def single_report(pytester) -> dict:
    if "report" not in _SINGLE:
        session_cache.clear()
        pytester.runpytest("count.audit.yaml", *MODELS, "--audit-report", "single")
        _SINGLE["report"] = json.loads((pytester.path / "single" / "report.json").read_text())
    return _SINGLE["report"]


def test_two_shards_merged_equal_the_one_process_run(count_repo):
    single = single_report(count_repo)
    for k in (1, 2):
        session_cache.clear()  # each shard is its own job: nothing cached from another
        result = count_repo.runpytest("count.audit.yaml", *MODELS, "--audit-shard", f"{k}/2", "--audit-report", f"s{k}")
        assert result.ret in (0, 1)
    shards = [json.loads((count_repo.path / f"s{k}" / "report.json").read_text()) for k in (1, 2)]
    assert [[m["id"] for m in s["models"]] for s in shards] == [["fixture:count-cheated"], ["fixture:count-learned"]]
    assert shards[0]["shard"]["plan"] == shards[1]["shard"]["plan"] and shards[0]["shard"]["index"] == 1
    merged = merge_reports([count_repo.path / "s1", count_repo.path / "s2"])
    assert comparable(merged) == comparable(single)


def test_an_empty_shard_writes_an_empty_report_and_passes(count_repo):
    result = count_repo.runpytest("count.audit.yaml", "--model", "fixture:count-learned", "--audit-shard", "3/3",
                                  "-k", "represented", "--audit-report", "s3")
    assert result.ret == 0
    report = json.loads((count_repo.path / "s3" / "report.json").read_text())
    assert report["models"] == [] and report["shard"]["index"] == 3


def test_a_bad_shard_is_a_usage_error(count_repo):
    result = count_repo.runpytest("count.audit.yaml", *MODELS, "--audit-shard", "3/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--audit-shard takes K/N with 1 <= K <= N; got '3/2'*"])


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'auditlens[ray]')")
def test_shards_on_a_local_ray_merged_equal_the_one_process_run(count_repo):
    from auditlens.sharding.merge import ShardReport, merge_shards
    from auditlens.sharding.on_ray import run_on_ray

    single = single_report(count_repo)
    outcome = run_on_ray("local", 2, ["count.audit.yaml", "-p", "no:cacheprovider", *MODELS], cwd=count_repo.path,
                         init_options={"num_cpus": 2, "include_dashboard": False})
    assert not outcome.broken, [r.output for r in outcome.runs]
    merged = merge_shards([ShardReport(f"task {r.index}", r.report) for r in outcome.runs])
    assert comparable(merged) == comparable(single)
