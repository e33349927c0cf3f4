"""Layer x head heat maps for the HTML report: head-level attribution (estimate beside real patching
when it was validated) and loops of checks over heads (an ablation per head), each cell the value a
check measured, the cells that missed their threshold outlined in red."""

from __future__ import annotations

import re

import numpy as np

from .figures import FAILED, _png, _text, plt

HEAD = re.compile(r"^head:(\d+)\.(\d+)$")
# the colour scale never stretches below this: values under it are rounding (an attribution of 1e-10
# on a model that ignores the pairs), drawn white, and the map says so in words
NOISE_FLOOR = 1e-6
MIN_HEADS = 2  # fewer heads than this: a table says it better than a map


def head_index(name: str) -> tuple[int, int] | None:
    match = HEAD.match(name or "")
    return (int(match[1]), int(match[2])) if match else None


def _grid(cells: list[tuple[tuple[int, int], float]]) -> np.ndarray:
    layers = 1 + max(layer for (layer, _), _ in cells)
    heads = 1 + max(head for (_, head), _ in cells)
    grid = np.full((layers, heads), np.nan)
    for (layer, head), value in cells:
        grid[layer, head] = value
    return grid


def _panel(axes, grid: np.ndarray, title: str, missed: list[tuple[int, int]]) -> None:
    largest = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.0
    bound = max(largest, NOISE_FLOOR)
    if largest < NOISE_FLOOR:
        title += f"\nnothing above the noise floor (every |value| < {NOISE_FLOOR:g})"
    image = axes.imshow(grid, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    layers, heads = grid.shape
    if layers * heads <= 64:  # small maps carry their numbers
        for layer in range(layers):
            for head in range(heads):
                if np.isfinite(grid[layer, head]):
                    axes.text(head, layer, f"{grid[layer, head]:.2g}", ha="center", va="center", fontsize=6)
    for layer, head in missed:
        axes.add_patch(plt.Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, edgecolor=FAILED, linewidth=2))
    axes.set_xticks(range(heads))
    axes.set_yticks(range(layers))
    axes.set_xlabel("head", fontsize=7)
    axes.set_ylabel("layer", fontsize=7)
    axes.tick_params(labelsize=6)
    axes.set_title(_text(title), fontsize=8)
    plt.colorbar(image, ax=axes, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)


def heads_of(rows: list[dict], key: str) -> list[tuple[tuple[int, int], float]]:
    return [(index, float(row[key])) for row in rows
            if (index := head_index(row.get("component", ""))) is not None and isinstance(row.get(key), (int, float))]


def component_map(check: dict) -> str | None:
    """A check's per-head values (attribution: the estimate, and real patching beside it) as maps."""
    rows = check.get("component_values") or []
    keys = [k for k in ("estimate", "actual", "faithfulness_drop") if any(k in row for row in rows)]
    panels = [(key, cells) for key in keys if len(cells := heads_of(rows, key)) >= MIN_HEADS]
    if not panels:
        return None
    names = {"estimate": "attribution estimate", "actual": "real activation patching",
             "faithfulness_drop": "faithfulness lost without it"}
    figure, axes_row = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 2.8), squeeze=False)
    for axes, (key, cells) in zip(axes_row[0], panels):
        _panel(axes, _grid(cells), names[key], [])
    figure.suptitle(_text(f"{check['check']} over {check.get('site', '')}"), fontsize=9)
    figure.tight_layout()
    return _png(figure)


def loop_map(checks: list[dict], metric: str) -> str | None:
    """A loop of checks, one per head (``for head in heads: ablate(at=head)``), as one layer x head map of
    the metric they were held to; None unless every check sits at a head."""
    indices = [head_index(check.get("site", "")) for check in checks]
    if any(index is None for index in indices) or len(set(indices)) != len(indices):
        return None
    cells = [(index, float(check["metrics"].get(metric, float("nan")))) for index, check in zip(indices, checks)]
    missed = [index for index, check in zip(indices, checks)
              if any(not t["passed"] for t in check.get("thresholds", []) if t["metric"] == metric)]
    figure, axes = plt.subplots(figsize=(4.2, 3.0))
    _panel(axes, _grid(cells), f"{checks[0]['check']}: {metric.replace('_', ' ')} per head", missed)
    figure.tight_layout()
    return _png(figure)
