"""Size, compute and speed of every backbone at its published width. Writes benchmarks/models.md.

For each model of the registry (400 classes): parameters, prunable layers and channels, MACs per
8x112x112 clip (and per 64x224x224 clip for I3D, the published setting), and the median batch-1
forward latency on this machine's CPU, measured in turns in one process. With a CUDA device,
also the training throughput (clips/s) of the full I3D and I3D-R50 on 64x224x224 clips in fp32
and with bf16 autocast. Writes benchmarks/models.md and benchmarks/models.json.

    .venv/bin/python scripts/bench_models.py [--runs 10] [--batch 8] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from skr_cli.engine.evaluate import latency_ms
from skr_cli.models import MODELS
from skr_cli.pruning.count import count_macs, count_params
from skr_cli.pruning.layers import prunable_layers
from summarise_bench import write_headlines

BACKBONES = ("i3d", "i3d_r50", "r3d_18", "r2plus1d_18", "s3d")
GPU_BACKBONES = ("i3d", "i3d_r50")  # training throughput on a CUDA device
CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
SMALL, PUBLISHED = (8, 112, 112), (64, 224, 224)


def build(name: str) -> nn.Module:
    """The network of ``conf/model/<name>.yaml`` (the published width) with 400 classes."""
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    cfg.num_classes = 400
    model = instantiate(cfg).eval()
    assert isinstance(model, nn.Module) and name in MODELS
    return model


def sizes(models: dict[str, nn.Module]) -> list[str]:
    rows = []
    for name, model in models.items():
        layers = prunable_layers(model)
        macs = count_macs(model, torch.zeros(1, 3, *SMALL)) / 1e9
        full = count_macs(model, torch.zeros(1, 3, *PUBLISHED)) / 1e9 if name == "i3d" else None
        rows.append(
            f"| {name} | {count_params(model) / 1e6:.2f} | {len(layers)} | "
            f"{sum(layer.channels for layer in layers.values())} | {macs:.2f} | "
            f"{f'{full:.1f}' if full else ''} |"
        )
    return rows


def train_throughput(name: str, device: str, batch: int, steps: int, bf16: bool) -> float:
    """Clips per second of SGD steps of the full ``name`` on 64x224x224 clips on ``device``."""
    torch.manual_seed(0)
    model = build(name).train().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    clips = torch.randn(batch, 3, *PUBLISHED, device=device)
    labels = torch.randint(0, 400, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(clips), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(2):  # warm-up: kernel selection, allocator
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8, help="clips per GPU training step")
    parser.add_argument("--steps", type=int, default=10, help="timed GPU training steps")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/models.md"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    models = {name: build(name) for name in BACKBONES}
    latency = latency_ms(models, torch.randn(1, 3, *SMALL), args.runs)
    lines = [
        "# Backbones: size, compute and speed at the published width (400 classes)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU threads, torch {torch.__version__}. "
        f"MACs as in metrics.json (convolutions and linear layers, one clip, batch 1). "
        f"CPU latency: batch 1, {SMALL[0]}x{SMALL[1]}x{SMALL[2]}, median of {args.runs} forward "
        "passes per model, the models in turns.",
        "Command: `.venv/bin/python scripts/bench_models.py`",
        "",
        "| model | params (M) | prunable layers | prunable channels | GMACs 8x112² | "
        "GMACs 64x224² |",
        "|---|---|---|---|---|---|",
        *sizes(models),
        "",
        "| model | CPU ms (8x112², batch 1) |",
        "|---|---|",
        *(f"| {name} | {ms:.1f} |" for name, ms in latency.items()),
        "",
    ]
    headlines = [
        {
            "text": "CPU latency, batch 1, 8x112²: "
            + ", ".join(f"{name} {ms:.0f} ms" for name, ms in latency.items()),
            "value": None,
        }
    ]
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name()
        for name in GPU_BACKBONES:
            fp32, bf16 = (
                train_throughput(name, "cuda", args.batch, args.steps, b) for b in (False, True)
            )
            line = (
                f"Training the full {name} on 64x224² clips, batch {args.batch}, {device}: "
                f"fp32 {fp32:.1f} clips/s, bf16 autocast {bf16:.1f} clips/s (x{bf16 / fp32:.2f})."
            )
            lines.append(line)
            headlines.append({"text": line, "value": bf16 / fp32, "gpu": True})
    else:
        lines += ["GPU training throughput: not measured (no CUDA device on this machine)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    write_headlines(args.out, headlines, {"cpu_latency_ms": latency})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
