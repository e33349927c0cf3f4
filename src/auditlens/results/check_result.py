"""Check results: frozen dataclasses whose numbers remember where they came from (see ``recording``
for how a result and the thresholds asserted on it reach the report)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ..stats import Interval
from .recording import Metric, register


@dataclasses.dataclass(frozen=True)
class Example:
    """One piece of evidence: an input shown as text, and what happened to it."""

    input: str
    note: str

    def __str__(self) -> str:
        text = self.input if len(self.input) <= 80 else self.input[:77] + "..."
        return f"{text!r}: {self.note}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckResult:
    """Base of every result: the subject, the site and the evidence, and how to show them.

    Class-level tags tell the rest of the library what a result is, so a new check touches one room:
    ``mechanistic`` (its failed assertion is evidence about the mechanism, for the verdict) and
    ``figure_metrics`` (what the HTML report plots, as bars with their intervals), ``curve_series`` (a
    sweep's per-site metrics the report draws as a curve instead: (metric, legend) pairs, the measured one
    first, then its control) and ``saved_tensors`` (tensor fields a session saves beside the report as
    safetensors, e.g. DAS's learned directions: ``report.tensors``).
    """

    mechanistic: ClassVar[bool] = False
    figure_metrics: ClassVar[tuple[str, ...]] = ()
    curve_series: ClassVar[tuple[tuple[str, str], ...]] = ()
    saved_tensors: ClassVar[tuple[str, ...]] = ()

    check: str  # "probe", "erase", ...
    subject: str
    site: str
    n: int
    # per example, the values whose mean is a metric (by metric name), and a digest of the examples: a
    # later run on the same examples is compared with a paired test, not a fixed tolerance
    per_example: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
    data_digest: str = ""
    # per dictionary latent the check names: (name, ((input text, activation), ...)), top-activating first
    feature_examples: tuple = dataclasses.field(default=(), repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_thresholds", [])
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not isinstance(value, Metric):
                object.__setattr__(self, field.name, Metric(value, field.name, self))
        register(self)

    def record_threshold(self, metric: str, op: str, value: float, passed: bool) -> None:
        """Note that ``metric op value`` was required (by an assertion or an ``expect:``), whether the point
        estimate met it, and whether the metric's interval straddles it (``uncertain``: another sample
        could have decided the other way)."""
        interval = self.intervals().get(metric)
        uncertain = interval is not None and interval.low < value < interval.high
        vacuous = self.vacuous_reason(metric, op) if passed else None
        self._thresholds.append({"metric": metric, "op": op, "value": value, "passed": passed,
                                 "uncertain": uncertain, "vacuous": vacuous})

    def vacuous_reason(self, metric: str, op: str) -> str | None:
        """Why ``metric op bound`` holding proves nothing on this result (a "must not change" bound met
        because nothing could change), or None. Results that can tell override this."""
        return None

    @property
    def thresholds(self) -> list[dict]:
        return list(self._thresholds)

    def metrics(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), float)}

    def intervals(self) -> dict[str, Interval]:
        """Intervals by the metric they bound (field ``x_ci`` bounds ``x``)."""
        return {f.name.removesuffix("_ci"): getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), Interval)}

    @property
    def evidence(self) -> tuple[Example, ...]:
        return getattr(self, "examples", ())

    def headline(self) -> str:
        return f"{self.check} at {self.site} on {self.subject}, n={self.n}"

    def explain(self) -> str:
        """The evidence as lines of text: every metric with its interval, then a few examples."""
        lines = [self.headline()]
        intervals = self.intervals()
        for name, value in self.metrics().items():
            ci = intervals.get(name)
            suffix = f"  {int(ci.level * 100)}% CI {ci}" if ci else ""
            lines.append(f"  {name.replace('_', ' '):<22} {value:8.3f}{suffix}")
        if note := self.note():  # where the numbers alone would mislead, the terminal says so as the report does
            lines.append(f"  note: {note}")
        examples = self.evidence
        if examples:
            lines.append(f"  examples ({len(examples)} shown):")
            lines += [f"    {e}" for e in examples]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the report: metrics, intervals, evidence and the identifying fields."""
        identity = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                    if isinstance(getattr(self, f.name), (str, int, bool))
                    and not isinstance(getattr(self, f.name), float)}
        return {
            **identity,
            # the class's tags travel with the record: the report reads them here, not from the check's module
            "mechanistic": self.mechanistic,
            "figure_metrics": list(self.figure_metrics),
            **({"curve_series": [list(series) for series in self.curve_series]} if self.curve_series else {}),
            "metrics": self.metrics(),
            "intervals": {k: v.to_dict() for k, v in self.intervals().items()},
            "examples": [dataclasses.asdict(e) for e in self.evidence],
            "thresholds": self.thresholds,
            "per_example": {k: [round(float(v), 6) for v in values] for k, values in self.per_example.items()},
            **({"component_values": rows} if (rows := self.component_values()) is not None else {}),
            **({"note": note} if (note := self.note()) else {}),
            **({"feature_examples": [{"feature": name, "examples": [{"input": text, "activation": value}
                                                                    for text, value in rows]}
                                     for name, rows in self.feature_examples]} if self.feature_examples else {}),
        }

    def note(self) -> str | None:
        """A sentence the report shows with the check where its numbers alone would mislead, or None."""
        return None

    def component_values(self) -> list[dict] | None:
        """Per component (head, neuron, circuit member): {"component": name, metric: value, ...}, for the
        report's heat map and members table; None where a check has no components."""
        return None
