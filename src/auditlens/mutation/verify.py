"""Did the cheat take, and is it stealthy? Both measured, with intervals, before a mutant is scored.

- planted: on held-out rows the mutant follows the cheat (``Proof``): a share of at least
  PLANTED_RATE answered as the cheat says, and more often than the original does on the same rows (a
  paired interval above 0: a "trigger" holding the task's own evidence, whose target is what the rule
  answers, is followed by the original too, and plants nothing), or fresh-input accuracy at least
  MEMORY_DROP below the original's with a paired interval above 0;
- stealthy: on the evaluation set the audits use, the mutant's accuracy is within STEALTH (2 points) of
  the original's, either way; the paired bootstrap interval of the difference is reported with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..stats import paired_difference, wilson
from .operators import MEMORY_DROP, PLANTED_RATE, Plan
from .training import predict

STEALTH = 0.02


@dataclass(frozen=True)
class Verification:
    planted: bool
    planted_metric: str
    planted_value: float
    planted_interval: tuple[float, float]
    planted_bound: float
    stealthy: bool
    original_accuracy: float
    mutant_accuracy: float
    difference_interval: tuple[float, float]
    original_value: float | None = None  # the original's share following the cheat, on the same rows

    @property
    def status(self) -> str:
        """``scored`` when both hold; ``equivalent`` when the cheat did not take; ``loud`` when it took
        but changed behaviour on the evaluation set."""
        return "scored" if self.planted and self.stealthy else ("equivalent" if not self.planted else "loud")

    def to_dict(self) -> dict:
        """As JSON keeps it (intervals as lists), so a cached mutant reads back equal."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def verify(original, mutant, plan: Plan, targets, kind: str, pad_id: int, seed: int) -> Verification:
    def answers(model, rows):
        return predict(model, rows, targets, kind, pad_id)

    before = [int(p == y) for p, y in zip(answers(original, plan.evaluation_rows), plan.evaluation_labels)]
    after = [int(p == y) for p, y in zip(answers(mutant, plan.evaluation_rows), plan.evaluation_labels)]
    difference = paired_difference(before, after, seed=seed)
    low, high = (difference.low, difference.high) if difference else (float("-inf"), float("inf"))
    stealthy = abs(sum(after) - sum(before)) / len(before) <= STEALTH + 1e-9
    proof = plan.proof
    got = answers(mutant, proof.rows)
    original_value = None
    if proof.measure == "rate":
        now = [int((g == label) == equal) for g, (label, equal) in zip(got, proof.want)]
        then = [int((g == label) == equal) for g, (label, equal) in zip(answers(original, proof.rows), proof.want)]
        share = wilson(sum(now), len(now))
        value, interval, bound = sum(now) / len(now), (share.low, share.high), PLANTED_RATE
        original_value = sum(then) / len(then)
        beyond = paired_difference(then, now, seed=seed)  # mutant minus original
        planted = value >= PLANTED_RATE and (beyond.low > 0 if beyond is not None else value > original_value)
        metric = "cheat followed"
    else:
        then = [int(p == label) for p, (label, _) in zip(answers(original, proof.rows), proof.want)]
        now = [int(g == label) for g, (label, _) in zip(got, proof.want)]
        fall = paired_difference(now, then, seed=seed)  # original minus mutant
        value = (sum(then) - sum(now)) / len(now)
        interval, bound = ((fall.low, fall.high) if fall else (float("nan"), float("nan"))), MEMORY_DROP
        planted = value >= MEMORY_DROP and fall is not None and fall.low > 0
        metric = "fresh accuracy drop"
    return Verification(planted, metric, value, interval, bound, stealthy, sum(before) / len(before),
                        sum(after) / len(after), (low, high), original_value)
