"""Assembles benchmarks/summary.md from the figures each ``scripts/bench_*.py`` wrote.

Every benchmark writes ``benchmarks/<name>.md`` (its tables) and ``benchmarks/<name>.json``
(its headline figures, through :func:`write_headlines`). This script reads the JSON files and
writes one page: the machine, the date, each benchmark's headline ratios with a link to its
table, and whether GPU figures were measured. ``make bench`` runs it after the benchmarks.

    .venv/bin/python scripts/summarise_bench.py [--dir benchmarks]
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

# The order of the sections in the summary (other benchmarks follow, by name).
ORDER = ("tests", "loop", "train", "data", "prune", "models", "scaling", "quickstart")


def machine() -> dict[str, Any]:
    """The CPU model, its cores, the torch version and the GPU (None when there is none)."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": cores, "torch": torch.__version__, "gpu": gpu}


def write_headlines(
    markdown: Path, headlines: list[dict[str, Any]], details: dict[str, Any] | None = None
) -> None:
    """Writes ``markdown`` with the suffix .json: the machine and the headline figures.

    Args:
        markdown: the benchmark's table, e.g. benchmarks/loop.md.
        headlines: each ``{"text": one sentence, "value": the ratio}``; ``"gpu": True`` marks
            a figure measured on a GPU.
        details: anything else worth keeping beside them (the raw medians).
    """
    record = {
        "table": markdown.name,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "headlines": headlines,
        "details": details or {},
    }
    markdown.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")


def summary(folder: Path) -> list[str]:
    """The lines of summary.md from every ``*.json`` in ``folder`` that :func:`write_headlines`
    wrote (other JSON there, such as a study's tables, is left out)."""
    found = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
    records = {name: r for name, r in found.items() if isinstance(r, dict) and "headlines" in r}
    names = [n for n in ORDER if n in records] + sorted(set(records) - set(ORDER))
    host = machine()
    lines = [
        "# skr benchmarks: summary",
        "",
        f"Written {datetime.date.today().isoformat()} by `make bench` on: {host['cpu']}, "
        f"{host['cores']} cores, torch {host['torch']}, "
        f"GPU: {host['gpu'] or 'none'}. Each figure is a ratio measured side by side in one "
        "process (CPU time on one torch thread unless the table says otherwise); the tables "
        "give the conditions.",
        "",
    ]
    gpu_figures = []
    for name in names:
        record = records[name]
        lines += [f"## {name}: [{record['table']}]({record['table']})", ""]
        measured = record["machine"]
        if measured["cpu"] != host["cpu"] or measured["torch"] != host["torch"]:
            note = f"measured {record['date']} on {measured['cpu']}, torch {measured['torch']}"
            lines += [f"({note})"]
        for headline in record["headlines"]:
            lines.append(f"- {headline['text']}")
            if headline.get("gpu"):
                gpu_figures.append(f"- {name}: {headline['text']} ({measured['gpu']})")
        lines.append("")
    lines += ["## GPU", ""]
    if gpu_figures:
        lines += gpu_figures
    else:
        lines.append(
            "No GPU was available for these figures. On a machine with a CUDA device "
            "`make bench` adds them: I3D and I3D-R50 training clips/s in fp32 and bf16 "
            "(`bench_models.py`), dense against pruned latency at ratio 0.5 "
            "(`bench_prune.py`), and the loader's wait share and GPU utilisation while "
            "training (`bench_feed.py`)."
        )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("benchmarks"))
    args = parser.parse_args()
    lines = summary(args.dir)
    (args.dir / "summary.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
