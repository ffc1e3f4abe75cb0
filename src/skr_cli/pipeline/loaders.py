"""The run's data loaders: shuffled training clips drawn from a phase's seed, the test split,
and the calibration batches the heuristics, relocation and batch-norm re-estimation use."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from skr_cli.data.clips import SeededSampler, collate_clips
from skr_cli.engine.distributed import RankShare, rank, world_size
from skr_cli.heuristics.base import CalibBatch
from skr_cli.pipeline.runcontext import RunContext, seed_phase


def train_loader(ctx: RunContext, batch_size: int, seed: int, *, shard: bool = True) -> DataLoader:
    """Shuffled training clips; the order, each clip's start and its augmentation all come from
    ``seed`` in the main process, so the batches are the same whatever ``num_workers`` is.
    Under torchrun each rank loads its share of every one of these batches (``shard``), or
    all of them."""
    sampler = SeededSampler(len(ctx.train_set), torch.Generator().manual_seed(seed))
    drop_last = len(ctx.train_set) > batch_size
    batching: dict[str, Any] = {"batch_size": batch_size, "sampler": sampler}
    if shard and world_size() > 1:
        share = RankShare(sampler, batch_size, drop_last, rank(), world_size())
        batching, drop_last = {"batch_sampler": share}, False
    return DataLoader(
        ctx.train_set,
        **batching,
        drop_last=drop_last,
        collate_fn=collate_clips,
        **loader_options(ctx.cfg.dataset.num_workers, persistent=True),
    )


def test_loader(ctx: RunContext) -> DataLoader:
    return DataLoader(
        ctx.test_set,
        batch_size=ctx.cfg.eval.batch_size,
        collate_fn=collate_clips,
        **loader_options(ctx.cfg.dataset.num_workers, persistent=False),
    )


# Batches each worker prepares ahead (DataLoader's default is 2): decoding times vary by video.
PREFETCH_FACTOR = 4


def loader_options(workers: int, *, persistent: bool) -> dict[str, Any]:
    """DataLoader settings for ``workers`` processes: pinned memory where a CUDA device can take
    the batches asynchronously; with workers, ``PREFETCH_FACTOR`` batches ahead each, kept alive
    between epochs when ``persistent`` (a loader iterated for several epochs)."""
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": torch.cuda.is_available()}
    if workers > 0:
        options |= {"persistent_workers": persistent, "prefetch_factor": PREFETCH_FACTOR}
    return options


def calibration_batches(ctx: RunContext, phase: str) -> list[CalibBatch]:
    """``prune.calib_batches`` training batches (clips, labels), drawn from the phase's seed;
    whole on every rank under torchrun (a heuristic scores its share of each and all-reduces)."""
    seed = seed_phase(ctx.cfg.seed, phase)
    loader = train_loader(ctx, ctx.cfg.train.batch_size, seed, shard=False)
    batches: list[CalibBatch] = []
    for clips, labels, failed in loader:
        ctx.note_skipped(failed)
        if len(labels):
            batches.append((clips.to(ctx.device), labels.to(ctx.device)))
        if len(batches) == ctx.cfg.prune.calib_batches:
            break
    return batches
