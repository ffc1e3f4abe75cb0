"""How much of a sweep's job slots do the runs' phases fill? The quickstart end to end, and a
20-run slice of the study.

Runs the study the README starts with, as a user would on a fresh checkout: a new cache
folder (so the built-in data set is generated and the shared dense model trained inside the
timed run) and a new sweep folder. Reports the wall time, the CPU time of all its processes,
the number of runs, and how much of the job slots (wall x the launcher's parallel jobs) the runs'
phases (training, scoring, evaluation: each metrics.json's ``timings_s``) fill, and where the
rest goes: inside the runs (``job_s``: preparing the data, starting wandb, timing latency, the
rest of the run) and outside them (process start-up, Hydra, the launcher). Where
``conf/experiment/quickstart.yaml`` does not exist, times ``skr-run debug=smoke`` instead (and
says so). Then it times 20 runs of ``experiment=study`` (prune ratio 0.5, one seed, the baseline
and span arms x 10 heuristics) in a new sweep folder with the project's cache, the way the
study's jobs find it: the seed's dense model is trained first, untimed, where the cache does not
hold it (``--slice-seed`` picks the seed, so that one already in the cache can be used;
``--quickstart-only`` leaves the slice out). Writes benchmarks/quickstart.md and
benchmarks/quickstart.json.

    .venv/bin/python scripts/bench_quickstart.py [--slice-seed N] [--quickstart-only]
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
HEURISTICS = "l1,l2,taylor,taylor_weight,apoz,bn_scale,fpgm,svd_entropy,random,mean_activation"
SLICE = ["experiment=study", "prune.ratio=0.5", "arm=baseline,span", f"heuristic={HEURISTICS}"]
BASE = [sys.executable, "-m", "skr_cli"]


def quickstart(folder: Path) -> tuple[list[str], str, int, dict[str, str]]:
    """The quickstart's command line, its label, its parallel jobs and its environment."""
    env = {"SKR_CACHE_DIR": str(folder / "cache")}  # fresh: data and dense model in the run
    if QUICKSTART.exists():
        jobs = OmegaConf.load(QUICKSTART).hydra.launcher.get("n_jobs", 1)
        args = ["-m", "experiment=quickstart", f"hydra.sweep.dir={folder / 'sweep'}"]
        return BASE + args, "skr-run -m experiment=quickstart", jobs, env
    args = ["debug=smoke", f"hydra.run.dir={folder / 'run'}"]
    return BASE + args, "skr-run debug=smoke", 1, env


def study_slice(seed: int):
    """20 runs of the study's config with ``seed`` in a new sweep folder, with the project's
    cache (a builder for :func:`measure`)."""
    overrides = [*SLICE[:2], f"seed={seed}", *SLICE[2:]]

    def build(folder: Path) -> tuple[list[str], str, int, dict[str, str]]:
        warm = [*BASE, *[a for a in overrides if not a.startswith(("arm=", "heuristic="))]]
        warm += ["agreement.heuristics=[l1]", "agreement.only=true"]
        warm += [f"hydra.run.dir={folder / 'warm'}"]
        subprocess.run(warm, cwd=ROOT, check=True, capture_output=True)  # the dense model
        args = ["-m", *overrides, f"hydra.sweep.dir={folder / 'sweep'}"]
        return BASE + args, "skr-run -m " + " ".join(overrides), 2, {}

    return build


def measure(build, name: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        argv, label, jobs, extra = build(folder)
        env = os.environ | {"WANDB_SILENT": "true"} | extra
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.exit(f"{label} failed:\n{done.stderr[-3000:]}")
        metrics = [json.loads(p.read_text()) for p in (folder / "sweep").rglob("metrics.json")]
        metrics = metrics or [json.loads(p.read_text()) for p in folder.rglob("metrics.json")]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # a job that waits for another one to train the shared dense model does so in its pretrain
    # phase: that wait is an idle slot, not work
    waited = sum((m.get("dense_cache") or {}).get("waited_seconds") or 0.0 for m in metrics)
    phases = sum(sum(m.get("timings_s", {}).values()) for m in metrics) - waited
    job = {key: sum(m.get("job_s", {}).get(key, 0.0) for m in metrics) for key in JOB_PARTS}
    runs_s = sum(m.get("job_s", {}).get("run", 0.0) for m in metrics)
    slots = wall * jobs
    parts = {
        "phases": phases,
        "waiting for the dense model": waited,
        **job,
        "rest of the runs": runs_s - phases - waited - sum(job.values()),
        "outside the runs": slots - runs_s,
    }
    return {
        "label": name,
        "command": label,
        "runs": len(metrics),
        "jobs": jobs,
        "wall_s": wall,
        "cpu_s": cpu,
        "phases_s": phases,
        "busy": phases / slots,
        "shares": {name: seconds / slots for name, seconds in parts.items()},
    }


JOB_PARTS = ("setup", "tracking", "latency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quickstart.md"))
    parser.add_argument("--slice-seed", type=int, default=0, help="the study slice's seed")
    parser.add_argument("--quickstart-only", action="store_true", help="leave the slice out")
    args = parser.parse_args()
    records = [measure(quickstart, "quickstart")]
    if not args.quickstart_only:
        records.append(measure(study_slice(args.slice_seed), "study slice"))
    names = list(records[0]["shares"])
    lines = [
        "# End to end: how much of a sweep's job slots the runs' phases fill",
        "",
        "The quickstart on a fresh cache (data set generated, dense model trained in the timed "
        "run)"
        + (
            ", and a 20-run slice of the study's config with the project's cache (its "
            "dense model already trained, as for the study's jobs)"
            if not args.quickstart_only
            else ""
        )
        + ". Written by `scripts/bench_quickstart.py"
        + (" --quickstart-only" if args.quickstart_only else f" --slice-seed {args.slice_seed}")
        + "`.",
        "",
        "| command | runs | jobs | wall s | CPU s (all processes) | wall s per run "
        "| phases / (wall x jobs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| `{r['command']}` | {r['runs']} | {r['jobs']} | {r['wall_s']:.0f} | "
            f"{r['cpu_s']:.0f} | {r['wall_s'] / max(r['runs'], 1):.1f} | {r['busy']:.2f} |"
        )
    lines += [
        "",
        "Where the job slots' time goes (shares of wall x jobs): the phases (training, scoring, "
        "evaluation), inside the runs but outside their phases (`job_s` of metrics.json: "
        "preparing the data, starting the wandb run, timing latency, the rest of the run; a job "
        "waiting for the other one to train the shared dense model), and "
        "outside the runs (process start-up, imports, Hydra's composition, the launcher, and a "
        "slot left idle at the sweep's end).",
        "",
        "| command | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for r in records:
        shares = " | ".join(f"{100 * r['shares'][n]:.1f} %" for n in names)
        lines.append(f"| {r['label']} | {shares} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    found = []
    for r in records:
        text = (
            f"`{r['command']}` ({r['runs']} runs) took {r['wall_s']:.0f} s wall, "
            f"{r['cpu_s']:.0f} s CPU; the runs' phases fill {100 * r['busy']:.0f} % of the "
            f"{r['jobs']} job slots"
        )
        found.append({"text": text, "value": r["busy"]})
    write_headlines(args.out, found, {"records": records})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
