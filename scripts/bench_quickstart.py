"""How long does the quickstart study take end to end? ``skr-run -m experiment=quickstart``.

Runs the study the README starts with, as a user would on a fresh checkout: a new cache
folder (so the built-in data set is generated and the shared dense model trained inside the
timed run) and a new sweep folder. Reports the wall time, the CPU time of all its processes,
the number of runs, and how much of the wall time the runs' own phases (training, scoring,
evaluation, from each metrics.json's ``timings_s``) fill, against the job slots the launcher
has: the rest is start-up, data generation and orchestration. Where ``conf/experiment/
quickstart.yaml`` does not exist, times ``skr-run debug=smoke`` instead (and says so).
Writes benchmarks/quickstart.md and benchmarks/quickstart.json.

    .venv/bin/python scripts/bench_quickstart.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from summarise_bench import write_headlines

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "conf" / "experiment" / "quickstart.yaml"


def command(folder: Path) -> tuple[list[str], str, int]:
    """The skr-run command line, its label and the jobs it runs at once."""
    base = [sys.executable, "-m", "skr_cli"]
    if QUICKSTART.exists():
        jobs = OmegaConf.load(QUICKSTART).hydra.launcher.get("n_jobs", 1)
        args = ["-m", "experiment=quickstart", f"hydra.sweep.dir={folder / 'sweep'}"]
        return base + args, "skr-run -m experiment=quickstart", jobs
    args = ["debug=smoke", f"hydra.run.dir={folder / 'run'}"]
    return base + args, "skr-run debug=smoke", 1


def measure() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        argv, label, jobs = command(folder)
        env = os.environ | {"SKR_CACHE_DIR": str(folder / "cache"), "WANDB_SILENT": "true"}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.exit(f"{label} failed:\n{done.stderr[-3000:]}")
        metrics = [json.loads(p.read_text()) for p in folder.rglob("metrics.json")]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    phases = sum(sum(m.get("timings_s", {}).values()) for m in metrics)
    return {
        "command": label,
        "runs": len(metrics),
        "jobs": jobs,
        "wall_s": wall,
        "cpu_s": cpu,
        "phases_s": phases,
        "busy": phases / (wall * jobs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quickstart.md"))
    args = parser.parse_args()
    r = measure()
    lines = [
        "# End to end: the quickstart study",
        "",
        f"`{r['command']}` on a fresh cache (data set generated, dense model trained in the "
        f"timed run), {r['jobs']} job(s) at a time. Written by `scripts/bench_quickstart.py`.",
        "",
        "| runs | wall s | CPU s (all processes) | wall s per run | run phases / (wall x jobs) |",
        "|---|---|---|---|---|",
        f"| {r['runs']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
        f"{r['wall_s'] / max(r['runs'], 1):.1f} | {r['busy']:.2f} |",
        "",
        "The last column is the share of the job slots' time spent inside the runs' phases "
        "(training, scoring, evaluation); the rest is process start-up, data generation and "
        "orchestration.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    text = (
        f"`{r['command']}` ({r['runs']} runs, fresh cache) took {r['wall_s']:.0f} s wall, "
        f"{r['cpu_s']:.0f} s CPU; the runs' phases fill {100 * r['busy']:.0f} % of the "
        f"{r['jobs']} job slots"
    )
    write_headlines(args.out, [{"text": text, "value": r["busy"]}], r)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
