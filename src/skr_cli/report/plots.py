"""The report's figures (matplotlib, Agg backend): accuracy, spread and agreement."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

from skr_cli.report.agreement import Agreement, Matrix  # noqa: E402
from skr_cli.report.cells import CellKey, CellStats, format_value  # noqa: E402

ACCURACY_PNG = "accuracy_vs_ratio.png"
SPREAD_PNG = "spread.png"
AGREEMENT_PNG = "agreement.png"


def _setting(key: CellKey, *, relocation: bool) -> str:
    """A cell's label without the prune ratio (and without relocation settings if not asked)."""
    parts = [
        (k, v)
        for k, v in key.fields()
        if k != "prune.ratio" and (relocation or not k.startswith("relocation."))
    ]
    return " ".join(f"{k}={format_value(v)}" for k, v in parts)


def _wrap(text: str, width: int = 48) -> str:
    """Breaks a long label into lines at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def _grid(panels: int, width: float = 5.0, height: float = 3.6) -> tuple[plt.Figure, list]:
    columns = min(panels, 3)
    rows = math.ceil(panels / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def plot_accuracy(stats: Sequence[CellStats], path: Path) -> Path:
    """Final top-1 against prune ratio: a line per heuristic (error bars: std over seeds), a
    panel per relocation setting (and dataset, model, low-rank weight, other settings)."""
    panels: dict[str, list[CellStats]] = defaultdict(list)
    for cell in stats:
        panels[_setting(cell.cell.key, relocation=True)].append(cell)
    fig, axes = _grid(len(panels))
    for ax, (title, cells) in zip(axes, panels.items(), strict=True):
        lines: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        for cell in cells:
            for row in cell.heuristics:
                lines[row.heuristic].append(
                    (cell.cell.key.prune_ratio, row.top1.mean, row.top1.std or 0.0)
                )
        for heuristic, points in sorted(lines.items()):
            x, y, err = zip(*sorted(points), strict=True)
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=heuristic)
        ax.set_title(_wrap(title), fontsize=8)
        ax.set_xticks(sorted({c.cell.key.prune_ratio for c in cells}))
        ax.set_xlabel("prune ratio")
        ax.set_ylabel("final top-1 %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_spread(stats: Sequence[CellStats], path: Path) -> Path | None:
    """Std of the heuristic means per prune ratio, baseline against each relocation setting
    (bars), and below it the ratio relocation ÷ baseline with its bootstrap 95 % interval.
    None when no cell has a baseline to compare with."""
    compared = [s for s in stats if s.baseline is not None]
    if not compared:
        return None
    by_key = {s.cell.key: s for s in stats}
    panels: dict[str, list[CellStats]] = defaultdict(list)
    for cell in compared:
        panels[_setting(cell.cell.key, relocation=False)].append(cell)
    fig, axes = plt.subplots(
        2, len(panels), figsize=(5.5 * len(panels), 6.5), squeeze=False, sharex="col"
    )
    for column, (title, cells) in enumerate(panels.items()):
        top, bottom = axes[0][column], axes[1][column]
        ratios = sorted({c.cell.key.prune_ratio for c in cells})
        variants = sorted({_variant(c.cell.key) for c in cells})
        width = 0.8 / (len(variants) + 1)
        x = np.arange(len(ratios))
        baselines = {c.cell.key.prune_ratio: by_key[c.baseline].spread.std for c in cells}
        top.bar(x, [baselines.get(r) or 0.0 for r in ratios], width, label="baseline")
        for i, variant in enumerate(variants, start=1):
            mine = {c.cell.key.prune_ratio: c for c in cells if _variant(c.cell.key) == variant}
            heights = [(mine[r].spread.std or 0.0) if r in mine else 0.0 for r in ratios]
            top.bar(x + i * width, heights, width, label=_wrap(variant, 40))
            _ratio_points(bottom, x + i * width, [mine.get(r) for r in ratios], f"C{i}")
        top.set_title(_wrap(title), fontsize=8)
        top.set_ylabel("std of heuristic means (top-1 pts)")
        top.legend(fontsize=7)
        bottom.axhline(1.0, color="grey", lw=0.8, ls="--")
        bottom.set_ylabel("spread ratio (relocation ÷ baseline)")
        bottom.set_xticks(x + width * len(variants) / 2, [f"{r:g}" for r in ratios])
        bottom.set_xlabel("prune ratio")
        for ax in (top, bottom):
            ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _variant(key: CellKey) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in key.relocation().items())


def _ratio_points(ax, x: np.ndarray, cells: list[CellStats | None], color: str) -> None:
    """Ratio points with their interval as error bars, where defined (in the bars' colour)."""
    for xi, cell in zip(x, cells, strict=True):
        ratio = cell.ratio if cell else None
        if ratio is None or ratio.ratio is None:
            continue
        if ratio.low is not None and ratio.high is not None:
            err = [[max(0.0, ratio.ratio - ratio.low)], [max(0.0, ratio.high - ratio.ratio)]]
            ax.errorbar([xi], [ratio.ratio], yerr=err, fmt="o", capsize=4, color=color)
        else:
            ax.plot([xi], [ratio.ratio], "o", color=color)
        ax.annotate(
            f"{ratio.ratio:.2f}",
            (xi, ratio.ratio),
            textcoords="offset points",
            xytext=(6, 0),
            fontsize=7,
        )


def plot_agreement(agreement: Agreement, path: Path) -> Path:
    """Heatmaps of Kendall τ (scores) and, per prune setting, Jaccard (removal plans)."""
    maps: list[tuple[str, Matrix, tuple[float, float]]] = [
        ("Kendall τ-b of scores", agreement.kendall_tau, (-1.0, 1.0))
    ]
    maps += [(f"Jaccard of plans, {s}", m, (0.0, 1.0)) for s, m in agreement.jaccard.items()]
    size = max(3.6, 0.55 * len(agreement.heuristics) + 2.0)
    fig, axes = _grid(len(maps), width=size + 1.0, height=size)
    names = agreement.heuristics
    for ax, (title, matrix, (low, high)) in zip(axes, maps, strict=True):
        values = np.array([[np.nan if v is None else v for v in row] for row in matrix.mean])
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
        ax.set_title(_wrap(title, 40), fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
