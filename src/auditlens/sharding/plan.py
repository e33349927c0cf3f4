"""The plan of a sharded run: which audits shard K of N runs, and the hash every shard of one run shares.

A *unit* is one model's audits, so that a model's forward passes and cache stay in one job; a model is
split into two units (its audits by node id) only while there are fewer units than shards. Units go
to shards costliest first, each to the shard with the least work so far (longest-processing-time),
ties to the lower shard: the same plan gives the same partition on every machine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..errors import AuditlensError

SHARD_EXAMPLE = "--audit-shard 2/4 (shard 2 of 4; shards count from 1)"


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> ShardSpec:
    """``"K/N"`` as a ShardSpec; AuditlensError saying what is valid otherwise."""
    index, slash, count = str(text).strip().partition("/")
    try:
        spec = ShardSpec(int(index), int(count)) if slash else None
    except ValueError:
        spec = None
    if spec is None or not 1 <= spec.index <= spec.count:
        raise AuditlensError(f"--audit-shard takes K/N with 1 <= K <= N; got {text!r}, e.g. {SHARD_EXAMPLE}")
    return spec


@dataclass(frozen=True)
class Plan:
    """The whole run's plan and its partition: ``shards[k]`` the node ids of shard k + 1."""

    audits: dict[str, str]  # node id -> model, every audit of the run
    shards: tuple[tuple[str, ...], ...]
    digest: str  # blake2b of models, audits (with their definitions), seed and the partition

    def summary(self, spec: ShardSpec) -> dict:
        """What a shard's report says of the plan (plain data: an xdist worker sends it to the controller)."""
        return {"plan": self.digest, "partition": self.models_per_shard(), "audits": len(self.shards[spec.index - 1])}

    def models_per_shard(self) -> list[dict[str, int]]:
        """Per shard, its models and how many of each one's audits it runs (what a merge names when a shard
        is missing)."""
        summary = []
        for nodeids in self.shards:
            counts: dict[str, int] = {}
            for nodeid in nodeids:
                counts[self.audits[nodeid]] = counts.get(self.audits[nodeid], 0) + 1
            summary.append(counts)
        return summary


def _units(audits: dict[str, str], count: int, cost) -> list[tuple[float, str, tuple[str, ...]]]:
    """(cost, first node id, node ids) per unit: one per model, split in two (by cost) while fewer than
    ``count`` units; a unit of one audit is not split."""
    by_model: dict[str, list[str]] = {}
    for nodeid in sorted(audits):
        by_model.setdefault(audits[nodeid], []).append(nodeid)
    units = [(sum(cost(n) for n in ids), ids[0], tuple(ids)) for ids in by_model.values()]
    while len(units) < count:
        splittable = [u for u in units if len(u[2]) > 1]
        if not splittable:
            break
        unit = max(splittable, key=lambda u: (u[0], u[1]))
        units.remove(unit)
        ids, total, running, cut = unit[2], unit[0], 0.0, 1
        for cut in range(1, len(ids)):  # the first cut that reaches half the cost
            running += cost(ids[cut - 1])
            if running >= total / 2:
                break
        for part in (ids[:cut], ids[cut:]):
            units.append((sum(cost(n) for n in part), part[0], part))
    return units


def partition(audits: dict[str, str], count: int, costs: dict[str, float] | None = None) -> list[list[str]]:
    """The node ids of each of ``count`` shards. ``costs`` (node id -> seconds, e.g. from an earlier report)
    weighs each audit; an audit without one costs the mean of the known ones (1 when none is known)."""
    known = [c for c in (costs or {}).values() if c and c > 0]
    default = sum(known) / len(known) if known else 1.0

    def cost(nodeid: str) -> float:
        value = (costs or {}).get(nodeid)
        return value if value and value > 0 else default

    shards: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for unit_cost, _, ids in sorted(_units(audits, count, cost), key=lambda u: (-u[0], u[1])):
        lightest = min(range(count), key=lambda k: (loads[k], k))
        shards[lightest] += ids
        loads[lightest] += unit_cost
    return [sorted(ids) for ids in shards]


def make_plan(audits: dict[str, str], models: tuple[str, ...], seed: int, count: int,
              costs: dict[str, float] | None = None, definitions: dict[str, str | None] | None = None) -> Plan:
    """The plan of a run of ``audits`` (node id -> model) over ``models`` in ``count`` shards; its digest
    covers what every shard must agree on: the models in order, each audit and its definition, the seed,
    and the partition itself (so shards costed from different reports cannot both run an audit)."""
    shards = partition(audits, count, costs)
    text = json.dumps({"models": list(models), "seed": seed, "shards": shards,
                       "audits": sorted((n, m, (definitions or {}).get(n)) for n, m in audits.items())},
                      sort_keys=True, default=str)
    digest = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    return Plan(audits=dict(audits), shards=tuple(tuple(s) for s in shards), digest=digest)


def costs_from_report(report: dict) -> dict[str, float]:
    """Node id -> seconds, from a report's audits (a scheduling hint: what each audit took last time)."""
    return {a["nodeid"]: float(a.get("duration") or 0.0) for m in report.get("models", []) for a in m["audits"]}


def shard_mark(spec: ShardSpec, summary: dict, models: tuple[str, ...], records: list[dict]) -> dict:
    """The ``shard`` section of a shard's report: which shard of which plan, the partition's models, and per
    audit what the report itself does not keep but a merge needs to recompute the totals exactly (the
    forward-pass needs and repeats of each audit)."""
    accounting = {}
    for record in records:
        entry = {"repeats": list(record.get("repeats", []))}
        if "needs" in record:
            entry["needs"] = list(record["needs"])
        accounting[record["nodeid"]] = entry
    return {"index": spec.index, "count": spec.count, **summary, "models": list(models), "accounting": accounting}
