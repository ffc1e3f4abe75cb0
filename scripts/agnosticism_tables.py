"""Writes benchmarks/agnosticism.md from the skr-report outputs of the agnosticism study.

Run by scripts/agnosticism.sh after the sweeps and their reports:
    python scripts/agnosticism_tables.py --lowrank 0.1 --wall-seconds 5400
It reads benchmarks/agnosticism/{tune,study,budget}/report.json and the runs they name (for the
cost of every sweep) and writes the study's tables: spread across heuristics per prune ratio and
low-rank weight, the per-heuristic table (raw and batch-norm-recalibrated accuracy after
removal, the loss jump), the ablation, the budgets, the tuning, and the agreement matrices.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from skr_cli.report.write import num, signed, table

OUT = Path("benchmarks")
REPORTS = OUT / "agnosticism"


def interval(
    value: float | None,
    low: float | None,
    high: float | None,
    *,
    sign: bool = False,
    digits: int = 2,
) -> str:
    text = (signed if sign else num)(value, digits)
    if value is None or low is None or high is None:
        return text
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def variant(key: dict[str, Any]) -> str:
    """The relocation variant a cell's settings describe."""
    parts = []
    if float(key.get("relocation.strength", 0) or 0) > 0:
        parts.append("penalty")
    if float(key.get("relocation.distill.weight", 0) or 0) > 0:
        parts.append("distillation")
    if key.get("relocation.compensate") is True:
        parts.append("compensation")
    return " + ".join(parts) or "baseline"


def load(name: str) -> dict[str, Any] | None:
    path = REPORTS / name / "report.json"
    return json.loads(path.read_text()) if path.exists() else None


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {cell["id"]: cell for cell in report["cells"]}


def budget(cell: dict[str, Any]) -> int:
    """Epochs after scoring: the runs' fine-tuning budget (relocation phase included)."""
    return int(round(cell["heuristics"][0]["finetune_epochs_mean"]))


def spread_row(cell: dict[str, Any], cells: dict[str, dict[str, Any]]) -> list[str]:
    """Mean, std and σ_H of a cell, and its comparison with its baseline."""
    ratio = cell["ratio"] or {}
    anova = cell["anova"]
    return [
        variant(cell["key"]),
        str(len(cell["heuristics"])),
        str(anova["seeds"]),
        num(cell["spread"]["mean"], 1),
        num(cell["spread"]["std"], 2),
        num(anova["sd_heuristic"], 2),
        num(anova["sd_seed"], 2),
        "n/a" if anova["p"] is None else f"{anova['p']:.2g}",
        interval(ratio.get("ratio"), ratio.get("low"), ratio.get("high")) if ratio else "—",
        interval(
            ratio.get("mean_difference"),
            ratio.get("difference_low"),
            ratio.get("difference_high"),
            sign=True,
            digits=1,
        )
        if ratio
        else "—",
        num(_mean(cell, "delta_loss_remove_mean"), 3),
    ]


def _mean(cell: dict[str, Any], field: str) -> float | None:
    values = [h[field] for h in cell["heuristics"] if h.get(field) is not None]
    return sum(values) / len(values) if values else None


SPREAD_HEADER = [
    "relocation",
    "heuristics",
    "seeds",
    "mean top-1",
    "std across heuristics",
    "σ_H (seed noise removed)",
    "σ_seed",
    "F-test p",
    "spread ratio vs baseline [95 % CI]",
    "Δ mean top-1 [95 % CI]",
    "mean loss jump at removal",
]


def main_sections(study: dict[str, Any], lowrank: float) -> list[str]:
    """Per prune ratio and low-rank weight: spread table and per-heuristic table."""
    cells = by_id(study)
    main = [
        c for c in study["cells"] if variant(c["key"]) in ("baseline", "penalty") and budget(c) == 3
    ]
    lines = [
        "## The study: spread across heuristics",
        "",
        "Final clip top-1 % on the 5040-video test split after the 3-epoch budget; every "
        "heuristic's mean over seeds, then the std and range of those means. σ_H is the "
        "heuristic standard deviation with seed noise removed (two-way heuristic × seed "
        "ANOVA without replication), p its F-test. The spread ratio is relocation's std "
        "over the baseline's, with a paired bootstrap 95 % interval over seeds (2000 "
        "resamples); Δ mean is relocation's mean minus the baseline's.",
        "",
    ]
    rows = []
    for cell in sorted(
        main,
        key=lambda c: (
            c["key"]["lowrank.weight"],
            c["key"]["prune.ratio"],
            variant(c["key"]) != "baseline",
        ),
    ):
        key = cell["key"]
        rows.append(
            [num(key["prune.ratio"], 1), f"{key['lowrank.weight']:g}", *spread_row(cell, cells)]
        )
    lines += table(["prune ratio", "low-rank weight", *SPREAD_HEADER], rows)
    lines += [
        "",
        "## Per heuristic",
        "",
        "Mean ± std over seeds of the final top-1; `raw` and `BN` are the accuracy right "
        "after removal, before any fine-tuning, without and with batch-norm statistics "
        "re-estimated on 8 training batches; `Δloss` is the jump of the training loss at "
        "removal on fixed calibration batches.",
        "",
    ]
    for weight in sorted({c["key"]["lowrank.weight"] for c in main}):
        for ratio in sorted({c["key"]["prune.ratio"] for c in main}):
            pair = {
                variant(c["key"]): c
                for c in main
                if c["key"]["prune.ratio"] == ratio and c["key"]["lowrank.weight"] == weight
            }
            if not pair:
                continue
            lines += ["", f"### Prune ratio {ratio:g}, low-rank weight {weight:g}", ""]
            names = sorted({h["heuristic"] for c in pair.values() for h in c["heuristics"]})
            rows = []
            for name in names:
                row = [name]
                for which in ("baseline", "penalty"):
                    stats = (
                        next((h for h in pair[which]["heuristics"] if h["heuristic"] == name), None)
                        if which in pair
                        else None
                    )
                    if stats is None:
                        row += ["—"] * 4
                        continue
                    row += [
                        f"{num(stats['top1_mean'], 1)} ± {num(stats['top1_std'], 1)}",
                        num(stats["pruned_top1_mean"], 1),
                        num(stats["pruned_top1_bn_recal_mean"], 1),
                        num(stats["delta_loss_remove_mean"], 3),
                    ]
                rows.append(row)
            header = [
                "heuristic",
                "baseline top-1",
                "raw",
                "BN",
                "Δloss",
                "relocation top-1",
                "raw",
                "BN",
                "Δloss",
            ]
            lines += table(header, rows)
    return lines


def ablation_section(study: dict[str, Any]) -> list[str]:
    cells = by_id(study)
    chosen = [c for c in study["cells"] if c["key"]["prune.ratio"] == 0.5 and budget(c) == 3]
    order = [
        "baseline",
        "compensation",
        "distillation",
        "penalty",
        "penalty + compensation",
        "penalty + distillation",
        "penalty + distillation + compensation",
    ]
    chosen.sort(
        key=lambda c: (
            c["key"]["lowrank.weight"],
            order.index(variant(c["key"])) if variant(c["key"]) in order else 99,
        )
    )
    rows = [[f"{c['key']['lowrank.weight']:g}", *spread_row(c, cells)] for c in chosen]
    lines = [
        "## Ablation: which part carries the effect (prune ratio 0.5)",
        "",
        "Each variant against the baseline of the same low-rank weight; `penalty` is the "
        "tuned relocation (relocation=skr), `compensation` the least-squares fit at removal, "
        "`distillation` a KL term to the dense model's logits during the phase. The "
        "low-rank rows pre-train the dense model with the nuclear-norm regulariser; the "
        "comparison of those baselines with the plain baseline is in the last table.",
        "",
    ]
    lines += table(["low-rank weight", *SPREAD_HEADER], rows)
    baselines = {c["key"]["lowrank.weight"]: c for c in chosen if variant(c["key"]) == "baseline"}
    if len(baselines) == 2:
        plain, low = (baselines[w] for w in sorted(baselines))
        lines += ["", "Low-rank pre-training alone (baselines, ratio 0.5):", ""]
        lines += table(
            ["low-rank weight", "mean top-1", "std across heuristics", "σ_H", "dense top-1"],
            [
                [
                    f"{c['key']['lowrank.weight']:g}",
                    num(c["spread"]["mean"], 1),
                    num(c["spread"]["std"], 2),
                    num(c["anova"]["sd_heuristic"], 2),
                    num(dense_top1(c), 1),
                ]
                for c in (plain, low)
            ],
        )
    return lines


def dense_top1(cell: dict[str, Any]) -> float | None:
    """Mean dense top-1 of a cell's runs (one dense model per seed)."""
    values = []
    for run in cell["runs"]:
        path = Path(run["path"]) / "metrics.json"
        if path.exists():
            values.append(json.loads(path.read_text())["dense"]["top1"])
    return sum(values) / len(values) if values else None


def budget_section(report: dict[str, Any] | None) -> list[str]:
    if report is None:
        return [
            "## Budgets after scoring",
            "",
            "Not in this file: the sweeps of 1 and 10 epochs after scoring "
            "(experiment=agnosticism_budget, the last step of scripts/agnosticism.sh) had not "
            "run when it was written; every run above has the 3-epoch budget.",
        ]
    cells = by_id(report)
    chosen = [
        c
        for c in report["cells"]
        if c["key"]["prune.ratio"] == 0.5
        and c["key"]["lowrank.weight"] == 0
        and variant(c["key"]) in ("baseline", "penalty")
    ]
    chosen.sort(key=lambda c: (budget(c), variant(c["key"]) != "baseline"))
    rows = [[str(budget(c)), *spread_row(c, cells)] for c in chosen]
    present = sorted({budget(c) for c in chosen})
    missing = [b for b in (1, 3, 10) if b not in present]
    absent = f" No runs of {', '.join(map(str, missing))} epochs yet." if missing else ""
    return [
        "## Budgets after scoring (prune ratio 0.5, no low-rank training)",
        "",
        "The same number of epochs after scoring for both: relocation's phase is taken out "
        "of the budget (2 epochs of 3 and of 10; 1 of 1, leaving no fine-tuning after "
        "removal)." + absent,
        "",
        *table(["epochs after scoring", *SPREAD_HEADER], rows),
    ]


def tuning_section(report: dict[str, Any] | None) -> list[str]:
    if report is None:
        return ["## Tuning", "", "Not run."]
    cells = by_id(report)
    lines = [
        "## Tuning (validation split, never the test split)",
        "",
        "Random search (12 seeded draws, experiment=agnosticism_tune) of strength "
        "(log-uniform 3–1000), phase length (1 or 2 of the 3 epochs), target (bn, weights, "
        "activation, all) and compensation, each on l1, random and apoz at prune ratio 0.5, "
        "seed 0, on 360 validation videos held out from the training scenes; the objective "
        "is mean − std of final top-1 across the three. Then the low-rank weight with the "
        "chosen relocation. Ranked:",
        "",
    ]
    rows = []
    for place, entry in enumerate(report["ranking"], start=1):
        cell = cells[entry["id"]]
        key = cell["key"]
        settings = ", ".join(
            f"{k.removeprefix('relocation.')}={v}"
            for k, v in key.items()
            if k.startswith("relocation.") or k.startswith("lowrank.")
        )
        rows.append(
            [
                str(place),
                num(entry["objective"], 1),
                num(cell["spread"]["mean"], 1),
                num(cell["spread"]["std"], 2),
                settings,
            ]
        )
    return lines + table(["rank", "mean − std", "mean top-1", "std", "settings"], rows)


def matrix(names: list[str], values: list[list[float]]) -> list[str]:
    rows = [[a, *(num(v, 2) for v in row)] for a, row in zip(names, values, strict=True)]
    return table(["", *names], rows)


def agreement_section(study: dict[str, Any]) -> list[str]:
    agreement = study.get("agreement")
    if not agreement:
        return []
    names = agreement["heuristics"]
    lines = [
        "## Agreement between heuristics",
        "",
        "Kendall τ-b of the heuristics' channel scores on the same dense models (mean over "
        "layers and dense models), and Jaccard overlap of the channels they remove at each "
        "prune ratio.",
        "",
        "Kendall τ:",
        "",
    ]
    lines += matrix(names, agreement["kendall_tau"]["mean"])
    for label, block in agreement["jaccard"].items():
        lines += ["", f"Jaccard, {label}:", "", *matrix(names, block["mean"])]
    return lines


def cost_lines(reports: list[dict[str, Any]], wall: float | None) -> list[str]:
    """Runs and CPU time of every sweep the reports read (each run counted once)."""
    seen: dict[str, float] = {}
    for report in reports:
        for cell in report["cells"]:
            for run in cell["runs"]:
                path = Path(run["path"]) / "metrics.json"
                if run["path"] not in seen and path.exists():
                    timings = json.loads(path.read_text()).get("timings_s", {})
                    seen[run["path"]] = sum(timings.values())
    hours = sum(seen.values()) / 3600
    text = (
        f"{len(seen)} runs; their phases took {hours:.1f} h of job time in all (one thread "
        "each, dense-model training counted in the run that trained it)"
    )
    if wall is not None:
        text += f"; the whole study took {wall / 3600:.1f} h wall time"
    return [text + "."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lowrank", type=float, required=True, help="the tuned low-rank weight")
    parser.add_argument("--wall-seconds", type=float, default=None)
    args = parser.parse_args()
    study, tune, budgets = load("study"), load("tune"), load("budget")
    if study is None:
        raise SystemExit("agnosticism_tables: no benchmarks/agnosticism/study/report.json")
    machine = (
        f"{platform.machine()} CPU, {len(os.sched_getaffinity(0))} cores, "
        f"torch {torch.__version__}, no GPU"
    )
    lines = [
        "# Does Soft Knowledge Relocation make pruning heuristic-agnostic?",
        "",
        f"Generated by `bash scripts/agnosticism.sh` (`make study`) on {machine}, "
        f"{datetime.date.today().isoformat()}. "
        + " ".join(cost_lines([r for r in (study, tune, budgets) if r], args.wall_seconds)),
        "",
        "Protocol (experiment=agnosticism): i3d_tiny on dataset=synthetic_study (10 motion "
        "classes; 1440 training videos from 24 scenes, 5040 test videos from 84 other scenes, "
        "one clip each: a binomial standard error of 0.5–0.7 points per run at 60–85 % "
        "accuracy); 9 heuristics × prune ratios 0.3/0.5/0.7 × relocation off/tuned × low-rank "
        f"weight 0/{args.lowrank:g} × seeds 0–2; every heuristic, ratio and relocation setting "
        "of a (seed, low-rank weight) prunes the same dense model; 3 epochs after scoring for "
        "every run. Full per-cell reports and plots: benchmarks/agnosticism/{study,budget,tune}/"
        "report.md.",
        "",
        *main_sections(study, args.lowrank),
        "",
        *ablation_section(study),
        "",
        *budget_section(budgets),
        "",
        *tuning_section(tune),
        "",
        *agreement_section(study),
        "",
        "## Plots",
        "",
        *(f"![{Path(p).stem}](agnosticism/study/{p})" for p in study.get("plots", [])),
    ]
    (OUT / "agnosticism.md").write_text("\n".join(lines) + "\n")
    print(f"written: {OUT / 'agnosticism.md'}")


if __name__ == "__main__":
    main()
