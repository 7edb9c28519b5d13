"""`models compare --chart`: grouped bar charts of benchmark figures and prices, one panel per unit.

Imported only when --chart is given: matplotlib takes a while to load and is an optional extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after use(): the backend must be chosen before pyplot loads
from matplotlib.axes import Axes

from modelcatalog.cli.modelviews import Comparison

BAR_HEIGHT_INCHES = 0.28
PANEL_PADDING_INCHES = 1.3
WIDTH_INCHES = 10.0
LEGEND_INCHES = 0.5


@dataclass(frozen=True)
class Panel:
    """Rows of one chart panel (one unit); `values[model]` lines up with `labels`, None where a model has none."""

    title: str
    unit: str
    labels: list[str]
    values: dict[str, list[float | None]]


def panels(comparison: Comparison) -> list[Panel]:
    by_title: dict[str, Panel] = {}
    for row in comparison.charted():
        assert row.panel is not None
        empty: dict[str, list[float | None]] = {model: [] for model in comparison.models}
        panel = by_title.setdefault(row.panel, Panel(row.panel, row.unit or "", [], empty))
        panel.labels.append(row.label)
        for model, value in zip(comparison.models, row.values, strict=True):
            panel.values[model].append(None if value is None else float(value))
    return list(by_title.values())


def write_chart(comparison: Comparison, path: Path) -> None:
    chart_panels = panels(comparison)
    heights = [panel_height(p, len(comparison.models)) for p in chart_panels]
    figure, axes = plt.subplots(
        len(chart_panels), 1, figsize=(WIDTH_INCHES, sum(heights) + LEGEND_INCHES), height_ratios=heights, squeeze=False
    )
    for panel, ax in zip(chart_panels, axes[:, 0], strict=True):
        draw_panel(ax, panel, comparison.models)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncols=min(len(labels), 4), frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 1 - LEGEND_INCHES / (sum(heights) + LEGEND_INCHES)))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def panel_height(panel: Panel, model_count: int) -> float:
    return len(panel.labels) * model_count * BAR_HEIGHT_INCHES + PANEL_PADDING_INCHES


def draw_panel(ax: Axes, panel: Panel, models: list[str]) -> None:
    slot = 0.8 / len(models)
    for index, model in enumerate(models):
        offsets = [position - 0.4 + slot * (index + 0.5) for position in range(len(panel.labels))]
        values = panel.values[model]
        bars = ax.barh(offsets, [0.0 if v is None else v for v in values], height=slot, label=model)
        ax.bar_label(bars, labels=[f"{v:g}" if v is not None else "n/a" for v in values], padding=3, fontsize=8)
    ax.set_yticks(range(len(panel.labels)), panel.labels)
    ax.set_ylim(len(panel.labels) - 0.5, -0.5)  # first row on top
    ax.set_title(panel.title, loc="left", fontsize=10, fontweight="bold")
    ax.set_xlabel(panel.unit)
    ax.margins(x=0.12)
    ax.grid(axis="x", alpha=0.3)
