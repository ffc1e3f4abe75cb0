"""The training loop shared by pretraining and fine-tuning."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR
from tqdm import tqdm

from skr_cli.data.clips import Batch

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
StepCallback = Callable[[int, Optimizer], None]
# (model, clips (B, C, T, H, W), labels (B,), logits (B, K), step) -> the loss to minimise
Objective = Callable[[nn.Module, Tensor, Tensor, Tensor, int], Tensor]


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite."""


def train(
    model: nn.Module,
    loader: Iterable[Batch],
    *,
    epochs: int,
    make_optimizer: OptimizerFactory,
    phase: str,
    on_skipped: Callable[[list[str]], None],
    progress: bool,
    after_step: StepCallback | None = None,
    objective: Objective | None = None,
) -> list[float]:
    """Trains ``model`` with cross-entropy for ``epochs`` epochs on a cosine learning-rate schedule.

    The optimiser is built here from the model's current parameters, so a pruned model always
    gets a fresh one.

    Args:
        model: the network; left in train mode.
        loader: yields (clips (B, C, T, H, W), labels (B,), paths that failed to decode).
        epochs: passes over the loader (0 returns at once).
        make_optimizer: builds the optimiser from parameters (a partial from the config).
        phase: name shown on the progress bar and in errors.
        on_skipped: receives the paths of videos that could not be decoded.
        progress: show a progress bar per epoch.
        after_step: called as ``after_step(step, optimizer)`` right after each optimiser step and
            before the scheduler's, so the optimiser's learning rate is the one that step used
            (e.g. a proximal step).
        objective: the loss of a step from ``(model, clips, labels, logits, step)`` instead of
            the cross-entropy (the relocation phase: task loss + penalty, logging its parts).

    Returns:
        The mean training loss of each epoch.
    """
    if epochs == 0:
        return []
    optimizer = make_optimizer(model.parameters())
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    model.train()
    losses, step = [], 0
    for epoch in range(1, epochs + 1):
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"{phase} {epoch}/{epochs}", leave=False, disable=not progress)
        for clips, labels, failed in bar:
            on_skipped(failed)
            step += 1
            if len(labels) == 0:
                continue
            logits = model(clips)  # (B, K)
            if objective is None:
                loss = F.cross_entropy(logits, labels)
            else:
                loss = objective(model, clips, labels, logits, step)
            if not math.isfinite(loss.item()):
                raise NonFiniteLoss(f"{phase}: loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step(step, optimizer)
            scheduler.step()
            total, count = total + loss.item() * len(labels), count + len(labels)
            bar.set_postfix(loss=f"{total / count:.3f}")
        losses.append(total / max(count, 1))
    return losses
