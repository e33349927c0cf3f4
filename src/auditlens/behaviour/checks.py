"""expect_label (MFT), expect_invariant (INV) and expect_direction (DIR) on generated inputs.

Each check draws a bounded number of inputs from a hypothesis strategy (seeded, no example
database, so runs repeat exactly), runs them through the model in batches, and reports the failure
rate with a bootstrap interval. When something failed, hypothesis then searches for a *minimal*
failing input (a bounded shrink: one small forward pass per candidate) and shows it decoded as text.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample, Unsatisfiable

from ..engine import run
from ..errors import CheckError
from ..readout import EmbeddingMean, answer_token_ids, readout_for
from ..results import CheckResult, Example
from ..settings import seed_or_default
from ..stats import Interval, bootstrap_mean
from .strategies import check_perturbation, pairs

DEFAULT_EXAMPLES = 200
SHRINK_BUDGET = 200  # inputs hypothesis may try while looking for a minimal failure
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
          HealthCheck.large_base_example]


@dataclass(frozen=True, kw_only=True)
class BehaviourResult(CheckResult):
    """The failure rate of a behavioural expectation over generated inputs, with minimal counterexamples.
    Not mechanistic: behaviour alone cannot tell a learned model from a cheat."""

    figure_metrics = ("failure_rate",)

    kind: str = "MFT"  # MFT | INV | DIR
    description: str = ""
    failure_rate: float = 0.0
    failure_rate_ci: Interval | None = None
    failures: int = 0
    minimal_counterexample: str = ""  # "" when nothing failed
    predicted_classes: int = 0  # INV on predictions: distinct classes predicted over every input (0: not counted)
    examples: tuple[Example, ...] = ()

    def vacuous_reason(self, metric: str, op: str) -> str | None:
        """Invariance of the prediction proves nothing when the model gives one answer to every input."""
        if self.kind != "INV" or metric != "failure_rate" or op not in ("<=", "<") or self.predicted_classes != 1:
            return None
        return "the model predicts one class for every input, perturbed or not: no change could move it"

    def headline(self) -> str:
        return f"{self.kind} {self.check}: {self.description} on {self.subject}, n={self.n} generated inputs"


class _Scorer:
    """Behaviour of one subject on texts: probabilities (or embeddings), batched, labelled for display."""

    def __init__(self, subject, answer_tokens):
        self.subject = subject
        self.embedding = subject.kind == "encoder"
        candidates = answer_token_ids(subject, answer_tokens)
        self.readout = EmbeddingMean() if self.embedding else readout_for(subject, candidates)
        self.answer_tokens = answer_tokens

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        scores = run(self.subject, self.subject.encode(list(texts)), readout=self.readout).scores
        return torch.nn.functional.normalize(scores, dim=1) if self.embedding else scores.softmax(dim=1)

    def label_names(self) -> list[str]:
        if self.answer_tokens is not None:
            return [str(t) for t in self.answer_tokens]
        names = getattr(getattr(self.subject.model, "config", None), "id2label", None) or {}
        return [str(names[i]) for i in sorted(names)]

    def label_index(self, label: int | str, check: str) -> int:
        """A label given as an index or a name (the model's id2label, or the answer tokens)."""
        names = self.label_names()
        if isinstance(label, str):
            if label not in names:
                raise CheckError(f"{check}: {self.subject.id} has no label {label!r}; its labels are {names} "
                                 "(give a name or an index)")
            return names.index(label)
        if isinstance(label, bool) or not isinstance(label, int) or (names and not 0 <= label < len(names)):
            valid = f"an index 0..{len(names) - 1} or a name of {names}" if names else "a class index"
            raise CheckError(f"{check}: label must be {valid}; got {label!r}")
        return label

    def name(self, label: int) -> str:
        names = self.label_names()
        return names[label] if 0 <= label < len(names) else str(label)


def _digest(texts: list[str]) -> str:
    return hashlib.blake2b("\x00".join(texts).encode(), digest_size=16).hexdigest()


def _draw(strategy: st.SearchStrategy, n: int, seed: int) -> list:
    """``n`` inputs from ``strategy``, the same ones for the same seed."""
    drawn: list = []

    @settings(max_examples=n, phases=[Phase.generate], database=None, deadline=None, suppress_health_check=_QUIET)
    @hypothesis_seed(seed)
    @given(strategy)
    def draw(value):
        drawn.append(value)

    draw()
    return drawn[:n]


def _minimal(strategy: st.SearchStrategy, fails: Callable[[object], bool], seed: int):
    try:
        return find(strategy, fails, settings=settings(max_examples=SHRINK_BUDGET, database=None, deadline=None,
                                                       suppress_health_check=_QUIET), random=random.Random(seed))
    except (NoSuchExample, Unsatisfiable):
        return None


def _behaviour_check(subject, check, kind, description, strategy, evaluate, render, n_examples, seed,
                     classes_seen=None):
    """Shared engine: draw, evaluate in batches, estimate, then shrink one failure. ``classes_seen()``
    (when given) counts the distinct classes the model predicted on the drawn inputs."""
    if n_examples < 10:
        raise CheckError(f"{check} needs max_examples >= 10 for a failure-rate interval; got {n_examples}")
    seed = seed_or_default(seed)
    items = _draw(strategy, n_examples, seed)
    if len(items) < 10:
        raise CheckError(f"{check}: the input strategy gave only {len(items)} distinct inputs (hypothesis stops once "
                         "it has tried them all); a failure-rate interval needs at least 10: widen the strategy")
    failed, notes = evaluate(items)
    predicted_classes = classes_seen() if classes_seen is not None else 0
    failing = [i for i, bad in enumerate(failed) if bad]
    minimal = ""
    shown = []
    if failing:
        found = _minimal(strategy, lambda item: bool(evaluate([item])[0][0]), seed)
        if found is not None:
            minimal = render(found)
            shown.append(Example(minimal, "minimal failing input: " + evaluate([found])[1][0]))
        drawn: dict[str, str] = {}
        for i in failing:  # each input once: the minimal failure is often one of those drawn
            drawn.setdefault(render(items[i]), notes[i])
        drawn.pop(minimal, None)
        shown += [Example(text, note) for text, note in list(drawn.items())[:4]]
    rate = bootstrap_mean(torch.tensor(failed, dtype=torch.float64).numpy(), seed, what=f"{check} failure rate")
    return BehaviourResult(check=check, subject=subject.id, site="output", n=len(items), kind=kind,
                           description=description, failure_rate=float(sum(failed) / len(items)),
                           failure_rate_ci=rate, failures=len(failing), minimal_counterexample=minimal,
                           predicted_classes=predicted_classes, examples=tuple(shown),
                           per_example={"failure_rate": [float(bad) for bad in failed]},
                           data_digest=_digest([render(item) for item in items]))


def expect_label(subject, inputs: st.SearchStrategy, label: int, *, answer_tokens=None,
                 max_examples: int = DEFAULT_EXAMPLES, seed: int | None = None,
                 description: str = "") -> BehaviourResult:
    """MFT: every generated input must be predicted as ``label``."""
    scorer = _Scorer(subject, answer_tokens)
    if scorer.embedding:
        raise CheckError(f"expect_label needs a classifier or a causal LM; {subject.id!r} is an encoder")
    label = scorer.label_index(label, "expect_label")

    def evaluate(texts):
        predicted = scorer(texts).argmax(dim=1).tolist()
        return ([p != label for p in predicted], [f"predicted {scorer.name(p)}, expected {scorer.name(label)}"
                                                  for p in predicted])

    return _behaviour_check(subject, "expect_label", "MFT", description or f"inputs are labelled {scorer.name(label)}",
                            inputs, evaluate, str, max_examples, seed)


def expect_invariant(subject, inputs: st.SearchStrategy, perturb, *, tolerance: float | None = None,
                     min_similarity: float = 0.9, answer_tokens=None, max_examples: int = DEFAULT_EXAMPLES,
                     seed: int | None = None, description: str = "") -> BehaviourResult:
    """INV: the perturbation must not change the prediction (and, with ``tolerance``, must not move the
    predicted class' probability by more). For an encoder: the embeddings' cosine similarity must stay
    at least ``min_similarity``."""
    check_perturbation(perturb, "expect_invariant")
    scorer = _Scorer(subject, answer_tokens)
    seen: set[int] = set()  # classes predicted, for vacuity

    def evaluate(items):
        scores = scorer([a for a, _ in items] + [b for _, b in items])
        before, after = scores[: len(items)], scores[len(items):]
        if scorer.embedding:
            similarity = (before * after).sum(dim=1).tolist()
            return [s < min_similarity for s in similarity], [f"cosine similarity {s:.3f}" for s in similarity]
        first, second = before.argmax(dim=1), after.argmax(dim=1)
        seen.update(first.tolist() + second.tolist())
        moved = (before.gather(1, first[:, None]) - after.gather(1, first[:, None])).abs().squeeze(1)
        failed = [bool(a != b) or (tolerance is not None and float(m) > tolerance)
                  for a, b, m in zip(first, second, moved)]
        notes = [f"prediction {scorer.name(int(a))} -> {scorer.name(int(b))} (p moved {float(m):.3f})"
                 for a, b, m in zip(first, second, moved)]
        return failed, notes

    return _behaviour_check(subject, "expect_invariant", "INV", description or "prediction invariant to the change",
                            pairs(inputs, perturb), evaluate, lambda pair: f"{pair[0]}  ->  {pair[1]}",
                            max_examples, seed,
                            classes_seen=None if scorer.embedding or tolerance is not None else lambda: len(seen))


def expect_direction(subject, inputs: st.SearchStrategy, perturb, label: int, direction: str = "up", *,
                     tolerance: float = 0.01, answer_tokens=None, max_examples: int = DEFAULT_EXAMPLES,
                     seed: int | None = None, description: str = "") -> BehaviourResult:
    """DIR: the perturbation must move the probability of ``label`` ``up`` (or ``down``); moving the
    other way by more than ``tolerance`` (default 0.01: a saturated probability may wobble) is a failure."""
    if direction not in ("up", "down"):
        raise CheckError(f"direction must be 'up' or 'down'; got {direction!r}")
    scorer = _Scorer(subject, answer_tokens)
    if scorer.embedding:
        raise CheckError(f"expect_direction needs a classifier or a causal LM; {subject.id!r} is an encoder")
    label = scorer.label_index(label, "expect_direction")
    check_perturbation(perturb, "expect_direction")
    sign = 1.0 if direction == "up" else -1.0

    def evaluate(items):
        scores = scorer([a for a, _ in items] + [b for _, b in items])
        change = (scores[len(items):, label] - scores[: len(items), label]) * sign
        return [float(c) < -tolerance for c in change], [f"p({scorer.name(label)}) moved {sign * float(c):+.3f}"
                                                         for c in change]

    return _behaviour_check(subject, "expect_direction", "DIR",
                            description or f"p({scorer.name(label)}) goes {direction}", pairs(inputs, perturb),
                            evaluate, lambda pair: f"{pair[0]}  ->  {pair[1]}", max_examples, seed)
