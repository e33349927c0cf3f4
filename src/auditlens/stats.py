"""Statistics: bootstrap confidence intervals and the minimum sizes they need."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .errors import CheckError

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
MIN_EXAMPLES_FOR_CI = 10


@dataclass(frozen=True)
class Interval:
    """A two-sided percentile bootstrap interval at ``level``."""

    low: float
    high: float
    level: float = DEFAULT_LEVEL

    def __str__(self) -> str:
        return f"[{self.low:.3f}, {self.high:.3f}]"

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "level": self.level}


def bootstrap_mean(values, seed: int, resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL,
                   what: str = "the estimate") -> Interval:
    """Percentile bootstrap interval of the mean of per-example ``values`` ([n])."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < MIN_EXAMPLES_FOR_CI:
        raise CheckError(f"{what} rests on {values.size} examples; a bootstrap interval needs at least "
                         f"{MIN_EXAMPLES_FOR_CI}")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, values.size, size=(resamples, values.size))
    means = values[index].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(low), float(high), level)


def wilson(successes: int, n: int, level: float = DEFAULT_LEVEL) -> Interval:
    """Wilson score interval of a proportion (``successes`` of ``n``): sound near 0 and 1 and for small n."""
    if n <= 0:
        raise CheckError("a proportion needs at least one example")
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(float(max(0.0, centre - half)), float(min(1.0, centre + half)), level)


def paired_difference(before, after, seed: int = 0, level: float = DEFAULT_LEVEL) -> Interval | None:
    """Bootstrap interval of mean(after - before) over the same examples (the pairing removes the
    variance the examples share); None when the two are not the same examples' values."""
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if before.shape != after.shape or before.size < MIN_EXAMPLES_FOR_CI:
        return None
    return bootstrap_mean(after - before, seed, level=level, what="the paired difference")
