"""pytest-xdist scheduling that keeps each model's audits on one worker, so each model loads once.

Audit node ids end with their model: ``test_probe[fixture:count-learned]``, or
``count.audit.yaml::name[fixture:count-learned]``. The scheduler groups by that model (tests that are
not audits are spread one by one, as with ``--dist load``) and hands out the costliest groups first.
It extends pytest-xdist's loadgroup scheduling, so ``xdist_group`` marks keep working where
pytest-xdist can tag node ids with them (pytest 9.2 ignores the tag, which is why the model is read
from the node id itself).
"""

from __future__ import annotations

from collections.abc import Iterable

from xdist.scheduler import LoadGroupScheduling

from .nodeids import model_of

RETRIES_AFTER_A_CRASH = 1


class ModelGroupScheduling(LoadGroupScheduling):
    """Groups by model; the longest groups go first (longest-processing-time order), costed by the
    seconds each model's audits took in the previous report when there is one, else by test count."""

    def __init__(self, config, log=None, models: Iterable[str] = (), seconds: dict[str, float] | None = None):
        super().__init__(config, log)
        self.models = tuple(models)
        self.seconds = dict(seconds or {})
        self._ordered = False
        self.crashes: dict[str, int] = {}  # node id -> how many workers died running it

    def _cost(self, scope: str, nodeids: dict) -> float:
        model = scope.removeprefix("auditlens-model:") if scope.startswith("auditlens-model:") else None
        if model in self.seconds:
            return self.seconds[model]
        known = list(self.seconds.values())
        per_test = sum(known) / max(1, sum(1 for _ in known)) if known else 1.0
        return per_test * len(nodeids) / (1 if model else 4)  # a plain test: a fraction of an audit

    def _assign_work_unit(self, node) -> None:
        if not self._ordered:  # the work queue is complete before the first unit is handed out
            self._ordered = True
            ordered = sorted(self.workqueue.items(), key=lambda item: -self._cost(*item))
            self.workqueue.clear()
            self.workqueue.update(ordered)
        super()._assign_work_unit(node)

    def remove_node(self, node) -> str | None:
        """A worker that died: the audit it was running is reported lost and goes back in the queue with
        the rest of its group once (a worker killed from outside should not cost the audit), but not
        twice: pytest-xdist would requeue it every time, so an audit that kills its worker ran, and
        crashed, once per restarted worker until the run gave up."""
        workload = self.assigned_work.get(node, {})
        crashed = next((nodeid for unit in workload.values() for nodeid, done in unit.items() if not done), None)
        if crashed is None:
            return super().remove_node(node)
        self.crashes[crashed] = self.crashes.get(crashed, 0) + 1
        for unit in workload.values():
            if crashed in unit and self.crashes[crashed] > RETRIES_AFTER_A_CRASH:
                unit[crashed] = True
        super().remove_node(node)
        for scope in [s for s, unit in self.workqueue.items() if all(unit.values())]:
            del self.workqueue[scope]
        return crashed

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist_group tag, where pytest-xdist could add it
            return super()._split_scope(nodeid)
        model = model_of(nodeid, self.models)
        return f"auditlens-model:{model}" if model is not None else nodeid
