"""Accuracy at clip and video level, and CPU latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from skr_cli.data.clips import Batch
from skr_cli.engine.modes import eval_mode


def _hits(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """How many of ``labels`` (B,) are among the top ``k`` of ``logits`` (B, K): a 0-dim tensor
    on their device (read once at the end of the evaluation, not per batch)."""
    k = min(k, logits.shape[-1])
    return (logits.topk(k, dim=-1).indices == labels[:, None]).any(dim=-1).sum()


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: Iterable[Batch], on_skipped: Callable[[list[str]], None]
) -> dict[str, float]:
    """Clip-level and video-level top-1/top-5 (%), and the mean clip cross-entropy.

    The loader yields (clips (B, N, C, T, H, W), labels (B,), failed paths): N clips per video.
    All clips of a batch go through the network at once, on the model's device; a video's
    prediction averages the logits of its clips. The sums stay on the device until the end.
    """
    with eval_mode(model):
        device = next(model.parameters()).device
        keys = ("top1", "top5", "video_top1", "video_top5", "loss")
        sums = torch.zeros(len(keys), dtype=torch.float64, device=device)
        videos = clips_seen = 0
        for clips, labels, failed in loader:
            on_skipped(failed)
            if len(labels) == 0:
                continue
            clips = clips.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            batch, per_video = clips.shape[:2]
            logits = model(clips.flatten(0, 1)).view(batch, per_video, -1)  # (B, N, K)
            clip_labels = labels.repeat_interleave(per_video)
            flat, video = logits.flatten(0, 1), logits.mean(dim=1)  # (B * N, K), (B, K)
            sums += torch.stack(
                [
                    _hits(flat, clip_labels, 1),
                    _hits(flat, clip_labels, 5),
                    _hits(video, labels, 1),
                    _hits(video, labels, 5),
                    F.cross_entropy(flat, clip_labels, reduction="sum"),
                ]
            ).double()
            videos, clips_seen = videos + batch, clips_seen + batch * per_video
    if videos == 0:
        raise RuntimeError("evaluation saw no decodable video")
    total = dict(zip(keys, sums.tolist(), strict=True))
    return {
        "top1": 100.0 * total["top1"] / clips_seen,
        "top5": 100.0 * total["top5"] / clips_seen,
        "video_top1": 100.0 * total["video_top1"] / videos,
        "video_top5": 100.0 * total["video_top5"] / videos,
        "loss": total["loss"] / clips_seen,
        "videos": videos,
        "clips": clips_seen,
    }


@torch.no_grad()
def latency_ms(
    models: dict[str, nn.Module],
    clip: torch.Tensor,
    runs: int,
    clock: Callable[[], float] = time.perf_counter,
    warm: int = 0,
) -> dict[str, float]:
    """Median forward time (ms) of each model on ``clip`` (B, C, T, H, W), side by side.

    The models take turns run by run, so a change in machine load hits all of them alike.
    ``clock`` may be ``time.process_time`` to count CPU time instead of wall time (steadier on
    a shared machine; with one torch thread it is the work of one forward pass). ``warm``
    untimed passes of the same model precede each timed one, so that it is timed as a model
    serving request after request is (its weights in the caches, the allocator holding its
    buffers), not right after another model's turn.
    """
    cuda = clip.device.type == "cuda"  # kernels run asynchronously: wait for them to finish
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.no_grad():
        for model in models.values():
            model.eval()
            for _ in range(3):  # warm-up: allocator, kernel selection
                model(clip)
        for _ in range(runs):
            for name, model in models.items():
                for _ in range(warm):
                    model(clip)
                if cuda:
                    torch.cuda.synchronize(clip.device)
                start = clock()
                model(clip)
                if cuda:
                    torch.cuda.synchronize(clip.device)
                times[name].append(1000.0 * (clock() - start))
    return {name: statistics.median(values) for name, values in times.items()}
