"""How a result reaches the report, without a call to say so.

An audit is a plain function: it calls a check and asserts on the result (``assert r.accuracy >= 0.9``).
Two things make that evidence, both here:

1. **A result registers itself when it is created.** ``CheckResult.__post_init__`` calls :func:`register`,
   which appends the result to the list of the active :func:`recording` block, if one is active. The
   pytest glue opens one around each audit's call (``plugin/run_hooks.py``); the session's ``record()``
   takes results as arguments instead. Parts of a larger result (a sweep's per-layer probes) are made
   inside :func:`not_recorded` and reach the report inside the result they belong to.
2. **A comparison records its threshold.** Every float field of a result is a :class:`Metric`, a float
   that knows its name and its result. An ordering comparison with a number (``>=``, ``>``, ``<=``, ``<``)
   calls ``result.record_threshold(metric, op, bound, outcome)`` before it returns the outcome, so the
   report knows what was required, whether it was met, whether the interval straddled the bound, and
   whether a pass was vacuous. YAML ``expect:`` records its thresholds the same way
   (``declarative/conditions.py``).

From there ``plugin/records.py`` turns an audit's recorded results (``to_dict()``, thresholds included)
into its ``AuditRecord`` (writing the tensors a result keeps, such as DAS's directions, beside the report:
``report/tensors.py``), and ``report/`` builds the verdict and the report from those records.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any

_recorder: contextvars.ContextVar[list | None] = contextvars.ContextVar("auditlens_recorder", default=None)


def register(result: Any) -> None:
    """Add ``result`` to the active recording, if any (called by every result as it is created)."""
    recorder = _recorder.get()
    if recorder is not None:
        recorder.append(result)


@contextmanager
def recording():
    """Collect every result created inside the block into the yielded list."""
    collected: list = []
    token = _recorder.set(collected)
    try:
        yield collected
    finally:
        _recorder.reset(token)


@contextmanager
def not_recorded():
    """Results created inside are parts of a larger one (a sweep's per-layer results): not recorded alone."""
    token = _recorder.set(None)
    try:
        yield
    finally:
        _recorder.reset(token)


class Metric(float):
    """A float that carries its name and the result it belongs to."""

    name: str
    result: Any  # the CheckResult it belongs to (check_result imports this module, not the other way)

    def __new__(cls, value: float, name: str, result: Any):
        metric = super().__new__(cls, value)
        metric.name, metric.result = name, result
        return metric

    def __reduce__(self):  # pickles (e.g. across xdist workers) as a plain float
        return float, (float(self),)

    # An ordering comparison in an audit (`r.accuracy >= 0.9`) is a threshold: it is recorded on the
    # result so that the report and the baseline gate know what was required, passed or not.
    def _compared(self, op: str, other, outcome: bool) -> bool:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            self.result.record_threshold(self.name, op, float(other), bool(outcome))
        return outcome

    def __ge__(self, other):
        return self._compared(">=", other, float(self) >= other)

    def __gt__(self, other):
        return self._compared(">", other, float(self) > other)

    def __le__(self, other):
        return self._compared("<=", other, float(self) <= other)

    def __lt__(self, other):
        return self._compared("<", other, float(self) < other)

    __hash__ = float.__hash__

    def measured(self) -> str:
        """``name = value (95% CI [low, high])``: the metric as a failure message shows it."""
        interval = self.result.intervals().get(self.name)
        ci = f" ({int(interval.level * 100)}% CI {interval})" if interval else ""
        return f"{self.name} = {float(self):.4f}{ci}"

    def describe(self, expectation: str) -> str:
        """The text of a missed expectation, e.g. ``accuracy = 0.5100 (95% CI [...]), expected >= 0.9``;
        the assertion rewrite of the plugin and YAML ``expect:`` both show this."""
        return f"{self.measured()}, expected {expectation}"
