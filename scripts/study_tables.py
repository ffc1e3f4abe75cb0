"""Writes benchmarks/agnosticism.md from the skr-report outputs of the agnosticism study.

Run by scripts/study.sh after its sweeps and reports:
    python scripts/study_tables.py [--out benchmarks/agnosticism.md]
It reads benchmarks/study/{study,ablation}/report.json (skr-report over the study with its budgets,
and over the study with its ablation) and the tuning's runs (scripts/study_arms.py), and writes
the answer per prune ratio (each arm's spread across heuristics against the baseline arm's: the
ratio with its paired bootstrap 95 % interval, the permutation test, the difference of mean
top-1), the same without random and without the worst heuristic, sigma_H, the spread against the
budget, the ablation, the per-heuristic accuracies and the tuning. A cell with fewer seeds than
the study's 5 says so: the file can be written while the study is still running.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

import study_arms
from skr_cli.report.cells import saved_budget, saved_choices
from skr_cli.report.write import estimate, num

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "benchmarks" / "study"
README = ROOT / "README.md"
# The README's answer section lies between these lines; this script rewrites what is between them.
BEGIN = "<!-- study answer: written by scripts/study_tables.py (make study) -->"
END = "<!-- end of the study answer -->"
STUDY_RUNS = 405
STUDY_RATIOS = (0.3, 0.5, 0.7)
ABLATION_LABELS = {
    "span_no_compensation": "the span phase without compensation",
    "compensation": "compensation alone (no phase)",
    "span": "the span arm",
    "baseline": "the baseline",
}
ARMS = ("baseline", "penalty", "span")
THESIS = 0.4  # the thesis's ~60 % lower spread across heuristics: a spread ratio of 0.4
STUDY_SEEDS = 5
STUDY_BUDGET = 10.0


def load(name: str, reports: Path = REPORTS) -> dict[str, Any] | None:
    path = reports / name / "report.json"
    return json.loads(path.read_text()) if path.exists() else None


def ratio_text(r: dict[str, Any] | None) -> str:
    """A spread ratio with its interval."""
    return estimate(r["ratio"], r["low"], r["high"]) if r else "n/a"


def difference_text(r: dict[str, Any]) -> str:
    """The difference of mean top-1 with its interval."""
    return estimate(r["mean_difference"], r["difference_low"], r["difference_high"], sign=True)


def spread_text(cell: dict[str, Any]) -> str:
    """The std across heuristics with its interval."""
    spread = cell["spread"]
    return estimate(spread["std"], spread.get("low"), spread.get("high"))


def versus(cell: dict[str, Any], baseline: str) -> str:
    """seeds | mean top-1 | spread | spread ratio | Δ mean: the columns every table shares
    (``baseline`` in the last two for a cell compared with none)."""
    r = cell.get("ratio")
    shared = f"{seeds(cell)} | {num(cell['spread']['mean'])} | {spread_text(cell)}"
    return shared + (f" | {ratio_text(r)} | {difference_text(r)}" if r else f" | {baseline} | ")


def arm(cell: dict[str, Any]) -> str | None:
    return saved_choices(cell).get("arm")


def seeds(cell: dict[str, Any]) -> int:
    return len(cell["anova"].get("common_seeds") or [])


def plain(cell: dict[str, Any]) -> bool:
    """A cell of the study proper: no low-rank pre-training, the study's budget."""
    return not cell["key"].get("lowrank.weight") and saved_budget(cell) == STUDY_BUDGET


def verdict(ratio: dict[str, Any] | None) -> str:
    """Whether a spread ratio's interval reaches the thesis's ~60 % cut (a ratio of 0.4)."""
    if not ratio or ratio.get("ratio") is None:
        return "n/a"
    low, high = ratio.get("low"), ratio.get("high")
    if low is None or high is None:
        return "no interval"
    if high <= THESIS:
        return "reproduced (at or beyond 60 %)"
    if low <= THESIS:
        return "consistent with 60 %"
    if high < 1:
        return "narrower, short of 60 %"
    return "no narrowing shown" if low < 1 else "wider"


def answer_rows(cells: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| prune ratio | arm | seeds | mean top-1 | std across heuristics [95 % CI] | σ_H "
        "| spread ratio vs baseline [95 % CI] | permutation p | Δ mean top-1 [95 % CI] "
        "| vs the thesis's 60 % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ratio in sorted({c["key"]["prune.ratio"] for c in cells}):
        for name in ARMS:
            cell = next(
                (c for c in cells if c["key"]["prune.ratio"] == ratio and arm(c) == name), None
            )
            if cell is None:
                continue
            r = cell.get("ratio")
            rows.append(
                f"| {ratio:g} | {name} | {seeds(cell)} | {num(cell['spread']['mean'])} | "
                f"{spread_text(cell)} | {num(cell['anova'].get('sd_heuristic'))} | "
                + (
                    f"{ratio_text(r)} | {num(r.get('p_permutation'), 3)} "
                    f"| {difference_text(r)} | {verdict(r)} |"
                    if r
                    else "(the baseline) | | | |"
                )
            )
    return rows


def without_rows(cells: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| prune ratio | arm | all 9 | without random | without the baseline's worst (which) |",
        "|---|---|---|---|---|",
    ]
    for cell in cells:
        r = cell.get("ratio")
        if not r:
            continue
        rand = cell.get("without", {}).get("random")
        rows.append(
            f"| {cell['key']['prune.ratio']:g} | {arm(cell)} | {ratio_text(r)} | "
            f"{ratio_text(rand)} | {worst_text(cell)} |"
        )
    return rows


def worst_text(cell: dict[str, Any]) -> str:
    """The spread ratio without the baseline's worst heuristic, and which: ``0.69 [...] (fpgm)``."""
    worst = cell.get("worst")
    bad = cell.get("without", {}).get(worst) if worst else None
    return f"{ratio_text(bad)} ({worst})" if bad else "n/a"


def heuristic_rows(cells: list[dict[str, Any]]) -> list[str]:
    names = sorted({h["heuristic"] for c in cells for h in c["heuristics"]})
    header = "| prune ratio | arm | " + " | ".join(names) + " |"
    rows = [header, "|---|---|" + "---|" * len(names)]
    for cell in sorted(cells, key=lambda c: (c["key"]["prune.ratio"], ARMS.index(arm(c)))):
        top1 = {h["heuristic"]: h["top1_mean"] for h in cell["heuristics"]}
        rows.append(
            f"| {cell['key']['prune.ratio']:g} | {arm(cell)} | "
            + " | ".join(num(top1.get(n), 1) for n in names)
            + " |"
        )
    return rows


def budget_rows(cells: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| epochs after scoring | arm | seeds | mean top-1 | std across heuristics [95 % CI] "
        "| spread ratio vs baseline [95 % CI] | Δ mean top-1 [95 % CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    mine = [
        c for c in cells if c["key"]["prune.ratio"] == 0.5 and not c["key"].get("lowrank.weight")
    ]
    mine = [c for c in mine if arm(c) in ("baseline", "span")]
    for cell in sorted(mine, key=lambda c: (saved_budget(c) or 0, ARMS.index(arm(c)))):
        budget = num(saved_budget(cell), 0)
        rows.append(f"| {budget} | {arm(cell)} | {versus(cell, '(the baseline)')} |")
    return rows


def ablation_rows(cells: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| arm | low-rank weight | seeds | mean top-1 | std across heuristics [95 % CI] "
        "| spread ratio vs its baseline [95 % CI] | Δ mean top-1 [95 % CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    mine = [c for c in cells if c["key"]["prune.ratio"] == 0.5 and saved_budget(c) == STUDY_BUDGET]
    for cell in sorted(mine, key=lambda c: (c["key"].get("lowrank.weight", 0), str(arm(c)))):
        weight = cell["key"].get("lowrank.weight", 0)
        rows.append(f"| {arm(cell)} | {weight:g} | {versus(cell, '(a baseline)')} |")
    return rows


def tuning_rows() -> list[str]:
    heuristics = ["l1", "random", "apoz"]
    rows = [
        "| arm | trial | " + " / ".join(heuristics) + " (val top-1 %) | mean − std |",
        "|---|---|---|---|",
    ]
    for name in ARMS:
        for t in study_arms.scored_trials(name, heuristics):
            scores = " / ".join(f"{t['top1'][h]:.1f}" for h in heuristics)
            rows.append(f"| {name} | {t['trial']} | {scores} | {t['objective']:.2f} |")
    return rows


def best_arm(cells: list[dict[str, Any]]) -> str | None:
    """The relocation arm with the lowest mean spread ratio over the prune ratios it has."""
    ratios: dict[str, list[float]] = {}
    for cell in cells:
        r = cell.get("ratio")
        if r and r.get("ratio") is not None and arm(cell) != "baseline":
            ratios.setdefault(str(arm(cell)), []).append(r["ratio"])
    return min(ratios, key=lambda a: sum(ratios[a]) / len(ratios[a])) if ratios else None


def headline(cells: list[dict[str, Any]], best: str) -> str:
    """The answer in a few sentences: Yes where the best arm's spread ratio is at most the
    thesis's 0.4 with an interval below 1 at every prune ratio and no demonstrable loss of mean
    top-1, No where it narrows the spread at no ratio, Partly otherwise; "Not decided yet" while a
    prune ratio of the study lacks its seeds. Cells without an interval (one seed) are not
    counted."""
    mine = sorted(
        (c for c in cells if arm(c) == best and c.get("ratio")),
        key=lambda c: c["key"]["prune.ratio"],
    )
    decided = [c for c in mine if c["ratio"].get("high") is not None]
    narrower = [c for c in decided if c["ratio"]["high"] < 1]
    thesis = [c for c in narrower if c["ratio"]["ratio"] <= THESIS]
    losing = [c for c in decided if c["ratio"]["difference_high"] < 0]
    gaining = [c for c in decided if c["ratio"]["difference_low"] > 0]

    def robust(c: dict[str, Any]) -> bool:  # still narrower without the baseline's worst
        worst = c.get("without", {}).get(c.get("worst") or "")
        return bool(worst and worst.get("high") is not None and worst["high"] < 1)

    def at(chosen: list[dict[str, Any]]) -> str:
        return ", ".join(f"{c['key']['prune.ratio']:g}" for c in chosen) or "none"

    unfinished = [c for c in mine if seeds(c) < STUDY_SEEDS]
    complete = {c["key"]["prune.ratio"] for c in mine if seeds(c) >= STUDY_SEEDS}
    if not complete >= set(STUDY_RATIOS):
        word = "Not decided yet"
    elif len(thesis) == len(decided) and not losing:
        word = "Yes"
    elif not narrower:
        word = "No"
    else:
        word = "Partly"
    kept = [c for c in narrower if robust(c)]
    text = (
        f"**{word}.** With `arm={best}` (the relocation arm with the lowest spread ratio), "
        "the spread of final top-1 across the 9 heuristics is narrower than the baseline's "
        f"(interval below 1) at prune ratio {at(narrower)} (of {at(decided)} with an interval), "
        f"at or beyond the thesis's ≈ 60 % cut (a ratio ≤ {THESIS}) at {at(thesis)}, and still "
        f"narrower without the baseline's worst heuristic at {at(kept)}. Mean top-1 is higher "
        f"(interval above 0) at {at(gaining)} and lower (interval below 0) at "
        f"{at(losing)}."
    )
    missing = [r for r in STUDY_RATIOS if r not in {c["key"]["prune.ratio"] for c in mine}]
    running = [
        f"ratio {c['key']['prune.ratio']:g} with {seeds(c)} of {STUDY_SEEDS} seeds"
        for c in unfinished
    ]
    if running or missing:
        text += " Still to come: " + "; ".join(running + [f"ratio {r:g}" for r in missing]) + "."
    return text


def readme_rows(cells: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| prune ratio | arm | seeds | spread ratio vs baseline [95 % CI] | permutation p "
        "| Δ mean top-1 [95 % CI] | without the baseline's worst heuristic |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in sorted(cells, key=lambda c: (c["key"]["prune.ratio"], ARMS.index(arm(c)))):
        r = cell.get("ratio")
        if not r:
            continue
        rows.append(
            f"| {cell['key']['prune.ratio']:g} | {arm(cell)} | {seeds(cell)} | {ratio_text(r)} "
            f"| {num(r.get('p_permutation'), 3)} | {difference_text(r)} | {worst_text(cell)} |"
        )
    return rows


def compared(cells: list[dict[str, Any]], label: Any) -> str:
    """``3 epochs 0.52 [0.31, 0.80], Δ +0.1 [...]`` for each cell with a ratio."""
    return "; ".join(
        f"{label(c)} {ratio_text(c['ratio'])} (Δ mean {difference_text(c['ratio'])})"
        for c in cells
        if c.get("ratio")
    )


def readme_answer(
    main_cells: list[dict[str, Any]],
    all_cells: list[dict[str, Any]],
    ablation: list[dict[str, Any]] | None,
    counts: dict[str, int],
) -> list[str]:
    """The README's answer section: the headline, the per-ratio table, the budget and the
    ablation in a sentence each, the figure, and how many runs it rests on."""
    best = best_arm(main_cells)
    if best is None:
        return ["The study has no finished cell to compare yet (`make study`)."]
    lines = [headline(main_cells, best), "", *readme_rows(main_cells)]
    budget = [
        c
        for c in all_cells
        if c["key"]["prune.ratio"] == 0.5
        and arm(c) == "span"
        and not c["key"].get("lowrank.weight")
    ]
    budget.sort(key=lambda c: saved_budget(c) or 0)
    if len(budget) > 1:
        lines.append("")
        lines.append(
            "Against the budget (prune ratio 0.5, `arm=span` against the baseline at each "
            "number of epochs after scoring): "
            + compared(budget, lambda c: f"{num(saved_budget(c), 0)} epochs")
            + "."
        )
    if ablation:
        parts = [
            c
            for c in ablation
            if c["key"]["prune.ratio"] == 0.5 and saved_budget(c) == STUDY_BUDGET
            and arm(c) != "baseline" and (arm(c) != "span" or c["key"].get("lowrank.weight"))
        ]  # fmt: skip

        def label(c: dict[str, Any]) -> str:
            name = ABLATION_LABELS.get(str(arm(c)), f"`arm={arm(c)}`")
            weight = c["key"].get("lowrank.weight")
            return f"{name} after low-rank pre-training (weight {weight:g})" if weight else name

        if parts:
            lines.append("")
            lines.append(
                "Ablation (prune ratio 0.5, each against the baseline with the same dense model): "
                + compared(parts, label)
                + "."
            )
    lines += [
        "",
        "![The spread across heuristics per prune ratio and arm, and against the budget]"
        "(benchmarks/study/study/answer.png)",
        "",
        f"*Spread ratio: std of final top-1 across the 9 heuristics under an arm over the "
        "baseline's, with a paired bootstrap 95 % interval over seeds (2000 resamples); from "
        f"{counts['study']} of the study's {STUDY_RUNS} runs, {counts['budget']} budget runs and "
        f"{counts['ablation']} ablation runs on the test split. Written by `make study`; every "
        "table: [benchmarks/agnosticism.md](benchmarks/agnosticism.md), the protocol: "
        "[docs/study.md](docs/study.md).*",
    ]
    return lines


def rewrite_section(path: Path, lines: list[str]) -> None:
    """Replaces what lies between BEGIN and END in ``path`` by ``lines``."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"study_tables: {path} lacks the lines {BEGIN!r} and {END!r}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "agnosticism.md")
    parser.add_argument("--reports", type=Path, default=REPORTS, help="skr-report folders' parent")
    parser.add_argument("--readme", type=Path, default=README, help="the file with the answer")
    args = parser.parse_args()
    study = load("study", args.reports)
    if study is None:
        raise SystemExit(
            "study_tables: benchmarks/study/study/report.json is missing; run the study"
        )
    cells = [c for c in study["cells"] if arm(c) in ARMS]
    main_cells = [c for c in cells if plain(c)]
    runs = sum(len(c["runs"]) for c in main_cells)
    lines = [
        "# The agnosticism study on the precise benchmark",
        "",
        f"Written {datetime.date.today().isoformat()} by `scripts/study_tables.py` (`bash "
        "scripts/study.sh`) from `skr-report` over `benchmarks/study/runs/`: "
        f"{runs} of the study's {STUDY_RUNS} runs finished (9 heuristics × 3 prune ratios × 3 "
        f"arms × {STUDY_SEEDS} seeds), final clip top-1 % on the 3360 test videos, 10 epochs after "
        "scoring. Intervals: percentile 95 % intervals of 2000 paired bootstrap resamples of the "
        "seeds; the permutation test swaps the arms' runs of each (heuristic, seed) pair. The "
        f"thesis's ≈ 60 % lower spread is a spread ratio of {THESIS}.",
        "",
        "## The answer, per prune ratio",
        "",
        *answer_rows(main_cells),
        "",
        "## Without one heuristic",
        "",
        "The spread ratio over the 8 heuristics without `random`, and without the heuristic with "
        "the baseline's lowest mean, so that no single collapse carries the result:",
        "",
        *without_rows(main_cells),
        "",
        "## Final top-1 per heuristic (mean over seeds)",
        "",
        *heuristic_rows(main_cells),
        "",
        "## The spread against the budget (prune ratio 0.5)",
        "",
        *budget_rows(cells),
    ]
    ablation = load("ablation", args.reports)
    if ablation is not None:
        lines += ["", "## Ablation (prune ratio 0.5)", "", *ablation_rows(ablation["cells"])]
    lines += [
        "",
        "## Tuning (val split)",
        "",
        "Every finished trial of `experiment=study_tune_*`, best first per arm; each arm is its "
        "best trial (`conf/arm/`).",
        "",
        *tuning_rows(),
        "",
        "![the spread per prune ratio and arm, and against the budget](study/study/answer.png)",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    extra = (
        []
        if ablation is None
        else [c for c in ablation["cells"] if not (arm(c) in ARMS and plain(c))]
    )
    counts = {
        "study": runs,
        "budget": sum(len(c["runs"]) for c in cells if saved_budget(c) != STUDY_BUDGET),
        "ablation": sum(len(c["runs"]) for c in extra),
    }
    answer = readme_answer(
        main_cells, cells, None if ablation is None else ablation["cells"], counts
    )
    rewrite_section(args.readme, answer)
    print(f"wrote the answer in {args.readme}")


if __name__ == "__main__":
    main()
