"""Does physical channel removal make I3D faster? Dense vs pruned, side by side, on this CPU.

For each model size and prune ratio, removes that share of every prunable layer's channels (by a
seeded random plan: speed does not depend on which channels go) and reports parameters, MACs and
the median batch-1 latency of the dense and pruned networks measured in turns in one process.
Writes benchmarks/pruning.md.

    .venv/bin/python scripts/bench_pruning.py [--runs 50]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
from pathlib import Path

import torch

from skr_cli.engine.evaluate import latency_ms
from skr_cli.heuristics import RandomScores
from skr_cli.models.i3d import InceptionI3d
from skr_cli.pruning.count import count_macs, count_params
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import select_local
from skr_cli.pruning.remove import remove_channels

# (label, width, clip T x H x W)
CASES = [("i3d_tiny (default run)", 0.125, (8, 32, 32)), ("i3d width 0.25", 0.25, (16, 64, 64))]
RATIOS = (0.25, 0.5, 0.75)


def bench(width: float, clip_shape: tuple[int, int, int], ratio: float, runs: int) -> dict:
    torch.manual_seed(0)
    dense = InceptionI3d(num_classes=10, width=width, dropout=0.0, in_channels=3).eval()
    clip = torch.randn(1, 3, *clip_shape)
    scores = RandomScores(seed=0).score(dense, prunable_layers(dense), [])
    pruned = remove_channels(copy.deepcopy(dense), select_local(scores, ratio), clip)
    latency = latency_ms({"dense": dense, "pruned": pruned}, clip, runs)
    return {
        "params": count_params(dense) / count_params(pruned),
        "macs": count_macs(dense, clip) / count_macs(pruned, clip),
        "speedup": latency["dense"] / latency["pruned"],
        "dense_ms": latency["dense"],
        "pruned_ms": latency["pruned"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/pruning.md"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    lines = [
        "# Pruning speedup: dense vs physically pruned I3D",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU threads, torch {torch.__version__}. "
        f"Batch 1, median of {args.runs} forward passes per model, dense and pruned in turns.",
        "Command: `.venv/bin/python scripts/bench_pruning.py`",
        "",
        "| model | clip | prune.ratio | params ÷ | MACs ÷ | dense ms | pruned ms | speedup |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, width, clip_shape in CASES:
        for ratio in RATIOS:
            r = bench(width, clip_shape, ratio, args.runs)
            clip = "x".join(map(str, clip_shape))
            lines.append(
                f"| {label} | {clip} | {ratio} | {r['params']:.2f} | {r['macs']:.2f} | "
                f"{r['dense_ms']:.2f} | {r['pruned_ms']:.2f} | {r['speedup']:.2f} |"
            )
            print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
