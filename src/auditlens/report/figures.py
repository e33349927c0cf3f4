"""Figures for the HTML report, as inline PNG data (matplotlib, no display, no network).

Each figure shows what a check was held to: the threshold as a dashed line across its bar, labelled
beside it, the bar or point in green when it met it and red when it did not (grey when nothing was
required of it). Rates, accuracies and other fractions share one axis from 0 to 1, so "accuracy
before 1.0" and "after 0.48" look as different as they are; a metric of another scale (a margin, a
shift per unit of steering) gets an axis of its own. Zero stays on every axis, a zero-height bar is
drawn as a mark, and each value is written above its interval, never under it.
"""

from __future__ import annotations

import base64
import io

import matplotlib

from .check_tags import curve_points, curve_series, figure_metrics

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


def sweep_curve(check: dict) -> str:
    """A sweep's measured metric per site with its interval, against its control (and chance, where the
    sites have one), with the sweep's threshold on the best site's value (``best_<metric>``, if one was
    asserted): a probe's accuracy beside the control task's, a DAS's IIA beside the shuffled-label control's."""
    points, series = curve_points(check), curve_series(check)
    (measured, measured_label), controls = series[0], series[1:]
    sites = [c["site"] for c in points]
    values = [c["metrics"][measured] for c in points]
    errors = list(zip(*[_error(c["metrics"][measured], c["intervals"].get(measured)) for c in points]))
    required = _thresholds(check, f"best_{measured}")
    figure, axes = plt.subplots(figsize=(5, 2.6))
    lines = [axes.errorbar(range(len(sites)), values, yerr=errors, marker="o", label=_text(measured_label),
                           capsize=3, color=_colour(required))]
    for metric, label in controls:
        lines += axes.plot(range(len(sites)), [c["metrics"].get(metric, float("nan")) for c in points], marker="s",
                           linestyle="--", label=_text(label), color="#ff8f00")
    chance = points[0]["metrics"].get("chance")
    if chance is not None:
        lines.append(axes.axhline(chance, color="#999", linestyle=":", linewidth=1, label="chance"))
    _draw_thresholds(axes, required)
    axes.set_xticks(range(len(sites)), [_text(site) for site in sites], rotation=30, fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel(measured.replace("_", " "))
    axes.set_title(_text(f"{check['check']} for {check.get('concept', '')}"), fontsize=9)
    axes.legend(handles=lines, fontsize=7, loc="lower right")  # the measured series first
    return _png(figure)


FRACTIONS = ("accuracy", "rate", "iia", "faithfulness", "chance", "selectivity", "score_")  # on a 0-1 scale


def is_fraction(name: str) -> bool:
    """A metric on the shared 0-1 axis (rates, accuracies, their differences), not one of its own scale."""
    return any(part in name for part in FRACTIONS) and not name.startswith("seconds_")


def bars(check: dict, names: list[str], title: str) -> str:
    """The chosen metrics with their intervals and the thresholds they met or missed: the fractions side
    by side on one 0-1 axis, any other metric on an axis of its own."""
    present = [n for n in names if n in check["metrics"]]
    shared = [n for n in present if is_fraction(n) and check.get("metric") != "logit_difference"]
    panels = ([shared] if shared else []) + [[n] for n in present if n not in shared]
    figure, axes_row = plt.subplots(1, len(panels), figsize=(1.3 * len(present) + 1.2 * len(panels), 2.8),
                                    squeeze=False, gridspec_kw={"width_ratios": [len(p) for p in panels]})
    for axes, panel in zip(axes_row[0], panels):
        values, lows, highs = [], [], []
        for x, name in enumerate(panel):
            value, required = check["metrics"][name], _thresholds(check, name)
            low, high = _error(value, check["intervals"].get(name))
            colour = _colour(required)
            axes.bar([x], [value], yerr=[[low], [high]], capsize=4, color=colour, width=0.6, ecolor="#333")
            axes.plot([x - 0.3, x + 0.3], [value, value], color=colour, linewidth=2)  # visible even at height 0
            top = value + high if value >= 0 else value - low
            axes.annotate(f"{value:.3g}", (x, top), textcoords="offset points", xytext=(0, 3 if value >= 0 else -10),
                          ha="center", fontsize=8, fontweight="bold")
            for t in required:  # the bound across this bar's slot, named beside it
                line = PASSED if t["passed"] else FAILED
                axes.hlines(t["value"], x - 0.45, x + 0.45, colors=line, linestyles="--", linewidth=1.5)
                axes.annotate(f"{t['op']} {t['value']:g}", (x - 0.45, t["value"]), textcoords="offset points",
                              xytext=(0, 2), fontsize=8, ha="left", va="bottom", color=line)
            values.append(value)
            lows.append(value - low)
            highs.append(value + high)
        thresholds = [t for name in panel for t in _thresholds(check, name)]
        low, high = _span(values, thresholds, None)
        low, high = min(low, *lows), max(high, *highs)
        if panel is shared:  # the common scale of fractions: at least 0 to 1
            low, high = min(low, 0.0), max(high, 1.0)
        pad = 0.1 * (high - low or 1.0)
        axes.set_ylim(low - (pad if low < 0 else 0), high + pad)
        axes.set_xlim(-0.6, len(panel) - 0.4)
        axes.axhline(0, color="black", linewidth=0.5)
        axes.set_xticks(range(len(panel)), [n.replace("_", " ") for n in panel], rotation=15, fontsize=7)
        axes.tick_params(labelsize=7)
    figure.suptitle(_text(title), fontsize=9)
    figure.tight_layout()
    return _png(figure)


def figure_for(check: dict) -> str | None:
    """A sweep's curve (its per-site series), or the bars of the metrics its check's result type plots (if any)."""
    if curve_series(check):
        return sweep_curve(check)
    names = figure_metrics(check)
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
