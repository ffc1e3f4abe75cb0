"""Does skr's training loop waste time? ``skr_cli.engine.train.train`` against a bare PyTorch loop.

Both loops train the same model from the same weights on the same batches, built once in memory
(so data loading is not measured), with the same optimiser and cosine schedule: the default
run's model and clip (i3d_tiny, ``train.batch_size`` clips of ``dataset.frames`` x
``dataset.size``², AdamW of ``conf/train/default.yaml``). The bare loop is forward,
cross-entropy, zero_grad, backward, step, scheduler step; skr's adds its progress bar (off),
the skipped-video callback, the device transfer and the on-device loss tally with its
non-finite check. The loops take turns, one epoch each per round, the order alternating; the
figure is the median CPU time per step on one torch thread (steady on a shared machine).

Both loops run in the contiguous and in the ``channels_last_3d`` memory format (oneDNN's
preferred layout; ``train.channels_last``, on by default), all four variants in the same rounds.
Writes benchmarks/loop.md and benchmarks/loop.json.

    .venv/bin/python scripts/bench_loop.py [--rounds 7] [--steps 8]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR

from skr_cli.engine.train import train
from summarise_bench import write_headlines

CONF = Path(__file__).resolve().parents[1] / "conf"
BARE, BARE_CL = "bare PyTorch loop", "bare PyTorch loop, channels_last_3d"
SKR, SKR_CL = "skr train(), contiguous", "skr train(), channels_last_3d (train.channels_last)"
Batches = list[tuple[torch.Tensor, torch.Tensor, list[str]]]


def defaults() -> dict:
    """The default run's settings, read from the config files (no second default here)."""
    data = OmegaConf.load(CONF / "dataset" / "synthetic.yaml")
    model = OmegaConf.load(CONF / "model" / "i3d_tiny.yaml")
    model.num_classes = data.num_classes
    return {
        "model": model,
        "width": model.width,
        "classes": data.num_classes,
        "clip": (data.frames, data.size, data.size),
        "train": OmegaConf.load(CONF / "train" / "default.yaml"),
    }


def bare_loop(
    model: nn.Module,
    batches: Batches,
    optimizer_factory: Callable,
    memory_format: torch.memory_format,
) -> None:
    """One epoch of the plainest PyTorch training loop over ``batches``."""
    model.train()
    model.to(memory_format=memory_format)
    optimizer = optimizer_factory(model.parameters())
    scheduler = CosineAnnealingLR(optimizer, T_max=len(batches))
    for clips, labels, _ in batches:
        loss = F.cross_entropy(model(clips.contiguous(memory_format=memory_format)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()


def skr_loop(
    model: nn.Module, batches: Batches, optimizer_factory: Callable, channels_last: bool
) -> None:
    """One epoch of skr's training loop over ``batches``."""
    train(
        model,
        batches,
        epochs=1,
        make_optimizer=optimizer_factory,
        phase="bench",
        on_skipped=lambda paths: None,
        progress=False,
        channels_last=channels_last,
    )


def measure(args: argparse.Namespace) -> dict:
    """Median CPU ms per step of each variant, the variants in turns round by round."""
    torch.set_num_threads(1)
    setting = defaults()
    torch.manual_seed(0)
    initial = instantiate(setting["model"])
    batch = setting["train"].batch_size
    batches = [
        (
            torch.randn(batch, 3, *setting["clip"]),
            torch.randint(0, setting["classes"], (batch,)),
            [],
        )
        for _ in range(args.steps)
    ]
    factory = instantiate(setting["train"].optimizer)
    contiguous, channels_last = torch.contiguous_format, torch.channels_last_3d
    variants: dict[str, Callable[[nn.Module], None]] = {
        BARE: lambda m: bare_loop(m, batches, factory, contiguous),
        BARE_CL: lambda m: bare_loop(m, batches, factory, channels_last),
        SKR: lambda m: skr_loop(m, batches, factory, False),
        SKR_CL: lambda m: skr_loop(m, batches, factory, True),
    }
    for run in variants.values():  # warm-up: allocator, oneDNN kernel selection
        run(copy.deepcopy(initial))
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for round_ in range(args.rounds):
        for name in order if round_ % 2 == 0 else order[::-1]:
            model = copy.deepcopy(initial)
            start = time.process_time()
            variants[name](model)
            times[name].append(1000.0 * (time.process_time() - start) / args.steps)
    ms = {name: statistics.median(values) for name, values in times.items()}
    return {
        "model": f"i3d width {setting['width']}",
        "batch": batch,
        "clip": list(setting["clip"]),
        "rounds": args.rounds,
        "steps": args.steps,
        "ms_per_step": ms,
        "ratio_to_bare": {name: value / ms[BARE] for name, value in ms.items()},
        "overhead_same_layout": {
            "contiguous": ms[SKR] / ms[BARE],
            "channels_last_3d": ms[SKR_CL] / ms[BARE_CL],
        },
    }


def report(result: dict, command: str) -> list[str]:
    clip = "x".join(map(str, result["clip"]))
    lines = [
        "# Training loop: skr's `train()` against a bare PyTorch loop",
        "",
        f"{result['model']} (the default run's i3d_tiny), batch {result['batch']}, clip {clip}, "
        f"AdamW with a cosine schedule; the same pre-built batches and initial weights for every "
        f"variant. Median CPU time per step over {result['rounds']} rounds of "
        f"{result['steps']} steps, one torch thread, the variants in turns.",
        f"Command: `{command}`",
        "",
        "| variant | ms / step | x bare loop |",
        "|---|---|---|",
    ]
    for name, value in result["ms_per_step"].items():
        lines.append(f"| {name} | {value:.1f} | {result['ratio_to_bare'][name]:.3f} |")
    same = result["overhead_same_layout"]
    lines += [
        "",
        "skr's loop against the bare loop in the same memory format: "
        f"x{same['contiguous']:.3f} (contiguous), x{same['channels_last_3d']:.3f} "
        "(channels_last_3d); target: at most x1.10. The default run trains in channels_last_3d: "
        f"x{result['ratio_to_bare'][SKR_CL]:.3f} the time of the plain contiguous loop.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=8, help="steps (batches) per epoch")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/loop.md"))
    args = parser.parse_args()
    result = measure(args)
    command = f"python scripts/bench_loop.py --rounds {args.rounds} --steps {args.steps}"
    lines = report(result, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    same = result["overhead_same_layout"]
    headlines = [
        {
            "text": f"skr's `train()` takes x{same['contiguous']:.3f} the CPU time per step of a "
            "bare PyTorch loop over the same model and batches (contiguous layout; "
            f"x{same['channels_last_3d']:.3f} both in channels_last_3d); target: at most x1.10",
            "value": same["contiguous"],
        },
        {
            "text": "the default `train.channels_last=true` takes "
            f"x{result['ratio_to_bare'][SKR_CL]:.3f} the time of the contiguous bare loop",
            "value": result["ratio_to_bare"][SKR_CL],
        },
    ]
    write_headlines(args.out, headlines, result)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
