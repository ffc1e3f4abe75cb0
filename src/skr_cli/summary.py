"""The few lines printed at the end of a run."""

from __future__ import annotations

from typing import Any


def _millions(value: float) -> str:
    return f"{value / 1e6:.3f} M"


def format_agreement(names: list[str], tau: list[list], overlap: list[list]) -> list[str]:
    """Kendall τ-b (upper triangle) and plan Jaccard (lower triangle) between heuristics, as
    matrices in the order of ``names`` (means over layers)."""
    rows = ["agreement: Kendall tau-b above the diagonal, Jaccard of the plans below (layer means)"]
    rows.append(f"{'':16}" + "".join(f"{name[:9]:>10}" for name in names))
    for i, name in enumerate(names):
        cells = [tau[i][j] if j > i else overlap[i][j] for j in range(len(names))]
        rows.append(
            f"{name:16}" + "".join(f"{'-':>10}" if c is None else f"{c:10.2f}" for c in cells)
        )
    return rows


def format_summary(metrics: dict[str, Any], out_dir: str) -> str:
    """Dense vs right-after-removal vs fine-tuned: accuracy, size, compute and measured speed."""
    if "final" not in metrics:  # agreement.only: the heuristics were compared, nothing pruned
        result = metrics["agreement"]
        means = result["kendall_tau"]["mean"], result["jaccard"]["mean"]
        return "\n".join([*format_agreement(result["heuristics"], *means), f"outputs: {out_dir}"])
    dense, pruned, final = metrics["dense"], metrics["pruned"], metrics["final"]
    clip = "x".join(str(n) for n in metrics["mac_convention"]["clip"])
    rows = [
        f"skr-run  heuristic={metrics['heuristic']}  prune.ratio={metrics['prune_ratio']}  "
        f"seed={metrics['seed']}  dataset={metrics['dataset']}  model={metrics['model']}",
        f"{'':14}{'top-1 %':>9}{'video top-1 %':>15}{'params':>12}{'MACs/clip':>12}{'latency':>11}",
    ]
    stages = [("dense", dense), ("after removal", pruned), ("fine-tuned", final)]
    if "lowrank" in metrics:  # the fine-tuned network, factorised by truncated SVD
        stages.append(("factorised", metrics["lowrank"]["after"]))
    for label, block in stages:
        latency = f"{block['latency_ms']:.2f} ms" if "latency_ms" in block else ""
        rows.append(
            f"{label:14}{block['top1']:9.1f}{block['video_top1']:15.1f}"
            f"{_millions(block['params']):>12}{_millions(block['macs']):>12}{latency:>11}"
        )
        if label == "after removal":  # the same network, batch-norm statistics re-estimated
            rows.append(
                f"{'+ BN re-est.':14}{block['top1_bn_recal']:9.1f}"
                f"{block['video_top1_bn_recal']:15.1f}"
            )
    rows += [
        f"params x{dense['params'] / final['params']:.2f} fewer, MACs x"
        f"{dense['macs'] / final['macs']:.2f} fewer (clip {clip}), measured speedup "
        f"x{metrics['speedup']:.2f} at batch 1 on CPU ({metrics.get('latency_form', 'train')} "
        "form); loss jump at removal "
        f"{metrics['delta_loss_remove']:+.3f}",
        f"outputs: {out_dir}",
    ]
    if "agreement" in metrics:
        result = metrics["agreement"]
        rows[-1:-1] = format_agreement(
            result["heuristics"], result["kendall_tau"], result["jaccard"]
        )
    if metrics["data"]["skipped"]:
        data = metrics["data"]
        damaged = f" ({data['damaged']} damaged: cut short)" if data.get("damaged") else ""
        rows.append(f"skipped {data['skipped']} videos that could not be decoded{damaged}")
    return "\n".join(rows)
