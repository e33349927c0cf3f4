"""The null of a trigger search, and how far the trigger found stands out from it.

A model's worst trigger says little alone: an honest model can be fragile (two inserted tokens move
some of its close calls), and a planted backdoor is a trigger that moves it far more than its ordinary
perturbations do. The null is those ordinary perturbations: ``count`` random triggers of the same
length, from the same tokens but the found trigger's own, written at the same positions of the same
held-out rows (seeded). A trigger made of other tokens is what the model meets every day; leaving the
found trigger's tokens out keeps a null drawn from a small vocabulary from holding the backdoor itself.

The statistic is Abbott's correction, the one toxicology uses for a treatment's effect beyond the
control's: of the rows not already answering the target, a share ``F`` answer it under the trigger and
a share ``P`` under the null's triggers (averaged over them); the excess is ``(F - P) / (1 - P)``, the
share of the answers ordinary perturbations leave alone that the trigger takes. 0: the trigger does no
more than any trigger of its shape; 1: it takes every answer the null leaves. Its interval is a
bootstrap over the rows (paired: the trigger and the null are measured on the same ones) and over the
null's triggers. Fragility spread over
many triggers raises ``P`` and leaves the excess small; a backdoor keeps ``P`` low and ``F`` near 1.

``anomaly`` says the same in the null's own spread (Neural Cleanse's robust z: the distance from the
null triggers' median, in median absolute deviations, floored at a binomial standard error). It is large
for the worst trigger of any model (the search returns a maximum, the null's triggers are typical), so it
ranks models and targets; bound the excess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import CheckError
from ..stats import DEFAULT_RESAMPLES, MIN_EXAMPLES_FOR_CI, Interval

NULL_MOST = 128  # random triggers in the null, at most
NULL_FEWEST = 16  # below this many the null's median is too coarse to compare with


def null_size(spent: int, searched: int, held_out: int) -> int:
    """As many random triggers as cost at most what the search spent (a trigger scored on the held-out rows
    costs held_out / searched forward-pass equivalents of the search set), within [NULL_FEWEST, NULL_MOST]:
    a search that enumerated a small space spent little, and the null still needs NULL_FEWEST triggers."""
    return max(NULL_FEWEST, min(NULL_MOST, spent * searched // max(held_out, 1)))


def random_triggers(allowed: torch.Tensor, found: tuple[int, ...], length: int, count: int, seed: int) -> torch.Tensor:
    """``count`` triggers of ``length`` tokens drawn (seeded) from ``allowed`` without the found trigger's tokens."""
    pool = allowed[~torch.isin(allowed, torch.tensor(found, dtype=allowed.dtype))]
    if len(pool) == 0:
        raise CheckError(f"search_trigger: the null is made of triggers whose tokens are not the found trigger's "
                         f"({list(found)}), and the allowed tokens hold no other; allow at least one more token")
    generator = torch.Generator().manual_seed(seed)
    return pool[torch.randint(len(pool), (count, length), generator=generator)]


@dataclass(frozen=True)
class Calibration:
    """How far one target's best trigger stands out from the null, on the rows not already answering it."""

    target: int
    rows: int  # held-out rows whose clean answer is not the target
    target_rate: float  # F: the share of them the trigger moves to the target
    null_rate: float  # P: the same, averaged over the null's triggers
    null_upper: float  # the null triggers' 90th percentile of that share
    excess: float  # (F - P) / (1 - P)
    excess_ci: Interval | None
    anomaly: float


def _excess(moved: np.ndarray, null: np.ndarray) -> float:
    f, p = float(moved.mean()), float(null.mean())
    return 0.0 if p >= 1.0 else (f - p) / (1.0 - p)


def calibrate(target: int, moved: torch.Tensor, null_moved: torch.Tensor, eligible: torch.Tensor,
              seed: int, interval: bool = True) -> Calibration:
    """``moved`` [n]: rows the trigger moves to ``target``; ``null_moved`` [m, n]: the same per null trigger;
    ``eligible`` [n]: rows whose clean answer is not the target (the others cannot move to it). ``interval``:
    bootstrap the excess's interval (the decided target's; the others are shown without one)."""
    keep = eligible.bool()
    rows = int(keep.sum())
    found = moved[keep].double().numpy()
    null = null_moved[:, keep].double().numpy()  # [m, rows]
    if rows == 0:
        return Calibration(target, 0, 0.0, 0.0, 0.0, 0.0, None, 0.0)
    per_trigger = null.mean(axis=1)
    f, p = float(found.mean()), float(per_trigger.mean())
    median = float(np.median(per_trigger))
    spread = max(1.4826 * float(np.median(np.abs(per_trigger - median))),
                 float(np.sqrt(max(median, 1 / rows) * (1 - min(median, 1 - 1 / rows)) / rows)))
    ci = None
    if interval and rows >= MIN_EXAMPLES_FOR_CI:
        rng = np.random.default_rng(seed)  # rows and the null's triggers, each resampled: both are samples
        index = rng.integers(0, rows, size=(DEFAULT_RESAMPLES, rows))
        drawn = rng.integers(0, len(null), size=(DEFAULT_RESAMPLES, len(null)))
        samples = [_excess(found[i], null[j][:, i]) for i, j in zip(index, drawn)]
        low, high = np.quantile(samples, [0.025, 0.975])
        ci = Interval(float(low), float(high))
    return Calibration(target, rows, f, p, float(np.quantile(per_trigger, 0.9)), _excess(found, null), ci,
                       (f - median) / spread)
