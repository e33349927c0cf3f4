"""What a check in a report says of itself. Each check's record carries its result class's tags from the
moment the result is made (``CheckResult.to_dict``): ``mechanistic`` (a failed assertion on it is evidence
about the mechanism, for the verdict), ``figure_metrics`` (what the HTML report plots) and, for a sweep,
``curve_series`` (the per-site metrics drawn as a curve). The report,
its merge, the verdict and mutation testing read them here, from the record: none of them imports a
check module (or torch) to learn a flag.

A report written before records carried the tags is read with the tags its checks had then
(``BEFORE_TAGS``, a frozen table of that format: it does not grow with new checks)."""

from __future__ import annotations

from collections.abc import Iterable

from .outcomes import normalize

# check name -> (mechanistic, figure metrics), for reports written before checks carried their tags
BEFORE_TAGS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "probe": (True, ()),
    "erase": (True, ("accuracy_before", "accuracy_after", "accuracy_drop", "probe_accuracy_after")),
    "ablate": (True, ("accuracy_before", "accuracy_after", "accuracy_drop")),
    "patch": (True, ("iia", "flip_rate")),
    "steer": (True, ("shift_per_alpha", "target_rate_gain")),
    "necessity": (True, ("accuracy_before", "accuracy_after", "accuracy_drop")),
    "faithfulness": (True, ("faithfulness",)),
    "minimality": (True, ("faithfulness", "min_member_drop")),
    "ablate_tied": (True, ("accuracy_before", "accuracy_after", "accuracy_drop")),
    "remove_spurious": (True, ("accuracy_biased", "accuracy_ablated", "accuracy_oracle")),
    "search_trigger": (True, ("flip_rate", "search_flip_rate")),
    "expect_label": (False, ("failure_rate",)),
    "expect_invariant": (False, ("failure_rate",)),
    "expect_direction": (False, ("failure_rate",)),
}


def is_mechanistic(check: dict) -> bool:
    """Whether a failed assertion on this check (a report's check record) is evidence about the mechanism."""
    if "mechanistic" in check:
        return bool(check["mechanistic"])
    return BEFORE_TAGS.get(check.get("check"), (False, ()))[0]


def figure_metrics(check: dict) -> tuple[str, ...]:
    """The metrics the report plots for this check record (none for a check it does not know)."""
    if "figure_metrics" in check:
        return tuple(check["figure_metrics"])
    return BEFORE_TAGS.get(check.get("check"), (False, ()))[1]


PROBE_CURVE = (("accuracy", "probe"), ("control_accuracy", "control task"))  # a probe sweep's, before the tag
SITE_RECORDS = ("curve", "per_site")  # where a sweep's record keeps its per-site records (probe, das)


def curve_points(check: dict) -> list[dict]:
    """A sweep's per-site records, in sweep order ([] for a check that is no sweep)."""
    return next((check[key] for key in SITE_RECORDS if check.get(key)), [])


def curve_series(check: dict) -> tuple[tuple[str, str], ...]:
    """The (metric, legend) pairs a sweep's curve draws, the measured one first; () when none is drawn."""
    if not curve_points(check):
        return ()
    if "curve_series" in check:
        return tuple((metric, legend) for metric, legend in check["curve_series"])
    return PROBE_CURVE if check.get("curve") else ()


def mechanistic_failures(audits: Iterable[dict]) -> list[dict]:
    """The audits a ``cheated`` verdict rests on: an assertion failed (outcome ``failed``; an audit that
    ended in error says nothing of the model) on an audit with a mechanistic check. The verdict and the
    mutation table's "killed by" both read this."""
    return [a for a in audits if normalize(a["outcome"], a.get("kind")) == "failed"
            and any(is_mechanistic(c) for c in a.get("checks", []))]
