"""The report's figures (matplotlib, Agg backend), one per question, drawn from report.json's
numbers alone, so that ``skr-report --replot`` redraws them without the runs.

- ``accuracy_vs_ratio.png``: how does the accuracy fall with the prune ratio, per variant? A line
  per variant (relocation option, low-rank weight, ...: what differs between cells besides the
  ratio), the mean over heuristics, with the std across heuristics as error bars: the longer
  the bar, the more the result depends on the heuristic.
- ``spread.png``: does relocation make the result depend less on the heuristic? Per prune ratio,
  a bar per variant for the std across heuristics, and below, the spread ratio against the
  baseline cell with its bootstrap 95 % interval (below 1: less dependent).
- ``answer.png``: the study's question in one figure: per prune ratio the std across heuristics
  of every variant with its bootstrap 95 % interval and, where a ratio was run at several
  budgets (``finetune.epochs``), that std against the budget.
- ``agreement.png``: do the heuristics remove the same channels? Kendall τ and Jaccard heatmaps.

Variants are named by ``cells.short_labels``; report.md lists each name with its cells' keys.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from skr_cli.report.cells import BUDGET, saved_budget, saved_choices, short_labels  # noqa: E402

ACCURACY_PNG = "accuracy_vs_ratio.png"
SPREAD_PNG = "spread.png"
AGREEMENT_PNG = "agreement.png"
AXIS = "prune.ratio"  # the x axis of the figures: never part of a variant's name
ANSWER_PNG = "answer.png"
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
    std_interval: tuple[float, float] | None = None  # the std's bootstrap 95 % interval
    budget: float | None = None  # epochs after scoring (finetune.epochs), where recorded
    family: str = ""  # the variant's name with the budget left out as well


def plot_cells(data: Mapping[str, Any]) -> list[PlotCell]:
    """The cells of a report.json (``write.as_json``), each with its variant's name."""
    cells = data["cells"]
    keys, choices = [c["key"] for c in cells], [saved_choices(c) for c in cells]
    variants = short_labels(keys, choices, leave_out=(AXIS,))
    families = short_labels(keys, choices, leave_out=(AXIS, BUDGET))
    return [
        PlotCell(
            id=c["id"],
            variant=variant,
            ratio=float(c["key"][AXIS]),
            baseline=bool(c["baseline_relocation"]),
            mean=c["spread"]["mean"],
            std=c["spread"]["std"],
            vs_baseline=_ratio(c.get("ratio")),
            std_interval=_interval(c["spread"]),
            budget=saved_budget(c),
            family=family,
        )
        for c, variant, family in zip(cells, variants, families, strict=True)
    ]


def _interval(spread: Mapping[str, Any]) -> tuple[float, float] | None:
    low, high = spread.get("low"), spread.get("high")
    return None if low is None or high is None else (float(low), float(high))


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
            _spread_bar(top, x, width, cell, style, capsize=2, label=wrap(cell.variant))
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


def _spread_bar(
    ax: plt.Axes,
    x: float,
    width: float,
    cell: PlotCell,
    style: Mapping[str, Any],
    *,
    capsize: float = 3,
    label: str | None = None,
) -> None:
    """A cell's std across heuristics as a bar in its variant's style, with its interval."""
    ax.bar(
        x,
        cell.std or 0.0,
        width,
        yerr=_yerr(cell.std, cell.std_interval),
        capsize=capsize,
        ecolor="0.25",
        color=style["color"],
        hatch=style["hatch"],
        edgecolor="white",
        label=label,
    )


def _yerr(value: float | None, interval: tuple[float, float] | None) -> list | None:
    """An error bar from a point and its interval (None where either is missing)."""
    if value is None or interval is None:
        return None
    return [[max(0.0, value - interval[0])], [max(0.0, interval[1] - value)]]


def answer_figure(cells: Sequence[PlotCell]) -> Figure | None:
    """The study's question in one figure: left, per prune ratio the std across heuristics of
    every variant at the budget all ratios share, with its bootstrap 95 % interval (lower: more
    heuristic-agnostic); right, where a ratio has several budgets (``finetune.epochs``), that
    std against the budget per variant. None when no cell has a baseline to compare with."""
    if not any(c.vs_baseline for c in cells):
        return None
    budgets_per_ratio = defaultdict(set)
    for c in cells:
        budgets_per_ratio[c.ratio].add(c.budget)
    shared = set.intersection(*budgets_per_ratio.values())
    common = max((b for b in shared if b is not None), default=None)
    main = [c for c in cells if c.budget == common or not shared]
    curves = {r for r, b in budgets_per_ratio.items() if len(b - {None}) >= 3}
    styles = variant_styles([replace(c, variant=c.family) for c in cells])
    fig, axes = plt.subplots(
        1, 2 if curves else 1, figsize=(12.0 if curves else 7.0, 4.2), squeeze=False
    )
    left = axes[0][0]
    ratios = sorted({c.ratio for c in main})
    families = [f for f in styles if any(c.family == f for c in main)]
    width = 0.8 / max(len(families), 1)
    for i, family in enumerate(families):
        style = styles[family]
        for g, ratio in enumerate(ratios):
            cell = next((c for c in main if c.ratio == ratio and c.family == family), None)
            if cell is None or cell.std is None:
                continue
            _spread_bar(left, g + (i - (len(families) - 1) / 2) * width, width, cell, style)
    left.set_xticks(range(len(ratios)), [f"{r:g}" for r in ratios])
    left.set_xlabel("prune ratio (share of channels removed)")
    left.set_ylabel("std across heuristics (top-1 points)")
    budget_text = f", {common:g} epochs after scoring" if common is not None else ""
    left.set_title(f"Dependence on the heuristic{budget_text}", fontsize=10)
    left.grid(alpha=0.3, axis="y")
    if curves:
        right = axes[0][1]
        for ratio in sorted(curves):
            for family in families:
                mine = sorted(
                    (c for c in cells if c.ratio == ratio and c.family == family and c.std),
                    key=lambda c: c.budget or 0,
                )
                if len(mine) < 2:
                    continue
                style = styles[family]
                x = [c.budget for c in mine]
                y = [c.std for c in mine]
                low = [c.std - c.std_interval[0] if c.std_interval else 0 for c in mine]
                high = [c.std_interval[1] - c.std if c.std_interval else 0 for c in mine]
                right.errorbar(
                    x,
                    y,
                    yerr=[np.maximum(low, 0), np.maximum(high, 0)],
                    color=style["color"],
                    marker=style["marker"],
                    linestyle=style["linestyle"],
                    capsize=3,
                )
                if len(curves) > 1:
                    right.annotate(
                        f"{ratio:g}",
                        (x[-1], y[-1]),
                        fontsize=7,
                        xytext=(4, 0),
                        textcoords="offset points",
                    )
        right.set_xscale("log")
        budgets = sorted({c.budget for c in cells if c.ratio in curves and c.budget})
        right.set_xticks(budgets, [f"{b:g}" for b in budgets])
        right.minorticks_off()
        right.set_ylim(bottom=0)
        right.set_xlabel("epochs after scoring (finetune.epochs)")
        right.set_ylabel("std across heuristics (top-1 points)")
        ratio_text = ", ".join(f"{r:g}" for r in sorted(curves))
        right.set_title(f"Against the budget, prune ratio {ratio_text}", fontsize=10)
        right.grid(alpha=0.3)
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=styles[f]["color"], hatch=styles[f]["hatch"], ec="white")
        for f in families
    ]
    fig.legend(  # below the panels: it covers no data
        handles,
        [wrap(f, 40) for f in families],
        loc="lower center",
        ncol=min(len(families), 4),
        fontsize=8,
        frameon=False,
        title="variant (hatched: the baseline)",
        title_fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.08 + 0.04 * ((len(families) - 1) // 4), 1, 1))
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
    answer = answer_figure(cells)
    if answer is not None:
        paths.append(save(answer, out / ANSWER_PNG))
    if data.get("agreement"):
        paths.append(save(agreement_figure(data["agreement"]), out / AGREEMENT_PNG))
    return paths
