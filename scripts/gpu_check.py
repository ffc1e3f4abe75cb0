"""skr's GPU path in one go: training speed, pruned speed, feeding, an end-to-end run.

On one CUDA device, in a few minutes (sized to finish within 8), it measures:

1. Training: the full-width Inception I3D (``conf/model/i3d.yaml``, 400 classes) trained with
   AdamW (``conf/train/default.yaml``'s optimiser) on 16x112² clips (batch 32) and 32x224²
   clips (batch 8), in fp32 and with bf16 autocast (``train.precision``), with
   ``channels_last_3d`` on and off (``train.channels_last``): 3 warm-up steps, then the clips/s
   of 10 steps between ``torch.cuda.synchronize`` calls, and the peak GPU memory.
2. Pruned speed: dense against physically pruned I3D at ``prune.ratio=0.5`` (a seeded random
   plan, as ``bench_prune.py``), with ``prune.round_to`` 1 and 8, as trained and deployed
   (``skr_cli.engine.deploy.deployed``): batch-1 latency and batch-32 throughput (fp32 and bf16
   autocast) at 16x112², each against the dense network in the same form.
3. Feeding: skr's training loader (``pipeline.loaders.train_loader`` over ``Ucf101Source``'s
   clips, on generated files in UCF101's format) at 1, 2, 4 and 8 DataLoader workers, against
   what training consumes (part 1): workers needed = ceil(training clips/s / one worker's).
4. End to end: ``skr-run debug=smoke device=cuda`` and ``device=cpu`` in subprocesses (in a
   temporary folder, ``logger.mode=disabled``, ``dense_cache=false``), their key metrics side
   by side.

Writes ``gpu.md`` and ``gpu.json`` into ``--out`` (default benchmarks/). A part that fails is
reported in its section and the script exits 1 after writing both files. ``--dry`` runs every
code path on the CPU at tiny sizes (I3D at width 1/16, 8x32² clips, 2 steps, a tiny loader
run, both smoke runs on the CPU) and marks every figure as a dry run. Without a CUDA device
and without ``--dry`` it says so in one line and exits 2.

    bash scripts/gpu_check.sh [--dry] [--out DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from bench_data import CLASSES, write_dataset
from bench_prune import pruned_copy
from skr_cli.configs import config_dir
from skr_cli.engine.deploy import deployed
from skr_cli.engine.evaluate import latency_ms
from skr_cli.engine.train import autocast
from skr_cli.heuristics import RandomScores
from skr_cli.pipeline.loaders import train_loader
from skr_cli.pruning.count import count_macs, count_params
from skr_cli.pruning.layers import prunable_layers
from summarise_bench import write_headlines

ROOT = Path(__file__).resolve().parents[1]
CONF = Path(config_dir())
RATIO, ROUND_TOS = 0.5, (1, 8)
PRECISIONS = ("fp32", "bf16")
SMOKE_TIMEOUT_S = 300
Shape = tuple[int, int, int]  # clip (T, H, W)


@dataclass(frozen=True)
class Sizes:
    """What one check measures: the real sizes on the GPU, or the dry run's on the CPU."""

    device: str
    width: float  # I3D's width multiplier
    classes: int
    train: tuple[tuple[Shape, int], ...]  # (clip, batch) of each training row
    warmup: int  # untimed training steps
    steps: int  # timed training steps
    prune_clip: Shape
    prune_batch: int  # the throughput batch of the pruned-speed table
    runs: int  # timed forward passes per model
    videos: int  # generated files for the loader
    workers: tuple[int, ...]
    batches_per_worker: int  # batches each worker loads in a timed epoch
    smoke_devices: tuple[str, str] = field(default=("cuda", "cpu"))


REAL = Sizes(
    device="cuda",
    width=1.0,
    classes=400,
    train=(((16, 112, 112), 32), ((32, 224, 224), 8)),
    warmup=3,
    steps=10,
    prune_clip=(16, 112, 112),
    prune_batch=32,
    runs=20,
    videos=16,
    workers=(1, 2, 4, 8),
    batches_per_worker=10,
)
DRY = Sizes(
    device="cpu",
    width=0.0625,
    classes=10,
    train=(((8, 32, 32), 2),),
    warmup=1,
    steps=2,
    prune_clip=(8, 32, 32),
    prune_batch=2,
    runs=2,
    videos=4,
    workers=(1, 2),
    batches_per_worker=2,
    smoke_devices=("cpu", "cpu"),
)


@dataclass
class Section:
    """One part of the report: its markdown lines, headline figures and raw figures."""

    title: str
    lines: list[str]
    headlines: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    failed: bool = False


def clip_text(shape: Shape) -> str:
    return f"{shape[0]}x{shape[1]}²" if shape[1] == shape[2] else "x".join(map(str, shape))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device) -> None:
    """Frees what the last measurement left (its model and optimiser, or an out-of-memory
    error's frames) before the next one."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def build_i3d(sizes: Sizes) -> nn.Module:
    """The Inception I3D of ``conf/model/i3d.yaml`` at ``sizes.width`` with ``sizes.classes``."""
    cfg = OmegaConf.load(CONF / "model" / "i3d.yaml")
    cfg.num_classes, cfg.width = sizes.classes, sizes.width
    return instantiate(cfg)


# ------------------------------------------------------------------------------- training


def training_rate(sizes: Sizes, clip: Shape, batch: int, precision: str, layout: bool) -> dict:
    """Clips/s and peak memory of AdamW steps on random clips (B, 3, T, H, W); ``layout``:
    model and clips in ``channels_last_3d``, as ``train.channels_last=true`` trains."""
    device = torch.device(sizes.device)
    memory_format = torch.channels_last_3d if layout else torch.contiguous_format
    torch.manual_seed(0)
    model = build_i3d(sizes).to(device).to(memory_format=memory_format).train()
    optimizer = instantiate(OmegaConf.load(CONF / "train" / "default.yaml").optimizer)(
        model.parameters()
    )
    clips = torch.randn(batch, 3, *clip, device=device).contiguous(memory_format=memory_format)
    labels = torch.randint(sizes.classes, (batch,), device=device)

    def step() -> None:
        with autocast(device, precision):  # skr's own: bf16 on a CUDA device, else fp32
            loss = F.cross_entropy(model(clips), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        for _ in range(sizes.warmup):  # kernel selection, allocator
            step()
        synchronize(device)
        start = time.perf_counter()
        for _ in range(sizes.steps):
            step()
        synchronize(device)
        seconds = time.perf_counter() - start
    except torch.OutOfMemoryError:
        return {"clips_per_s": None, "peak_gib": None, "error": "out of memory"}
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"clips_per_s": batch * sizes.steps / seconds, "peak_gib": peak}


def training(sizes: Sizes, dry: bool) -> Section:
    rows = []
    for clip, batch in sizes.train:
        for precision in PRECISIONS:
            for layout in (False, True):
                found = training_rate(sizes, clip, batch, precision, layout)
                release(torch.device(sizes.device))
                setting = {"precision": precision, "channels_last": layout}
                rows.append({"clip": clip, "batch": batch} | setting | found)
                print(f"training {rows[-1]}", flush=True)
    note = " Dry run on the CPU: bf16 autocast is off there (skr trains in fp32 on a CPU)."
    lines = [
        f"Inception I3D, width {sizes.width}, {sizes.classes} classes, AdamW; warm-up steps: "
        f"{sizes.warmup}, then {sizes.steps} timed steps between synchronisations. `× base`: "
        "over fp32 in the contiguous layout at the same clip and batch." + (note if dry else ""),
        "",
        "| clip | batch | precision | channels_last_3d | clips/s | × base | peak GiB |",
        "|---|---|---|---|---|---|---|",
        *(training_row(row, base_rate(rows, row["clip"])) for row in rows),
    ]
    headlines = [training_headline(sizes, rows, clip, batch) for clip, batch in sizes.train]
    found = [headline for headline in headlines if headline is not None]
    return Section("Training throughput", lines, found, {"rows": rows})


def base_rate(rows: list[dict], clip: Shape) -> float | None:
    """Clips/s in fp32 and the contiguous layout at ``clip`` (None where it did not run)."""
    (base,) = [
        row
        for row in rows
        if row["clip"] == clip and row["precision"] == "fp32" and not row["channels_last"]
    ]
    return base["clips_per_s"]


def training_row(row: dict, base: float | None) -> str:
    rate, peak = row["clips_per_s"], row["peak_gib"]
    return (
        f"| {clip_text(row['clip'])} | {row['batch']} | {row['precision']} | "
        f"{'on' if row['channels_last'] else 'off'} | "
        f"{f'{rate:.1f}' if rate else row.get('error', 'n/a')} | "
        f"{f'{rate / base:.2f}' if rate and base else 'n/a'} | "
        f"{f'{peak:.1f}' if peak is not None else 'n/a'} |"
    )


def training_headline(sizes: Sizes, rows: list[dict], clip: Shape, batch: int) -> dict | None:
    """The fastest setting at ``clip`` against fp32 in the contiguous layout."""
    base = base_rate(rows, clip)
    measured = [row for row in rows if row["clip"] == clip and row["clips_per_s"]]
    if not measured or not base:
        return None
    best = max(measured, key=lambda row: row["clips_per_s"])
    text = (
        f"I3D (width {sizes.width:g}) training, {clip_text(clip)} batch {batch}: "
        f"{best['clips_per_s']:.0f} clips/s with {best['precision']}"
        f"{' + channels_last_3d' if best['channels_last'] else ''} "
        f"(x{best['clips_per_s'] / base:.2f} fp32 contiguous)"
    )
    return {"text": text, "value": best["clips_per_s"]}


# --------------------------------------------------------------------------- pruned speed


FORMS = ("as trained", "deployed")
COLUMNS = ("batch 1", "fp32", "bf16")  # batch-1 latency; throughput at sizes.prune_batch


def pruned_networks(sizes: Sizes) -> tuple[dict[str, nn.Module], dict[str, int], dict[str, int]]:
    """The dense I3D and its copies pruned at ``RATIO`` with each ``ROUND_TOS`` (on the CPU),
    with their MACs per ``sizes.prune_clip`` clip and their parameters."""
    torch.manual_seed(0)
    dense = build_i3d(sizes).eval()
    example = torch.zeros(1, 3, *sizes.prune_clip)
    scores = RandomScores(seed=0).score(dense, prunable_layers(dense), [])
    networks = {"dense": dense} | {
        f"pruned, round_to={r}": pruned_copy(dense, scores, RATIO, r, example) for r in ROUND_TOS
    }
    macs = {name: count_macs(model, example) for name, model in networks.items()}
    params = {name: count_params(model) for name, model in networks.items()}
    return networks, macs, params


def pruned_speed(sizes: Sizes) -> Section:
    """Dense against pruned I3D, as trained and deployed, timed in turns on the device: median
    ms per forward pass at batch 1 and at ``sizes.prune_batch`` in fp32 and bf16 autocast."""
    device = torch.device(sizes.device)
    networks, macs, params = pruned_networks(sizes)
    models = {}
    for name, model in networks.items():
        models[f"{name} | as trained"] = model.to(device).eval()
        models[f"{name} | deployed"] = deployed(model).to(device)
    one = torch.randn(1, 3, *sizes.prune_clip, device=device)
    many = torch.randn(sizes.prune_batch, 3, *sizes.prune_clip, device=device)
    ms = {"batch 1": latency_ms(models, one, sizes.runs)}
    ms["fp32"] = latency_ms(models, many, sizes.runs)
    with autocast(device, "bf16"):
        ms["bf16"] = latency_ms(models, many, sizes.runs)
    rows = []
    for key in models:
        name, form = key.split(" | ")
        row = {"network": name, "form": form, "macs": macs[name], "params": params[name]}
        for column, timings in ms.items():
            speedup = timings[f"dense | {form}"] / timings[key]
            row[column] = {"ms": timings[key], "speedup": speedup}
        rows.append(row)
    lines = [
        f"Inception I3D, width {sizes.width}, clip {clip_text(sizes.prune_clip)}, "
        f"prune.ratio={RATIO} (a seeded random plan, every prunable layer), median of "
        f"{sizes.runs} forward passes per model, the models in turns. Speedups are over the dense "
        f"network in the same form; throughput at batch {sizes.prune_batch}.",
        "",
        "| network | form | params (M) | MACs ÷ | batch-1 ms | speedup | fp32 clips/s | speedup "
        "| bf16 clips/s | speedup |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(pruned_line(row, macs["dense"], sizes.prune_batch) for row in rows),
    ]
    headlines = [pruned_headline(rows, form, macs["dense"], sizes) for form in FORMS]
    return Section("Dense against pruned", lines, headlines, {"rows": rows})


def pruned_line(row: dict, dense_macs: int, batch: int) -> str:
    cells = [row["network"], row["form"], f"{row['params'] / 1e6:.2f}"]
    cells.append(f"{dense_macs / row['macs']:.2f}")
    for column in COLUMNS:
        ms = row[column]["ms"]
        cells.append(f"{ms:.2f}" if column == "batch 1" else f"{1000 * batch / ms:.1f}")
        cells.append(f"{row[column]['speedup']:.2f}")
    return "| " + " | ".join(cells) + " |"


def pruned_headline(rows: list[dict], form: str, dense_macs: int, sizes: Sizes) -> dict:
    found = [row for row in rows if row["form"] == form and row["network"] != "dense"]
    text = f"prune.ratio={RATIO}, {form}, {clip_text(sizes.prune_clip)}, against dense: "
    text += "; ".join(
        f"{row['network'].removeprefix('pruned, ')} (MACs ÷{dense_macs / row['macs']:.2f}) "
        f"batch 1 x{row['batch 1']['speedup']:.2f}, batch {sizes.prune_batch} "
        f"fp32 x{row['fp32']['speedup']:.2f}, bf16 x{row['bf16']['speedup']:.2f}"
        for row in found
    )
    return {"text": text, "value": found[0]["batch 1"]["speedup"]}


# -------------------------------------------------------------------------------- feeding


def loader_rate(source_cfg: Any, clip: Shape, batch: int, workers: int, per_worker: int) -> float:
    """Wall-clock clips/s of skr's training loader with ``workers`` workers: one epoch to start
    the workers and read the files into the page cache, then one timed epoch of ``per_worker``
    batches per worker."""
    cfg = source_cfg.copy()
    cfg.frames, cfg.size, cfg.num_workers = clip[0], clip[1], workers
    source = instantiate(cfg)
    source.prepare()
    dataset = source.clips("train", train=True)
    # One random clip per video and epoch: repeat the files for an epoch that keeps every
    # worker busy (decoding a file again costs what decoding another would).
    wanted = per_worker * workers * batch
    dataset.samples = dataset.samples * math.ceil(wanted / len(dataset.samples))
    dataset.samples = dataset.samples[:wanted]
    # train_loader reads the data set and dataset.num_workers from a run's context.
    context = SimpleNamespace(train_set=dataset, cfg=OmegaConf.create({"dataset": cfg}))
    loader = train_loader(context, batch, seed=0)
    for _ in loader:  # warm-up epoch
        pass
    start, count = time.perf_counter(), 0
    for _, labels, _ in loader:
        count += len(labels)
    rate = count / (time.perf_counter() - start)
    del loader
    gc.collect()
    return rate


def feeding(sizes: Sizes, consumed: list[dict], folder: Path) -> Section:
    """The loader's clips/s at each of ``sizes.workers`` per training clip shape, and the
    workers each training row of ``consumed`` (see :func:`training`) needs."""
    root, lists = write_dataset(folder / "videos", sizes.videos)
    source_cfg = OmegaConf.load(CONF / "dataset" / "ucf101.yaml")
    source_cfg.root, source_cfg.splits, source_cfg.num_classes = str(root), str(lists), len(CLASSES)
    rates: dict[str, dict[int, float]] = {}
    for clip, batch in sizes.train:
        rates[clip_text(clip)] = {}
        for workers in sizes.workers:
            rate = loader_rate(source_cfg, clip, batch, workers, sizes.batches_per_worker)
            rates[clip_text(clip)][workers] = rate
            print(f"loader {clip_text(clip)} workers={workers}: {rate:.1f} clips/s", flush=True)
    needs = [workers_needed(row, rates[clip_text(row["clip"])]) for row in consumed]
    needs = [need for need in needs if need is not None]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    most = max(sizes.workers)
    lines = [
        f"skr's training loader (`train_loader` over `Ucf101Source`'s training clips, "
        f"`conf/dataset/ucf101.yaml`'s augmentation, PyAV) on {sizes.videos} generated 320x240 "
        f"MPEG-4 AVI files in UCF101's format, clips/s of wall time over an epoch of "
        f"{sizes.batches_per_worker} batches per worker after a warm-up epoch; {cores} CPU "
        "cores. Workers needed = ceil(training clips/s ÷ one worker's clips/s).",
        "",
        "| clip | batch | workers | loader clips/s | per worker |",
        "|---|---|---|---|---|",
        *(
            f"| {clip_text(clip)} | {batch} | {workers} | {rate:.1f} | {rate / workers:.1f} |"
            for clip, batch in sizes.train
            for workers, rate in rates[clip_text(clip)].items()
        ),
        "",
        f"| clip | training | consumes clips/s | workers needed | {most} workers keep up |",
        "|---|---|---|---|---|",
        *(
            f"| {clip_text(need['clip'])} | {need['setting']} | {need['consumes']:.1f} | "
            f"{need['needed']} | {'yes' if need['keeps_up'] else 'no'} |"
            for need in needs
        ),
    ]
    headlines = []
    for clip, _ in sizes.train:
        mine = [need for need in needs if need["clip"] == clip]
        if mine:
            need = max(mine, key=lambda need: need["needed"])
            text = (
                f"feeding {clip_text(clip)} training ({need['setting']}) takes {need['needed']} "
                f"loader worker(s) at {rates[clip_text(clip)][1]:.0f} clips/s each ({cores} CPU "
                "cores here)"
            )
            headlines.append({"text": text, "value": need["needed"]})
    return Section("Loader against consumption", lines, headlines, {"rates": rates, "needs": needs})


def workers_needed(row: dict, rates: dict[int, float]) -> dict | None:
    """ceil(the training row's clips/s ÷ one worker's clips/s), and whether the most workers
    measured keep up; None where a figure is missing."""
    consumes = row["clips_per_s"]
    if not consumes or 1 not in rates:
        return None
    setting = f"{row['precision']}{', channels_last_3d' if row['channels_last'] else ''}"
    return {
        "clip": row["clip"],
        "setting": setting,
        "consumes": consumes,
        "needed": math.ceil(consumes / rates[1]),
        "keeps_up": rates[max(rates)] >= consumes,
    }


# -------------------------------------------------------------------------------- smoke


# (block, key) of metrics.json shown side by side; block None: a top-level key.
SMOKE_KEYS = (
    ("dense", "top1"),
    ("dense", "loss"),
    ("pruned", "top1"),
    ("final", "top1"),
    ("final", "top5"),
    ("final", "video_top1"),
    ("final", "loss"),
    ("dense", "params"),
    ("final", "params"),
    ("final", "macs"),
    ("dense", "latency_ms"),
    ("final", "latency_ms"),
    (None, "speedup"),
    (None, "delta_loss_remove"),
    ("timings_s", "pretrain"),
    ("timings_s", "finetune"),
    ("timings_s", "evaluate_final"),
)
SMOKE = ("debug=smoke", "logger.mode=disabled", "dense_cache=false")


def prepare_smoke_data(folder: Path) -> None:
    """Generates the smoke run's data set into ``folder/cache`` beforehand, so that neither
    run's wall time includes it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[*SMOKE, f"cache_dir={folder / 'cache'}"])
    instantiate(cfg.dataset).prepare()


def smoke_run(device: str, folder: Path, name: str) -> dict:
    """``skr-run debug=smoke device=...`` in a subprocess; its metrics.json and wall time, or
    the last lines it wrote to stderr when it failed."""
    env = dict(os.environ, SKR_CACHE_DIR=str(folder / "cache"), WANDB_MODE="disabled")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    run = folder / name
    args = [sys.executable, "-m", "skr_cli", *SMOKE, f"device={device}", f"hydra.run.dir={run}"]
    start = time.perf_counter()
    try:
        result = subprocess.run(
            args, capture_output=True, text=True, cwd=folder, env=env, timeout=SMOKE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        wall = time.perf_counter() - start
        return {"device": device, "returncode": None, "wall_s": wall, "error": "timed out"}
    found = {"device": device, "returncode": result.returncode}
    found["wall_s"] = time.perf_counter() - start
    if result.returncode != 0 or not (run / "metrics.json").exists():
        found["error"] = "\n".join(result.stderr.strip().splitlines()[-5:])
        return found
    return found | {"metrics": json.loads((run / "metrics.json").read_text())}


def figures(run: dict) -> dict[str, Any]:
    """A smoke run's exit status, wall time and the ``SMOKE_KEYS`` of its metrics.json (None
    where it wrote none)."""
    metrics = run.get("metrics", {})
    found = {"exit status": run["returncode"], "wall s": run["wall_s"]}
    for block, key in SMOKE_KEYS:
        value = metrics.get(key) if block is None else metrics.get(block, {}).get(key)
        found[f"{block}.{key}" if block else key] = value
    return found


def smoke(sizes: Sizes, dry: bool, folder: Path) -> Section:
    """``skr-run debug=smoke`` on the GPU and on the CPU (both on the CPU in a dry run), their
    key figures side by side."""
    prepare_smoke_data(folder)
    runs = {
        name: smoke_run(device, folder, name)
        for name, device in zip(("cuda", "cpu"), sizes.smoke_devices, strict=True)
    }
    found = {name: figures(run) for name, run in runs.items()}
    label = "device=cuda" + (" (dry run: ran with device=cpu)" if dry else "")

    def cell(value: Any) -> str:
        return (
            "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
        )

    lines = [
        f"`skr-run {' '.join(SMOKE)} device=...` in a subprocess per device, into a temporary "
        "folder, the data set generated beforehand; `timings_s` are metrics.json's phase times.",
        "",
        f"| figure | {label} | device=cpu |",
        "|---|---|---|",
        *(
            f"| {name} | {cell(found['cuda'][name])} | {cell(found['cpu'][name])} |"
            for name in found["cuda"]
        ),
    ]
    for run in runs.values():
        if "error" in run:
            lines += ["", f"device={run['device']} failed:", "", "```", run["error"], "```"]
    failed = any("metrics" not in run for run in runs.values())
    headlines = []
    if not failed:
        gpu, cpu = found["cuda"], found["cpu"]
        text = (
            f"skr-run debug=smoke {label} finished in {gpu['wall s']:.0f} s (device=cpu: "
            f"{cpu['wall s']:.0f} s); final top-1 {gpu['final.top1']} (device=cpu: "
            f"{cpu['final.top1']})"
        )
        headlines.append({"text": text, "value": gpu["wall s"]})
    details = {
        name: {"device": run["device"], "error": run.get("error"), "figures": found[name]}
        for name, run in runs.items()
    }
    return Section("End to end: skr-run debug=smoke", lines, headlines, details, failed)


# ----------------------------------------------------------------------------------- main


def attempt(title: str, part: Callable[..., Section], *args: Any) -> Section:
    """``part(*args)``, or a section saying how it failed (the other parts still run)."""
    start = time.perf_counter()
    try:
        section = part(*args)
    except Exception as err:  # noqa: BLE001 - one part's failure is reported, the rest still run
        text = traceback.format_exc()
        print(text, file=sys.stderr, flush=True)
        section = Section(title, [f"FAILED: {type(err).__name__}: {err}"], [], {"error": text})
        section.failed = True
    section.details["seconds"] = time.perf_counter() - start
    print(f"{section.title}: {section.details['seconds']:.0f} s", flush=True)
    return section


def header(sizes: Sizes, dry: bool, seconds: float) -> list[str]:
    device = torch.cuda.get_device_name() if sizes.device == "cuda" else "CPU"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none"
    title = "# GPU check" + (": DRY RUN (CPU, tiny sizes; not GPU figures)" if dry else "")
    lines = [
        title,
        "",
        f"Device: {device}; torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}, "
        f"cuDNN {cudnn}; {seconds:.0f} s in all. Written by "
        f"`scripts/gpu_check.py{' --dry' if dry else ''}`.",
    ]
    if dry:
        lines += [
            "",
            "A dry run exercises every code path on the CPU at tiny sizes; its figures say "
            "nothing about a GPU.",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="every code path on the CPU, tiny")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks", help="folder to write to")
    args = parser.parse_args()
    if not args.dry and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device is available (torch.cuda.is_available() is False); "
            "--dry runs every code path on the CPU",
            file=sys.stderr,
        )
        sys.exit(2)
    sizes = DRY if args.dry else REAL
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train = attempt("Training throughput", training, sizes, args.dry)
        consumed = train.details.get("rows", [])
        sections = [
            train,
            attempt("Dense against pruned", pruned_speed, sizes),
            attempt("Loader against consumption", feeding, sizes, consumed, Path(tmp)),
            attempt("End to end: skr-run debug=smoke", smoke, sizes, args.dry, Path(tmp)),
        ]
    seconds = time.perf_counter() - start
    lines = header(sizes, args.dry, seconds)
    for section in sections:
        lines += ["", f"## {section.title}", "", *section.lines]
    args.out.mkdir(parents=True, exist_ok=True)
    markdown = args.out / "gpu.md"
    markdown.write_text("\n".join(lines) + "\n")
    headlines = [
        headline
        | {
            "text": ("DRY RUN (CPU, tiny sizes): " if args.dry else "") + headline["text"],
            "gpu": not args.dry,
        }
        for section in sections
        for headline in section.headlines
    ]
    details = {"dry": args.dry, "seconds": seconds, "sizes": asdict(sizes)}
    details |= {section.title: section.details for section in sections}
    write_headlines(markdown, headlines, details)
    print("\n".join(lines))
    if any(section.failed for section in sections):
        sys.exit(1)


if __name__ == "__main__":
    main()
