"""The report's files: report.md (tables and plots), report.csv (one row per cell and heuristic,
plus one per cell) and report.json (every number); and the compact text printed to stdout."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skr_cli.report.agreement import Agreement, Matrix
from skr_cli.report.cells import CellKey, CellStats, format_value, saved_choices, short_labels
from skr_cli.report.collect import Problem, Sweep


@dataclass
class Report:
    """Everything the report shows, ready to write."""

    sweep: Sweep
    stats: list[CellStats]
    agreement: Agreement | None
    problems: list[Problem]  # unfinished, unreadable and duplicate runs
    resamples: int
    seed: int
    plots: list[Path] = field(default_factory=list)

    def cell_id(self, key: CellKey) -> str:
        """``C1``, ``C2``, ... in the order of ``stats``."""
        ids = {s.cell.key: f"C{i}" for i, s in enumerate(self.stats, start=1)}
        return ids[key]

    @property
    def gaps(self) -> list[tuple[CellStats, str, int]]:
        return [(s, h, seed) for s in self.stats for h, seed in s.gaps]


def num(value: float | int | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals; "n/a" when undefined."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def mega(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.3f} M"


def signed(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def p_value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def estimate(
    value: float | None, low: float | None, high: float | None, *, sign: bool = False
) -> str:
    """``0.16 [0.13, 0.21]``; ``0.16 (CI n/a)`` without an interval; ``n/a`` without a value."""
    if value is None:
        return "n/a"
    text = signed(value) if sign else num(value)
    if low is None or high is None:
        return f"{text} (CI n/a)"
    return f"{text} [{low:.2f}, {high:.2f}]"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


# --- report.md --------------------------------------------------------------------------------


def summary_table(report: Report) -> list[str]:
    """One line per cell: the spread across heuristics and the comparison with the baseline."""
    header = [
        "cell",
        "heuristics",
        "seeds",
        "mean top-1",
        "std across heuristics",
        "range",
        "σ_H (seed noise removed)",
        "F-test p",
        "spread ratio vs baseline [95 % CI]",
        "Δ mean top-1",
    ]
    rows = []
    for s in report.stats:
        ratio = s.ratio
        versus = "baseline" if s.cell.baseline_relocation else "no baseline"
        if ratio is not None and s.baseline is not None:
            versus = (
                f"{estimate(ratio.ratio, ratio.low, ratio.high)} vs {report.cell_id(s.baseline)}"
            )
        rows.append(
            [
                report.cell_id(s.cell.key),
                str(s.spread.heuristics),
                str(len(s.cell.seeds)),
                num(s.spread.mean),
                num(s.spread.std),
                num(s.spread.range),
                num(s.anova.sd_heuristic),
                p_value(s.anova.p),
                versus,
                signed(ratio.mean_difference) if ratio else "",
            ]
        )
    return table(header, rows)


def ranked(report: Report) -> list[CellStats]:
    """Cells with two or more heuristics, best first by mean top-1 minus the std across
    heuristics: the objective of a search for settings that are accurate *and* agnostic."""
    scored = [s for s in report.stats if s.spread.std is not None]
    return sorted(scored, key=lambda s: -(s.spread.mean - s.spread.std))


def ranking_lines(report: Report) -> list[str]:
    """The cells ranked by mean − std (a random search's trials: the best setting first)."""
    cells = ranked(report)
    if len(cells) < 2:
        return ["Fewer than two cells with two or more heuristics: nothing to rank."]
    rows = []
    for place, s in enumerate(cells, start=1):
        settings = [
            f"{k}={format_value(v)}"
            for k, v in s.cell.key.fields()
            if k.startswith("relocation.") or k not in ("dataset", "model")
        ]
        rows.append(
            [
                str(place),
                report.cell_id(s.cell.key),
                num(s.spread.mean - s.spread.std),
                num(s.spread.mean),
                num(s.spread.std),
                " ".join(settings),
            ]
        )
    return table(["rank", "cell", "mean − std", "mean top-1", "std", "settings"], rows)


def heuristic_table(stats: CellStats) -> list[str]:
    """One line per heuristic of a cell (means over its seeds)."""
    header = [
        "heuristic",
        "seed(s)",
        "top-1 % (mean ± std)",
        "video top-1 %",
        "after removal",
        "+ BN re-est.",
        "Δloss remove",
        "params",
        "MACs",
        "latency ms",
    ]
    rows = []
    for row in stats.heuristics:
        m = row.means
        top1 = num(row.top1.mean) + (f" ± {num(row.top1.std)}" if row.top1.std is not None else "")
        rows.append(
            [
                row.heuristic,
                ",".join(map(str, row.seeds)),
                top1,
                num(m["video_top1"]),
                num(m["pruned_top1"]),
                num(m["pruned_top1_bn_recal"]),
                signed(m["delta_loss_remove"], 3),
                mega(m["params"]),
                mega(m["macs"]),
                num(m["latency_ms"]),
            ]
        )
    return table(header, rows)


def spread_lines(report: Report, s: CellStats) -> list[str]:
    """The cell's spread across heuristics, ANOVA and baseline comparison, as bullet points."""
    a = s.anova
    lines = [
        f"- across heuristics: std {estimate(s.spread.std, s.spread_low, s.spread_high)}, "
        f"range {num(s.spread.range)}, "
        f"mean top-1 {num(s.spread.mean)} ({s.spread.heuristics} heuristics)",
    ]
    if a.ms_heuristic is None:
        lines.append(
            f"- seed noise removed: n/a (two-way ANOVA needs ≥ 2 heuristics and ≥ 2 seeds that "
            f"all heuristics have; {a.heuristics} × {a.seeds})"
        )
    else:
        df = f"F({a.heuristics - 1}, {(a.heuristics - 1) * (a.seeds - 1)})"
        seeds = ",".join(map(str, s.anova_seeds))
        lines.append(
            f"- seed noise removed (two-way ANOVA heuristic × seed on seeds {seeds}): "
            f"σ_H {num(a.sd_heuristic)}, σ_seed {num(a.sd_seed)}, residual sd "
            f"{num(a.sd_residual)}; MS_heuristic {num(a.ms_heuristic, 3)}, MS_seed "
            f"{num(a.ms_seed, 3)}, MS_error {num(a.ms_error, 3)}, {df} = {num(a.f)}, "
            f"p = {p_value(a.p)}"
        )
    epochs = sorted({r.means["finetune_epochs"] for r in s.heuristics} - {None})
    if epochs:
        lines.append(f"- fine-tuning epochs after removal: {', '.join(f'{e:g}' for e in epochs)}")
    if s.ratio is not None and s.baseline is not None:
        r = s.ratio
        lines.append(
            f"- relocation vs baseline {report.cell_id(s.baseline)}, paired on {r.heuristics} "
            f"heuristics × {r.seeds} shared seeds: spread ratio "
            f"{estimate(r.ratio, r.low, r.high)}, mean top-1 "
            f"{estimate(r.mean_difference, r.difference_low, r.difference_high, sign=True)} "
            f"points (95 % percentile intervals, {r.resamples} bootstrap resamples of the seeds); "
            f"paired permutation test of an unchanged spread p = {p_value(r.p_permutation)}"
        )
        for name, w in s.without.items():
            worst = " (the baseline's worst)" if name == s.worst else ""
            lines.append(
                f"- without {name}{worst}, {w.heuristics} heuristics × {w.seeds} seeds: spread "
                f"ratio {estimate(w.ratio, w.low, w.high)}, mean top-1 "
                f"{estimate(w.mean_difference, w.difference_low, w.difference_high, sign=True)}"
                f" points, permutation p = {p_value(w.p_permutation)}"
            )
    lines += [f"- {note}" for note in s.notes]
    if s.gaps:
        missing = ", ".join(f"{h} seed {seed}" for h, seed in s.gaps)
        lines.append(f"- gaps: {missing}")
    return lines


def agreement_lines(agreement: Agreement | None) -> list[str]:
    """The τ and Jaccard matrices as tables."""
    if agreement is None:
        return ["Fewer than two heuristics: no agreement to measure."]
    names = agreement.heuristics

    def rows(matrix: Matrix) -> list[list[str]]:
        return [
            [
                name,
                *(
                    f"{num(v)} ({n})" if v is not None else "n/a"
                    for v, n in zip(mean, counts, strict=True)
                ),
            ]
            for name, mean, counts in zip(names, matrix.mean, matrix.dense_models, strict=True)
        ]

    lines = [
        "First-round scores of runs that pruned the same dense model, averaged over layers, then",
        "over dense models (their number in parentheses; n/a: no shared dense model).",
        "",
        "Kendall τ-b of the channel scores:",
        "",
        *table(["", *names], rows(agreement.kendall_tau)),
    ]
    for setting, matrix in agreement.jaccard.items():
        lines += ["", f"Jaccard overlap of the removal plans, {setting}:", ""]
        lines += table(["", *names], rows(matrix))
    if agreement.unreadable:
        lines += ["", f"Unreadable plan.json files (left out): {len(agreement.unreadable)}"]
    return lines


def problem_lines(report: Report) -> list[str]:
    """Unfinished/failed/unreadable runs, and gaps in the cells."""
    lines = []
    if report.problems:
        rows = [[p.kind, str(p.path), p.detail.replace("|", "\\|")] for p in report.problems]
        lines += table(["kind", "run", "detail"], rows)
    else:
        lines.append("None: every run directory holds a readable metrics.json.")
    if report.sweep.skipped:
        lines += ["", f"Agreement-only runs (no pruning, left out): {len(report.sweep.skipped)}"]
    lines += ["", "### Gaps", ""]
    if report.gaps:
        rows = [[report.cell_id(s.cell.key), h, str(seed)] for s, h, seed in report.gaps]
        lines += ["Heuristic × seed runs missing in a cell where another heuristic has the seed:"]
        lines += ["", *table(["cell", "heuristic", "missing seed"], rows)]
    else:
        lines.append("None: in every cell, every heuristic has every seed.")
    return lines


def cell_sections(report: Report) -> list[str]:
    lines = []
    for s in report.stats:
        lines += ["", f"### {report.cell_id(s.cell.key)}: {s.cell.key.label}", ""]
        lines += heuristic_table(s)
        lines += ["", *spread_lines(report, s)]
    return lines


def markdown(report: Report, out: Path) -> str:
    """The whole report.md."""
    sweep = report.sweep
    lines = [
        "# Sweep report",
        "",
        f"{len(sweep.runs)} runs read from {', '.join(str(p) for p in sweep.roots)}: "
        f"{len(report.stats)} cells, {len(report.problems)} unfinished, failed, unreadable or "
        f"duplicate, {len(report.gaps)} gaps. Accuracies are final clip-level top-1 %; stds "
        "use ddof=1; σ_H is the heuristic standard deviation with seed noise removed.",
        "",
        "## Spread across heuristics",
        "",
        *summary_table(report),
        "",
        "## Cells ranked by mean − std across heuristics",
        "",
        *ranking_lines(report),
        "",
        "## Cells",
        *cell_sections(report),
        "",
        "## Agreement between heuristics",
        "",
        *agreement_lines(report.agreement),
        "",
        *plot_section(as_json(report, out)),
        "",
        "## Unfinished or failed runs",
        "",
        *problem_lines(report),
    ]
    return "\n".join(lines) + "\n"


PLOTS_HEADING = "## Plots"


def plot_section(data: dict[str, Any]) -> list[str]:
    """report.md's plots, and the table that names each variant of their legends: its short
    label, its cells and their keys, from report.json's ``data``."""
    cells = data["cells"]
    keys = [c["key"] for c in cells]
    variants = short_labels(keys, [saved_choices(c) for c in cells], leave_out=("prune.ratio",))
    rows: dict[str, list[str]] = {}
    for cell, variant in zip(cells, variants, strict=True):
        rows.setdefault(variant, []).append(cell["id"])
    table_rows = []
    for variant, ids in rows.items():
        key = next(c["key"] for c in cells if c["id"] == ids[0])
        full = " ".join(f"{k}={format_value(v)}" for k, v in key.items() if k != "prune.ratio")
        table_rows.append([f"`{variant}`", ", ".join(ids), full])
    return [
        PLOTS_HEADING,
        "",
        *(f"![{Path(p).stem}]({p})" for p in data["plots"]),
        "",
        "Variants in the plots (what differs between their cells besides the prune ratio; "
        "accuracy_vs_ratio.png: mean over heuristics, error bars the std across heuristics):",
        "",
        *table(["variant", "cells", "key (all but prune.ratio)"], table_rows),
    ]


def replace_plot_section(text: str, section: Sequence[str]) -> str:
    """report.md's text with its plots section (up to the next ``## `` heading) replaced."""
    lines = text.splitlines()
    if PLOTS_HEADING not in lines:
        return text.rstrip("\n") + "\n\n" + "\n".join(section) + "\n"
    start = lines.index(PLOTS_HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = ["", *lines[end:]] if end < len(lines) else []
    return "\n".join([*lines[:start], *section, *tail]) + "\n"


def terminal(report: Report, files: Sequence[Path]) -> str:
    """What ``skr-report`` prints: the tables, the problems in one line, and the files."""
    lines = ["Spread across heuristics (final top-1 %)", "", *summary_table(report)]
    lines += cell_sections(report)
    lines += [
        "",
        f"{len(report.problems)} unfinished, failed, unreadable or duplicate runs; "
        f"{len(report.gaps)} gaps (see report.md)",
        "written: " + ", ".join(str(f) for f in files),
    ]
    return "\n".join(lines)


# --- report.csv and report.json ---------------------------------------------------------------

STAT_COLUMNS = [
    "n",
    "seeds",
    "top1_mean",
    "top1_std",
    "video_top1_mean",
    "pruned_top1_mean",
    "pruned_top1_bn_recal_mean",
    "delta_loss_remove_mean",
    "params_mean",
    "macs_mean",
    "latency_ms_mean",
    "finetune_epochs_mean",
]
CELL_COLUMNS = [
    "spread_std",
    "spread_low",
    "spread_high",
    "spread_range",
    "mean_top1",
    "anova_seeds",
    "ms_heuristic",
    "ms_seed",
    "ms_error",
    "f",
    "p",
    "sd_heuristic",
    "sd_seed",
    "sd_residual",
    "baseline",
    "spread_ratio",
    "ratio_low",
    "ratio_high",
    "ratio_seeds",
    "p_permutation",
    "mean_difference",
    "difference_low",
    "difference_high",
    "worst",
    "ratio_without_random",
    "ratio_without_worst",
    "gaps",
]


def csv_rows(report: Report) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows of report.csv: per cell, one row per heuristic (level=heuristic)
    and one row heuristic=ALL (level=cell) with the cell's statistics."""
    extras = sorted({k for s in report.stats for k, _ in s.cell.key.extras})
    key_columns = [
        "cell_id",
        "cell",
        "dataset",
        "model",
        "prune_ratio",
        "relocation_strength",
        "lowrank_weight",
        *extras,
    ]
    columns = [*key_columns, "level", "heuristic", *STAT_COLUMNS, *CELL_COLUMNS]
    rows = []
    for s in report.stats:
        key = s.cell.key
        base = {
            "cell_id": report.cell_id(key),
            "cell": key.label,
            "dataset": key.dataset,
            "model": key.model,
            "prune_ratio": key.prune_ratio,
            "relocation_strength": key.relocation_strength,
            "lowrank_weight": key.lowrank_weight,
            **{k: format_value(v) for k, v in key.extras},
        }
        for row in s.heuristics:
            values = row.as_dict()
            values["seeds"] = " ".join(map(str, row.seeds))
            values = {k: values.get(k) for k in STAT_COLUMNS}
            rows.append({**base, "level": "heuristic", "heuristic": row.heuristic, **values})
        rows.append({**base, "level": "cell", "heuristic": "ALL", **cell_values(report, s)})
    return columns, rows


def cell_values(report: Report, s: CellStats) -> dict[str, Any]:
    a, r = s.anova, s.ratio
    return {
        "n": len(s.cell.runs),
        "seeds": " ".join(map(str, s.cell.seeds)),
        "spread_std": s.spread.std,
        "spread_low": s.spread_low,
        "spread_high": s.spread_high,
        "spread_range": s.spread.range,
        "mean_top1": s.spread.mean,
        "anova_seeds": " ".join(map(str, s.anova_seeds)),
        "ms_heuristic": a.ms_heuristic,
        "ms_seed": a.ms_seed,
        "ms_error": a.ms_error,
        "f": a.f,
        "p": a.p,
        "sd_heuristic": a.sd_heuristic,
        "sd_seed": a.sd_seed,
        "sd_residual": a.sd_residual,
        "baseline": report.cell_id(s.baseline) if s.baseline else None,
        "spread_ratio": r.ratio if r else None,
        "ratio_low": r.low if r else None,
        "ratio_high": r.high if r else None,
        "ratio_seeds": r.seeds if r else None,
        "p_permutation": r.p_permutation if r else None,
        "mean_difference": r.mean_difference if r else None,
        "difference_low": r.difference_low if r else None,
        "difference_high": r.difference_high if r else None,
        "worst": s.worst,
        "ratio_without_random": s.without["random"].ratio if "random" in s.without else None,
        "ratio_without_worst": s.without[s.worst].ratio if s.worst in s.without else None,
        "gaps": " ".join(f"{h}:{seed}" for h, seed in s.gaps),
    }


def write_csv(report: Report, path: Path) -> Path:
    columns, rows = csv_rows(report)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def as_json(report: Report, out: Path) -> dict[str, Any]:
    """Every number of the report."""
    cells = []
    for s in report.stats:
        cell = s.as_dict()
        cell["id"] = report.cell_id(s.cell.key)
        cell["baseline_id"] = report.cell_id(s.baseline) if s.baseline else None
        cell["runs"] = [
            {
                "heuristic": h,
                "seed": seed,
                "path": str(run.path),
                "final_top1": run.get("final.top1"),
                "dense_key": run.dense_key,
            }
            for (h, seed), run in sorted(s.cell.runs.items())
        ]
        cells.append(cell)
    return {
        "paths": [str(p) for p in report.sweep.roots],
        "runs": len(report.sweep.runs),
        "bootstrap": {"resamples": report.resamples, "seed": report.seed},
        "cells": cells,
        "ranking": [
            {
                "id": report.cell_id(s.cell.key),
                "cell": s.cell.key.label,
                "objective": s.spread.mean - s.spread.std,
            }
            for s in ranked(report)
        ],
        "agreement": report.agreement.as_dict() if report.agreement else None,
        "problems": [p.as_dict() for p in report.problems],
        "gaps": [
            {"cell": report.cell_id(s.cell.key), "heuristic": h, "seed": seed}
            for s, h, seed in report.gaps
        ],
        "skipped": [str(p) for p in report.sweep.skipped],
        "plots": [p.relative_to(out).as_posix() for p in report.plots],
    }


def write_json(report: Report, path: Path) -> Path:
    path.write_text(json.dumps(as_json(report, path.parent), indent=2) + "\n")
    return path
