"""Figures for the HTML report, as inline PNG data (matplotlib, no display, no network)."""

from __future__ import annotations

import base64
import io

import matplotlib

from ..registry import figure_metrics

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _error(metric: float, interval: dict | None) -> list[float]:
    if not interval:
        return [0.0, 0.0]
    return [max(metric - interval["low"], 0.0), max(interval["high"] - metric, 0.0)]


def probe_curve(check: dict) -> str:
    """Accuracy per layer with its interval, against the control task."""
    curve = check["curve"]
    sites = [c["site"] for c in curve]
    accuracy = [c["metrics"]["accuracy"] for c in curve]
    control = [c["metrics"]["control_accuracy"] for c in curve]
    errors = list(zip(*[_error(c["metrics"]["accuracy"], c["intervals"].get("accuracy")) for c in curve]))
    figure, axes = plt.subplots(figsize=(5, 2.6))
    axes.errorbar(range(len(sites)), accuracy, yerr=errors, marker="o", label="probe", capsize=3)
    axes.plot(range(len(sites)), control, marker="s", linestyle="--", label="control task")
    axes.set_xticks(range(len(sites)), sites, rotation=30, fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("accuracy")
    axes.set_title(f"probe for {check.get('concept', '')}", fontsize=9)
    axes.legend(fontsize=8)
    return _png(figure)


def bars(check: dict, names: list[str], title: str) -> str:
    """The chosen metrics as bars with their intervals (erase / ablate / patch / behaviour)."""
    present = [n for n in names if n in check["metrics"]]
    values = [check["metrics"][n] for n in present]
    errors = list(zip(*[_error(check["metrics"][n], check["intervals"].get(n)) for n in present])) or None
    figure, axes = plt.subplots(figsize=(4, 2.4))
    axes.bar(range(len(present)), values, yerr=errors, capsize=4, color="#4c72b0")
    axes.set_xticks(range(len(present)), [n.replace("_", "\n") for n in present], fontsize=7)
    axes.axhline(0, color="black", linewidth=0.5)
    axes.set_title(title, fontsize=9)
    return _png(figure)


def figure_for(check: dict) -> str | None:
    """A probe sweep's curve, or the bars of the metrics its check's result type plots (if any)."""
    if check.get("curve"):
        return probe_curve(check)
    names = figure_metrics(check["check"])
    if not names:
        return None
    return bars(check, list(names), f"{check['check']} at {check.get('site', '')}")
