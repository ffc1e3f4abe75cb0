"""docs/relocation.md's relocation table from a folder of skr-run outputs (with metrics.json).

Runs are grouped by relocation variant (baseline, penalty, + distillation, + compensation, read
from each run's ``relocation`` block) and heuristic. Per variant: the loss jump at removal and the
final clip top-1 of every heuristic, the spread of the final top-1 across heuristics (standard
deviation and range), that spread over the baseline's, and whether every heuristic's loss jump is
at most a tenth of the baseline's.

    .venv/bin/python scripts/relocation_table.py RUNS_DIR [--heuristics l1 taylor random]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def variant(metrics: dict) -> str:
    """The relocation variant of one run, from its settings."""
    settings = metrics["relocation"]
    if settings.get("compensate") and settings["active"]:
        return "+ compensation"
    if settings.get("compensate"):
        return "compensation only"
    if not settings["active"]:
        return "baseline"
    return "+ distillation" if settings["distill"]["weight"] > 0 else "penalty only"


def collect(root: Path) -> dict[str, dict[str, dict]]:
    """variant → heuristic → metrics, from every metrics.json under ``root``."""
    table: dict[str, dict[str, dict]] = {}
    for path in sorted(root.rglob("metrics.json")):
        metrics = json.loads(path.read_text())
        if "relocation" in metrics:
            table.setdefault(variant(metrics), {})[metrics["heuristic"]] = metrics
    return table


def spread(values: list[float]) -> tuple[float, float]:
    """Standard deviation and range of the per-heuristic values."""
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return std, max(values) - min(values)


def rows(table: dict[str, dict[str, dict]], heuristics: list[str]) -> list[str]:
    order = ["baseline", "penalty only", "+ distillation", "+ compensation", "compensation only"]
    head = " | ".join(f"Δloss {h}" for h in heuristics) + " | "
    head += " | ".join(f"top-1 {h}" for h in heuristics)
    lines = [
        f"| variant | {head} | mean top-1 | std / range across heuristics | std ÷ baseline "
        "| Δloss ≤ baseline/10 |",
        "|---" * (2 * len(heuristics) + 5) + "|",
    ]
    base = table.get("baseline", {})
    base_std = spread([base[h]["final"]["top1"] for h in heuristics if h in base] or [0.0])[0]
    for name in [n for n in order if n in table]:
        runs = table[name]
        jumps = [runs[h]["delta_loss_remove"] if h in runs else None for h in heuristics]
        top1 = [runs[h]["final"]["top1"] if h in runs else None for h in heuristics]
        done = [t for t in top1 if t is not None]
        std, width = spread(done)
        ratio = f"{std / base_std:.2f}" if base_std > 0 and name != "baseline" else "1"
        tenth = all(
            j is not None and h in base and abs(j) <= base[h]["delta_loss_remove"] / 10
            for h, j in zip(heuristics, jumps, strict=True)
        )
        cells = [f"{j:+.3f}" if j is not None else "missing" for j in jumps]
        cells += [f"{t:.1f}" if t is not None else "missing" for t in top1]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {statistics.mean(done):.1f} | "
            f"{std:.2f} / {width:.1f} | {ratio} | {'-' if name == 'baseline' else tenth} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a folder holding the runs' output folders")
    parser.add_argument("--heuristics", nargs="+", default=["l1", "taylor", "random"])
    args = parser.parse_args()
    print("\n".join(rows(collect(args.root), args.heuristics)))


if __name__ == "__main__":
    main()
