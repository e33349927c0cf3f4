"""``--audit-shard K/N``: keep this shard's audits, and mark the session's report with the shard and the
plan's hash (see ``auditlens.sharding.plan``). Under pytest-xdist the workers collect, so each worker
computes the plan and sends it to the controller with its output."""

from __future__ import annotations

import hashlib

import pytest

from ..errors import AuditlensError
from ..sharding.plan import ShardSpec, costs_from_report, make_plan, parse_shard, shard_mark
from .nodeids import item_model, plain_nodeid
from .records import definition_digest

SHARD_PLUGIN = "auditlens-shard"
WORKER_KEY = "auditlens_shard"


class ShardHooks:
    def __init__(self, spec: ShardSpec, session, costs: dict[str, float] | None):
        self.spec, self.session, self.costs = spec, session, costs
        self.summary: dict | None = None  # the plan as this shard's report states it

    def pytest_collection_modifyitems(self, session, config, items):
        audits = {plain_nodeid(i.nodeid): m for i in items if (m := item_model(i)) is not None}
        definitions = {plain_nodeid(i.nodeid): definition_digest(i) for i in items if item_model(i) is not None}
        options = self.session.options
        plan = make_plan(audits, options.models, options.seed, self.spec.count, self.costs, definitions)
        mine = set(plan.shards[self.spec.index - 1])
        kept, dropped = [], []
        for item in items:
            nodeid = plain_nodeid(item.nodeid)
            ours = nodeid in mine if nodeid in audits else _plain_test_shard(nodeid, self.spec.count) == self.spec.index
            (kept if ours else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        self.summary = plan.summary(self.spec)
        if hasattr(config, "workerinput"):
            config.workeroutput[WORKER_KEY] = self.summary

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        summary = getattr(node, "workeroutput", {}).get(WORKER_KEY)
        if summary is not None and self.summary is None:
            self.summary = summary

    def mark(self, records: list[dict]) -> dict:
        if self.summary is None:
            raise AuditlensError(f"shard {self.spec}: the run's plan is unknown (collection did not finish)")
        return shard_mark(self.spec, self.summary, self.session.options.models, records)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:  # an empty shard is a normal shard
            session.exitstatus = pytest.ExitCode.OK


def _plain_test_shard(nodeid: str, count: int) -> int:
    """A test that audits no model runs in one shard, the same in every job."""
    return int.from_bytes(hashlib.blake2b(nodeid.encode(), digest_size=4).digest(), "big") % count + 1


def register_shard(config, session) -> None:
    """With ``--audit-shard K/N``: register the shard's hooks and have the session mark its report."""
    text = config.getoption("audit_shard")
    if not text:
        return
    try:
        spec = parse_shard(text)
        costs = _costs(config.getoption("audit_shard_costs"), session)
    except AuditlensError as exc:
        raise pytest.UsageError(str(exc)) from None
    hooks = ShardHooks(spec, session, costs)
    session.shard = hooks.mark
    config.pluginmanager.register(hooks, SHARD_PLUGIN)


def _costs(path: str | None, session) -> dict[str, float] | None:
    """Seconds per audit from ``--audit-shard-costs REPORT``, else from the baseline: every job must read
    the same report (the plan's hash covers the partition, so a job that did not is caught at merge)."""
    if not path:
        return costs_from_report(session.baseline) if session.baseline else None
    from ..report import read_report

    try:
        return costs_from_report(read_report(path))
    except AuditlensError as exc:
        raise AuditlensError(f"--audit-shard-costs {path}: {exc}; give a report.json of an earlier run") from None
