"""Distributed data-parallel training: one run on several processes (``torchrun``).

``torchrun --nproc_per_node=N -m skr_cli ...`` starts N copies of the run; :func:`setup` joins
them into one process group (gloo on CPU, nccl on GPUs). What each part does:

- **training**: every rank draws the same global batches as a single process would (the same
  seeded order, the same batch size) and takes its share of each (:class:`RankShare`); the
  model is wrapped in DDP, which averages the gradients, so every rank takes the same optimiser
  step as one process on the whole batch. Batch norm: DDP broadcasts rank 0's buffers at each
  forward pass, so the running statistics are rank 0's (estimated on its share of each batch);
  the normalisation inside a step uses each rank's share (no SyncBatchNorm: it runs on GPUs
  only, and the pruning graph expects plain batch norms).
- **scoring** (heuristics on calibration batches): each rank scores its share of every batch;
  the sums (activation statistics, Gram matrices, Taylor terms) are all-reduced, so every rank
  ends with the single-process scores and the same plan.
- **everything else** (evaluation, batch-norm re-estimation, the loss at removal, compensation)
  runs whole on every rank: cheap next to training, and identical everywhere without
  communication.
- **files and logs**: only rank 0 writes (phase outputs, checkpoints, metrics.json) and logs to
  wandb; the other ranks read what it wrote.

Without torchrun (no ``WORLD_SIZE`` > 1) every function here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import BatchSampler, Sampler

# How long a rank waits for the others at a collective (e.g. while rank 0 waits for another job
# to finish training a shared dense model).
TIMEOUT = timedelta(hours=6)


def setup() -> bool:
    """Joins the process group torchrun describes (``WORLD_SIZE`` > 1); returns whether it did.

    Collectives on CUDA tensors go through nccl (each rank on its ``LOCAL_RANK``'s GPU), those
    on CPU tensors through gloo: a model on the GPU trains with nccl, one on the CPU with gloo.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl", timeout=TIMEOUT)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    return True


def teardown() -> None:
    """Leaves the process group (at the end of a distributed run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this process writes files and logs (rank 0, or the only process)."""
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def main_only(context: AbstractContextManager) -> AbstractContextManager:
    """``context`` on rank 0, nothing elsewhere (e.g. a file lock only rank 0 takes)."""
    return context if is_main() else nullcontext()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over ranks (a new tensor on ``tensor``'s device: nccl on a GPU,
    gloo on the CPU)."""
    if not dist.is_initialized():
        return tensor
    reduced = tensor.detach().clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over ranks."""
    return all_reduce_sum(tensor) / world_size() if dist.is_initialized() else tensor


def share(batch: torch.Tensor) -> torch.Tensor:
    """This rank's share of a batch (B, ...): rows ``rank, rank + N, ...`` of N ranks."""
    return batch[rank() :: world_size()] if dist.is_initialized() else batch


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel when distributed (gradients averaged over ranks),
    else ``model`` itself. The wrapper shares the model's parameters."""
    if not dist.is_initialized():
        return model
    where = next(model.parameters()).device
    ids = [where] if where.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


class RankShare(Sampler[list[Any]]):
    """Batches of ``sampler`` for one rank: the global batches of a single process (same order,
    ``batch_size`` items), this rank's share of each (items ``rank, rank + N, ...``).

    Args:
        sampler: the global order (a :class:`~skr_cli.data.clips.SeededSampler`).
        batch_size: the global batch size (split over the ranks).
        drop_last: drop the last, incomplete global batch.
        rank: this process's rank.
        world: the number of ranks.
    """

    def __init__(
        self, sampler: Sampler, batch_size: int, drop_last: bool, rank: int, world: int
    ) -> None:
        self.sampler, self.rank, self.world = sampler, rank, world
        self.batches = BatchSampler(sampler, batch_size, drop_last)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[Any]]:
        for batch in self.batches:
            yield batch[self.rank :: self.world]
