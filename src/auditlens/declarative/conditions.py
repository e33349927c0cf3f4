"""Conditions of YAML ``expect:``: ``>= 0.9``-style bounds on a result's metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPARISON = re.compile(r"^\s*(>=|<=|==|>|<)\s*(-?\d+(\.\d+)?([eE]-?\d+)?)\s*$")
_BETWEEN = re.compile(r"^\s*between\s+(-?\d+(\.\d+)?)\s+and\s+(-?\d+(\.\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    """``>= 0.9``-style bound on a metric; ``between a and b`` is inclusive."""

    text: str
    op: str
    value: float
    upper: float | None = None

    def holds(self, x: float) -> bool:
        if self.op == "between":
            return self.value <= x <= self.upper
        return {">=": x >= self.value, "<=": x <= self.value, ">": x > self.value, "<": x < self.value,
                "==": x == self.value}[self.op]

    def __str__(self) -> str:
        return self.text.strip()


def judge(result, expect: dict[str, Condition]) -> list[str]:
    """Hold ``result``'s metrics to ``expect`` (metric -> condition): each bound is recorded on the result
    (``between`` as its two), and the text of every condition missed is returned."""
    missed = []
    for field, condition in expect.items():
        metric = getattr(result, field)
        value = float(metric)
        if condition.op == "between":
            result.record_threshold(field, ">=", condition.value, value >= condition.value)
            result.record_threshold(field, "<=", condition.upper, value <= condition.upper)
        else:
            result.record_threshold(field, condition.op, condition.value, condition.holds(value))
        if not condition.holds(value):
            missed.append(metric.describe(str(condition)))
    return missed


def parse_condition(text) -> Condition:
    if isinstance(text, str):
        if match := _COMPARISON.match(text):
            return Condition(text, match.group(1), float(match.group(2)))
        if match := _BETWEEN.match(text):
            low, high = float(match.group(1)), float(match.group(3))
            if low <= high:
                return Condition(text, "between", low, high)
    raise ValueError(f"{text!r} is not a condition; write '>= 0.9', '<= 0.05', '> x', '< x', '== x' "
                     "or 'between 0.4 and 0.6'")
