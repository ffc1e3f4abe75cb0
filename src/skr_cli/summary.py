"""The few lines printed at the end of a run."""

from __future__ import annotations

from typing import Any


def _millions(value: float) -> str:
    return f"{value / 1e6:.3f} M"


def format_summary(metrics: dict[str, Any], out_dir: str) -> str:
    """Dense vs right-after-removal vs fine-tuned: accuracy, size, compute and measured speed."""
    dense, pruned, final = metrics["dense"], metrics["pruned"], metrics["final"]
    clip = "x".join(str(n) for n in metrics["mac_convention"]["clip"])
    rows = [
        f"skr-run  heuristic={metrics['heuristic']}  prune.ratio={metrics['prune_ratio']}  "
        f"seed={metrics['seed']}  dataset={metrics['dataset']}  model={metrics['model']}",
        f"{'':14}{'top-1 %':>9}{'video top-1 %':>15}{'params':>12}{'MACs/clip':>12}{'latency':>11}",
    ]
    for label, block in (("dense", dense), ("after removal", pruned), ("fine-tuned", final)):
        latency = f"{block['latency_ms']:.2f} ms" if "latency_ms" in block else ""
        rows.append(
            f"{label:14}{block['top1']:9.1f}{block['video_top1']:15.1f}"
            f"{_millions(block['params']):>12}{_millions(block['macs']):>12}{latency:>11}"
        )
    rows += [
        f"params x{dense['params'] / final['params']:.2f} fewer, MACs x"
        f"{dense['macs'] / final['macs']:.2f} fewer (clip {clip}), measured speedup "
        f"x{metrics['speedup']:.2f} at batch 1 on CPU; loss jump at removal "
        f"{metrics['delta_loss_remove']:+.3f}",
        f"outputs: {out_dir}",
    ]
    if metrics["skipped_videos"]:
        rows.append(f"skipped {metrics['skipped_videos']} videos that could not be decoded")
    return "\n".join(rows)
