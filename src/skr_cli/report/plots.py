"""The report's figures (matplotlib, Agg backend), one per question, drawn from report.json's
numbers alone, so that ``skr-report --replot`` redraws them without the runs.

- ``accuracy_vs_ratio.png``: how does the accuracy fall with the prune ratio, per variant? A line
  per variant (relocation option, low-rank weight, ...: what differs between cells besides the
  ratio), the mean over heuristics, with the std across heuristics as error bars: the longer
  the bar, the more the result depends on the heuristic.
- ``spread.png``: does relocation make the result depend less on the heuristic? Per prune ratio,
  a bar per variant for the std across heuristics, and below, the spread ratio against the
  baseline cell with its bootstrap 95 % interval (below 1: less dependent).
- ``agreement.png``: do the heuristics remove the same channels? Kendall τ and Jaccard heatmaps.

Variants are named by ``cells.short_labels``; report.md lists each name with its cells' keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from skr_cli.report.cells import saved_choices, short_labels  # noqa: E402

ACCURACY_PNG = "accuracy_vs_ratio.png"
SPREAD_PNG = "spread.png"
AGREEMENT_PNG = "agreement.png"
AXIS = "prune.ratio"  # the x axis of the figures: never part of a variant's name
MARKERS = "osD^vPX<>*"
DPI = 110


@dataclass(frozen=True)
class PlotCell:
    """What the figures show of one cell, read from report.json."""

    id: str
    variant: str  # the short name of what differs from other cells, the prune ratio aside
    ratio: float  # prune ratio
    baseline: bool  # relocation off
    mean: float | None  # mean top-1 over heuristics (%)
    std: float | None  # std of the heuristic means (top-1 points)
    vs_baseline: tuple[float, float | None, float | None] | None  # spread ratio, 95 % interval


def plot_cells(data: Mapping[str, Any]) -> list[PlotCell]:
    """The cells of a report.json (``write.as_json``), each with its variant's name."""
    cells = data["cells"]
    variants = short_labels(
        [c["key"] for c in cells], [saved_choices(c) for c in cells], leave_out=(AXIS,)
    )
    return [
        PlotCell(
            id=c["id"],
            variant=variant,
            ratio=float(c["key"][AXIS]),
            baseline=bool(c["baseline_relocation"]),
            mean=c["spread"]["mean"],
            std=c["spread"]["std"],
            vs_baseline=_ratio(c.get("ratio")),
        )
        for c, variant in zip(cells, variants, strict=True)
    ]


def _ratio(ratio: Mapping[str, Any] | None) -> tuple[float, float | None, float | None] | None:
    if not ratio or ratio.get("ratio") is None:
        return None
    return (ratio["ratio"], ratio.get("low"), ratio.get("high"))


def variant_styles(cells: Sequence[PlotCell]) -> dict[str, dict[str, Any]]:
    """One style per variant, the same in every figure, listed variant by variant: the colour
    names the first part of the name (``relocation=skr``), a lighter tint and another marker the
    rest (``lowrank.weight=0.02``); baselines (relocation off) are dashed and hatched."""
    names = list(dict.fromkeys(c.variant for c in cells))
    firsts = list(dict.fromkeys(n.split(" ")[0] for n in names))
    families = {f: [n for n in names if n.split(" ")[0] == f] for f in firsts}
    baselines = {c.variant for c in cells if c.baseline}
    colours = plt.get_cmap("tab10").colors
    styles = {}
    for i, family in enumerate(families.values()):
        for j, name in enumerate(family):
            tint = 0.55 * j / max(len(family) - 1, 1)  # 0: the full colour, 0.55: near white
            base = np.array(colours[i % len(colours)])
            styles[name] = {
                "color": tuple(base + (1.0 - base) * tint),
                "marker": MARKERS[(i // len(colours) + j) % len(MARKERS)],
                "linestyle": "--" if name in baselines else "-",
                "hatch": "//" if name in baselines else None,
            }
    return styles


def wrap(text: str, width: int = 56) -> str:
    """A long legend entry broken into lines at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def _legend_outside(ax: plt.Axes, title: str) -> None:
    """The legend to the right of the axes, never over the data."""
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize=8,
        title=title,
        title_fontsize=8,
        frameon=False,
    )


def accuracy_figure(cells: Sequence[PlotCell]) -> Figure:
    """Mean top-1 over heuristics against prune ratio, a line per variant, the std across
    heuristics as error bars (variants side by side at each ratio, so the bars do not hide
    each other)."""
    styles = variant_styles(cells)
    ratios = sorted({c.ratio for c in cells})
    step = min(np.diff(ratios)) if len(ratios) > 1 else 0.2
    offset = 0.5 * step / max(len(styles), 1)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for i, (name, style) in enumerate(styles.items()):
        mine = sorted(
            (c for c in cells if c.variant == name and c.mean is not None), key=lambda c: c.ratio
        )
        if not mine:
            continue
        x = [c.ratio + (i - (len(styles) - 1) / 2) * offset for c in mine]
        ax.errorbar(
            x,
            [c.mean for c in mine],
            yerr=[c.std or 0.0 for c in mine],
            marker=style["marker"],
            linestyle=style["linestyle"],
            color=style["color"],
            capsize=3,
            markersize=5,
            label=wrap(name),
        )
    ax.set_xticks(ratios, [f"{r:g}" for r in ratios])
    ax.set_xlabel("prune ratio (share of channels removed)")
    ax.set_ylabel("final top-1 (%), mean over heuristics")
    ax.set_title("Accuracy after pruning; error bars: std across heuristics", fontsize=10)
    ax.grid(alpha=0.3)
    _legend_outside(ax, "variant")
    return fig


def spread_figure(cells: Sequence[PlotCell]) -> Figure | None:
    """Std across heuristics per prune ratio and variant (bars), and the spread ratio against
    the baseline with its interval (points, same colours); None when no cell has a baseline."""
    if not any(c.vs_baseline for c in cells):
        return None
    styles = variant_styles(cells)
    ratios = sorted({c.ratio for c in cells})
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8.0, 6.4), sharex=True, gridspec_kw={"height_ratios": [1.2, 1.0]}
    )
    ticks = []
    for g, ratio in enumerate(ratios):
        here = [c for c in cells if c.ratio == ratio]
        width = 0.8 / len(here)
        for i, cell in enumerate(sorted(here, key=lambda c: list(styles).index(c.variant))):
            x = g + (i - (len(here) - 1) / 2) * width
            style = styles[cell.variant]
            top.bar(
                x,
                cell.std or 0.0,
                width,
                color=style["color"],
                hatch=style["hatch"],
                edgecolor="white",
                label=wrap(cell.variant),
            )
            _ratio_point(bottom, x, cell, style)
        ticks.append(g)
    handles, names = top.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))  # one entry per variant
    top.legend(
        unique.values(),
        unique.keys(),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize=8,
        title="variant (hatched: relocation off)",
        title_fontsize=8,
        frameon=False,
    )
    top.set_ylabel("std across heuristics\n(top-1 points)")
    top.set_title("Dependence on the heuristic: lower is more heuristic-agnostic", fontsize=10)
    bottom.axhline(1.0, color="grey", lw=0.8, ls="--")
    bottom.set_ylabel("spread ratio\n(÷ baseline, 95 % CI)")
    bottom.set_xticks(ticks, [f"{r:g}" for r in ratios])
    bottom.set_xlabel("prune ratio (share of channels removed)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3, axis="y")
    return fig


def _ratio_point(ax: plt.Axes, x: float, cell: PlotCell, style: Mapping[str, Any]) -> None:
    """A cell's spread ratio with its interval as an error bar, where defined."""
    if cell.vs_baseline is None:
        return
    ratio, low, high = cell.vs_baseline
    err = None
    if low is not None and high is not None:
        err = [[max(0.0, ratio - low)], [max(0.0, high - ratio)]]
    ax.errorbar([x], [ratio], yerr=err, fmt=style["marker"], capsize=3, color=style["color"])


def _grid(panels: int, width: float, height: float) -> tuple[Figure, list]:
    columns = min(panels, 3)
    rows = math.ceil(panels / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def agreement_figure(agreement: Mapping[str, Any]) -> Figure:
    """Heatmaps of Kendall τ (scores) and, per prune setting, Jaccard (removal plans), from
    report.json's ``agreement``."""
    maps: list[tuple[str, Mapping[str, Any], tuple[float, float]]] = [
        ("Kendall τ-b of channel scores", agreement["kendall_tau"], (-1.0, 1.0))
    ]
    maps += [
        (f"Jaccard of removed channels\n{setting}", m, (0.0, 1.0))
        for setting, m in agreement["jaccard"].items()
    ]
    names = agreement["heuristics"]
    size = max(3.6, 0.55 * len(names) + 2.0)
    fig, axes = _grid(len(maps), width=size + 1.0, height=size)
    for ax, (title, matrix, (low, high)) in zip(axes, maps, strict=True):
        values = np.array([[np.nan if v is None else v for v in row] for row in matrix["mean"]])
        ax.set_facecolor("0.85")  # undefined pairs (no shared dense model) stay grey
        image = ax.imshow(values, vmin=low, vmax=high, cmap="viridis")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        for i in range(len(names)):
            for j in range(len(names)):
                missing = np.isnan(values[i, j])
                text = "n/a" if missing else f"{values[i, j]:.2f}"
                bright = not missing and (values[i, j] - low) / (high - low) > 0.6
                color = "black" if bright or missing else "white"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()  # tick labels clear of the neighbouring colour bar
    return fig


def save(fig: Figure, path: Path) -> Path:
    """Writes the figure with its outside legend in the frame, and closes it."""
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def draw(data: Mapping[str, Any], out: Path) -> list[Path]:
    """Every figure of a report.json into ``out``: accuracy, spread (when a cell has a baseline)
    and agreement (when measured)."""
    cells = plot_cells(data)
    paths = [save(accuracy_figure(cells), out / ACCURACY_PNG)]
    spread = spread_figure(cells)
    if spread is not None:
        paths.append(save(spread, out / SPREAD_PNG))
    if data.get("agreement"):
        paths.append(save(agreement_figure(data["agreement"]), out / AGREEMENT_PNG))
    return paths
