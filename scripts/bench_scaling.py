"""How does training time grow with clip length, frame size, width and data set size? On CPU.

Times skr's training loop (``skr_cli.engine.train.train``, the default run's settings read from
``conf/``: i3d_tiny, ``train.batch_size``, AdamW, ``train.channels_last``) on batches built in
memory, changing one factor at a time from the default run: clip length T, frame size, model
width, and the number of training videos (steps per epoch). Each setting runs a few steps in
turn with the others, round after round; the figure is the median CPU time per step on one
torch thread, and the epoch time follows from the steps an epoch of the synthetic set takes.
Writes benchmarks/scaling.md and benchmarks/scaling.json.

    .venv/bin/python scripts/bench_scaling.py [--rounds 3] [--steps 8]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from skr_cli.engine.train import train
from summarise_bench import write_headlines

CONF = Path(__file__).resolve().parents[1] / "conf"
FRAMES = (4, 8, 16, 32)
SIZES = (32, 64, 112)
WIDTHS = (0.0625, 0.125, 0.25, 0.5)
VIDEOS = (0.5, 1, 2, 4)  # multiples of the default training split
DEFAULT = "default run"


def defaults() -> dict:
    """The default run's settings, read from the config files (no second default here)."""
    data = OmegaConf.load(CONF / "dataset" / "synthetic.yaml")
    model = OmegaConf.load(CONF / "model" / "i3d_tiny.yaml")
    model.num_classes = data.num_classes
    generator = data.generator
    per_class = (generator.groups - generator.test_groups) * generator.clips_per_group
    train_videos = per_class * data.num_classes
    return {
        "model": model,
        "classes": data.num_classes,
        "frames": data.frames,
        "size": data.size,
        "train": OmegaConf.load(CONF / "train" / "default.yaml"),
        "videos": train_videos,
    }


def settings(base: dict) -> dict[str, dict]:
    """The default setting, then one per other value of each factor: (T, size, width)."""
    default = {"frames": base["frames"], "size": base["size"], "width": base["model"].width}
    rows: dict[str, dict] = {DEFAULT: default}
    for key, label, values in (
        ("frames", "clip length T={}", FRAMES),
        ("size", "frame size {0}x{0}", SIZES),
        ("width", "width {}", WIDTHS),
    ):
        for value in values:
            if value != default[key]:
                rows[label.format(value)] = default | {key: value}
    return rows


class Trainer:
    """A model, its batches and a function that trains it for a few steps (skr's loop)."""

    def __init__(self, base: dict, frames: int, size: int, width: float, steps: int) -> None:
        torch.manual_seed(0)
        cfg = OmegaConf.merge(base["model"], {"width": width})
        self.model: nn.Module = instantiate(cfg)
        batch, classes = base["train"].batch_size, base["classes"]
        self.batches = [
            (torch.randn(batch, 3, frames, size, size), torch.randint(0, classes, (batch,)), [])
            for _ in range(steps)
        ]
        self.base = base

    def __call__(self) -> None:
        train(
            self.model,
            self.batches,
            epochs=1,
            make_optimizer=instantiate(self.base["train"].optimizer),
            phase="bench",
            on_skipped=lambda paths: None,
            progress=False,
            channels_last=self.base["train"].channels_last,
        )


def measure(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    base = defaults()
    rows = settings(base)
    trainers = {name: Trainer(base, **row, steps=args.steps) for name, row in rows.items()}
    for trainer in trainers.values():  # warm-up: allocator, oneDNN kernel selection
        trainer()
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            start = time.process_time()
            trainer()
            times[name].append(1000.0 * (time.process_time() - start) / args.steps)
    ms = {name: statistics.median(values) for name, values in times.items()}
    default = ms[DEFAULT]
    batch = base["train"].batch_size
    steps = {share: max(math.floor(share * base["videos"] / batch), 1) for share in VIDEOS}
    return {
        "default": {
            "frames": base["frames"],
            "size": base["size"],
            "width": base["model"].width,
            "batch": batch,
            "train_videos": base["videos"],
        },
        "rounds": args.rounds,
        "steps": args.steps,
        "settings": rows,
        "ms_per_step": ms,
        "relative": {name: value / default for name, value in ms.items()},
        "epoch_s": {
            f"{int(share * base['videos'])} training videos": steps[share] * default / 1000
            for share in VIDEOS
        },
    }


def report(result: dict, command: str) -> list[str]:
    d = result["default"]
    lines = [
        "# Scaling: training time against clip length, frame size, width and data set size",
        "",
        f"skr's training loop on CPU, one torch thread, CPU time; the default run: i3d width "
        f"{d['width']}, clip {d['frames']}x{d['size']}x{d['size']}, batch {d['batch']}, AdamW, "
        f"channels_last_3d. One factor changed at a time; median of {result['rounds']} rounds "
        f"of {result['steps']} steps, the settings in turns. Multiply by the steps of a run "
        "(epochs x training videos / batch) to plan one.",
        f"Command: `{command}`",
        "",
        "| setting | ms / step | x default |",
        "|---|---|---|",
    ]
    for name, value in result["ms_per_step"].items():
        lines.append(f"| {name} | {value:.1f} | {result['relative'][name]:.2f} |")
    lines += [
        "",
        "Data set size: an epoch is (training videos / batch) steps of the default step, linear "
        "in the number of videos (the synthetic set's decoded clips are cached in memory; real "
        "data sets add decoding, see data.md):",
        "",
        "| training videos | s / epoch (default step) |",
        "|---|---|",
        *(f"| {name.split()[0]} | {value:.2f} |" for name, value in result["epoch_s"].items()),
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="steps per setting and round")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/scaling.md"))
    args = parser.parse_args()
    result = measure(args)
    command = f"python scripts/bench_scaling.py --rounds {args.rounds} --steps {args.steps}"
    lines = report(result, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    rel = result["relative"]
    longest, largest = f"clip length T={FRAMES[-1]}", f"frame size {SIZES[-1]}x{SIZES[-1]}"
    widest = f"width {WIDTHS[-1]}"
    headlines = [
        {
            "text": f"a training step grows x{rel[longest]:.1f} from the default clip to "
            f"T={FRAMES[-1]} frames, x{rel[largest]:.1f} to {SIZES[-1]}² frames and "
            f"x{rel[widest]:.1f} to width {WIDTHS[-1]}; epoch time is linear in the videos",
            "value": rel[longest],
        }
    ]
    write_headlines(args.out, headlines, result)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
