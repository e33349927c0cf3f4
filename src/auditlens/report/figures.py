"""Figures for the HTML report, as inline PNG data (matplotlib, no display, no network).

Each figure shows what a check was held to: the threshold as a dashed line, the bar or point in
green when it met it and red when it did not (grey when nothing was required of it). Metrics get
an axis each (an accuracy and a margin shift do not share a scale), zero stays on every axis so a
tiny value next to a large requirement looks tiny, and a zero-height bar is drawn as a mark.
"""

from __future__ import annotations

import base64
import io

import matplotlib

from ..registry import figure_metrics

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PASSED, FAILED, FREE = "#2e7d32", "#c62828", "#607d8b"
LOOP = 4  # an audit with this many checks of one kind is drawn as one chart


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _error(metric: float, interval: dict | None) -> list[float]:
    if not interval:
        return [0.0, 0.0]
    return [max(metric - interval["low"], 0.0), max(interval["high"] - metric, 0.0)]


def _thresholds(check: dict, metric: str) -> list[dict]:
    return [t for t in check.get("thresholds", []) if t["metric"] == metric]


def _colour(thresholds: list[dict]) -> str:
    if not thresholds:
        return FREE
    return PASSED if all(t["passed"] for t in thresholds) else FAILED


def _text(text) -> str:
    """Text for a label or title, never read as mathtext (a concept named `a $x^$ b` is just that)."""
    return str(text).replace("$", r"\$")


def _draw_thresholds(axes, thresholds: list[dict]) -> None:
    for t in thresholds:
        axes.axhline(t["value"], color=PASSED if t["passed"] else FAILED, linestyle="--", linewidth=1)
        axes.annotate(f"{t['op']} {t['value']:g}", (1.0, t["value"]), xycoords=("axes fraction", "data"),
                      fontsize=7, ha="right", va="bottom", color="#333")


def _span(values: list[float], thresholds: list[dict], errors) -> tuple[float, float]:
    """Axis limits holding 0, every value with its interval, and every threshold."""
    points = [0.0, *values, *(t["value"] for t in thresholds)]
    if errors:
        points += [v - low for v, low in zip(values, errors[0])] + [v + high for v, high in zip(values, errors[1])]
    low, high = min(points), max(points)
    pad = 0.12 * (high - low or 1.0)
    return low - (pad if low < 0 else 0), high + pad


def probe_curve(check: dict) -> str:
    """Accuracy per layer with its interval, against the control task and chance, with the sweep's
    threshold on its best accuracy (if one was asserted)."""
    curve = check["curve"]
    sites = [c["site"] for c in curve]
    accuracy = [c["metrics"]["accuracy"] for c in curve]
    control = [c["metrics"]["control_accuracy"] for c in curve]
    errors = list(zip(*[_error(c["metrics"]["accuracy"], c["intervals"].get("accuracy")) for c in curve]))
    required = _thresholds(check, "best_accuracy")
    figure, axes = plt.subplots(figsize=(5, 2.6))
    axes.errorbar(range(len(sites)), accuracy, yerr=errors, marker="o", label="probe", capsize=3,
                  color=_colour(required))
    axes.plot(range(len(sites)), control, marker="s", linestyle="--", label="control task", color="#ff8f00")
    chance = curve[0]["metrics"].get("chance")
    if chance is not None:
        axes.axhline(chance, color="#999", linestyle=":", linewidth=1, label="chance")
    _draw_thresholds(axes, required)
    axes.set_xticks(range(len(sites)), sites, rotation=30, fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("accuracy")
    axes.set_title(_text(f"probe for {check.get('concept', '')}"), fontsize=9)
    axes.legend(fontsize=7, loc="lower right")
    return _png(figure)


def bars(check: dict, names: list[str], title: str) -> str:
    """The chosen metrics, one small axis each, with their intervals and the thresholds they met or missed."""
    present = [n for n in names if n in check["metrics"]]
    figure, axes_row = plt.subplots(1, len(present), figsize=(1.6 * len(present) + 0.6, 2.4), squeeze=False)
    for axes, name in zip(axes_row[0], present):
        value, required = check["metrics"][name], _thresholds(check, name)
        error = _error(value, check["intervals"].get(name))
        colour = _colour(required)
        axes.bar([0], [value], yerr=[[error[0]], [error[1]]], capsize=4, color=colour, width=0.6)
        axes.plot([-0.3, 0.3], [value, value], color=colour, linewidth=2)  # visible even at height 0
        axes.annotate(f"{value:.3g}", (0, value), textcoords="offset points", xytext=(0, 3), ha="center",
                      fontsize=7)
        _draw_thresholds(axes, required)
        axes.set_ylim(*_span([value], required, ([error[0]], [error[1]])))
        axes.axhline(0, color="black", linewidth=0.5)
        axes.set_xticks([])
        axes.set_xlabel(name.replace("_", " "), fontsize=7)
        axes.tick_params(labelsize=7)
    figure.suptitle(_text(title), fontsize=9)
    figure.tight_layout()
    return _png(figure)


def figure_for(check: dict) -> str | None:
    """A probe sweep's curve, or the bars of the metrics its check's result type plots (if any)."""
    if check.get("curve"):
        return probe_curve(check)
    names = figure_metrics(check["check"])
    if not names:
        return None
    return bars(check, list(names), f"{check['check']} at {check.get('site', '')}")


def loop_metric(checks: list[dict]) -> str | None:
    """The metric a loop of checks was held to (the first thresholded one), if the audit is a loop."""
    if len(checks) < LOOP or len({c["check"] for c in checks}) != 1:
        return None
    return next((t["metric"] for c in checks for t in c.get("thresholds", [])), None)


def loop_chart(checks: list[dict], metric: str, decided: int | None) -> str:
    """One point per check of a loop (a vocabulary scan): the metric against its threshold, so the check
    that stands out (the trigger) is seen at once; the deciding check is labelled."""
    labels = [c.get("concept") or c.get("site", "") for c in checks]
    values = [c["metrics"].get(metric, float("nan")) for c in checks]
    required = [t for c in checks for t in _thresholds(c, metric)][:1]
    colours = [_colour(_thresholds(c, metric)) for c in checks]
    figure, axes = plt.subplots(figsize=(min(12, 2 + 0.22 * len(checks)), 2.6))
    axes.bar(range(len(checks)), values, color=colours, width=0.7)
    axes.scatter(range(len(checks)), values, color=colours, s=8, zorder=3)  # a zero still shows
    if required:
        _draw_thresholds(axes, [{**required[0], "passed": all(c == PASSED for c in colours)}])
    if decided is not None and decided < len(checks):
        axes.annotate(_text(labels[decided]), (decided, values[decided]), textcoords="offset points",
                      xytext=(0, 4), ha="center", fontsize=8, color=colours[decided])
    axes.set_ylim(*_span(values, required, None))
    axes.set_xticks(range(len(checks)), [_text(label) for label in labels], rotation=90, fontsize=6)
    axes.set_ylabel(metric.replace("_", " "), fontsize=8)
    axes.set_title(_text(f"{checks[0]['check']} at {checks[0].get('site', '')}: {len(checks)} checks"), fontsize=9)
    return _png(figure)
