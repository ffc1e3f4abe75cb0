"""The training loop shared by pretraining and fine-tuning."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from tqdm import tqdm

from skr_cli.choices import PRECISIONS
from skr_cli.data.clips import Batch
from skr_cli.engine.checkpoint import PhaseCheckpoint, Progress
from skr_cli.engine.distributed import wrap
from skr_cli.engine.faults import fault_point

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
StepCallback = Callable[[int, Optimizer], None]
# (model, clips (B, C, T, H, W), labels (B,), logits (B, K), step) -> the loss to minimise
Objective = Callable[[nn.Module, Tensor, Tensor, Tensor, int], Tensor]


# Training precisions (``train.precision``): bf16 runs the forward pass and the loss under
# bfloat16 autocast on a CUDA device; the weights and the optimiser stay in float32.
# Steps between two reads of the loss on an accelerator: each read waits for the device, so the
# running loss and the finiteness check are kept on the device in between (on CPU: every step).
READ_EVERY = 25


@dataclass(frozen=True)
class LrSchedule:
    """A linear warm-up then a cosine decay to zero, over ``total`` epochs, of which a phase
    trains the ``epochs`` from ``start`` on: phases that share one schedule (relocation, then
    fine-tuning) each continue where the previous one stopped instead of restarting at the full
    learning rate.

    Attributes:
        total: epochs of the whole schedule.
        warmup: its first epochs, over which the rate rises linearly to the full rate.
        start: the epoch (of ``total``) at which this phase begins.
    """

    total: int
    warmup: int = 0
    start: int = 0

    def factor(self, step: int, steps_per_epoch: int) -> float:
        """The share of the full learning rate at the phase's ``step`` (0-based)."""
        at = self.start * steps_per_epoch + step
        warm = self.warmup * steps_per_epoch
        if at < warm:
            return (at + 1) / (warm + 1)
        decay = max(self.total * steps_per_epoch - warm, 1)
        return 0.5 * (1 + math.cos(math.pi * min(at - warm, decay) / decay))


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite."""


class LossTally:
    """The running loss of an epoch and its first non-finite step, kept on the loss's device so
    that recording a step never waits for the device; :meth:`read` makes the one transfer."""

    def __init__(self, device: torch.device) -> None:
        self.total = torch.zeros((), dtype=torch.float64, device=device)
        self.bad_step = torch.zeros((), dtype=torch.long, device=device)  # 0: none yet
        self.bad_value = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0

    def record(self, loss: Tensor, step: int, clips: int) -> None:
        """Adds a step's mean loss (a scalar tensor) over ``clips`` clips."""
        loss = loss.detach().double()
        bad = ~torch.isfinite(loss) & (self.bad_step == 0)
        self.bad_step = torch.where(bad, step, self.bad_step)
        self.bad_value = torch.where(bad, loss, self.bad_value)
        self.total += loss * clips
        self.count += clips

    def read(self, phase: str) -> float:
        """The mean loss so far; raises :class:`NonFiniteLoss` naming the first bad step."""
        total, bad_step, bad_value = torch.stack(
            [self.total, self.bad_step.double(), self.bad_value]
        ).tolist()
        if bad_step:
            raise NonFiniteLoss(f"{phase}: loss is {bad_value} at step {int(bad_step)}")
        return total / max(self.count, 1)


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
    precision: str = "fp32",
    compile: bool = False,
    channels_last: bool = False,
    checkpoint: PhaseCheckpoint | None = None,
    schedule: LrSchedule | None = None,
    label_smoothing: float = 0.0,
    lr_log: list[float] | None = None,
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
        precision: ``fp32``, or ``bf16`` for bfloat16 autocast of the forward pass and the loss
            on a CUDA device (a model on the CPU trains in fp32: see :func:`autocast`).
        compile: run the forward pass through ``torch.compile(model)`` (same parameters).
        channels_last: train in the ``channels_last_3d`` memory format (model and clips); the
            model is back in the contiguous format on return.
        checkpoint: where the state is saved after every epoch; training resumes from it when
            an earlier attempt saved one (same weights, order and RNG draws as if uninterrupted).
        schedule: the learning-rate schedule this phase is part of (default: a cosine decay over
            this phase's own epochs, no warm-up).
        label_smoothing: of the cross-entropy (not of a replacing ``objective``).
        lr_log: receives the learning rate of every step.

    Batches are moved to the model's device (asynchronously from pinned memory). The loss is
    read back every step on CPU and every ``READ_EVERY`` steps on an accelerator; a non-finite
    loss raises :class:`NonFiniteLoss` naming the phase and its first bad step.

    Returns:
        The mean training loss of each epoch.
    """
    if epochs == 0:
        return []
    optimizer = make_optimizer(model.parameters())
    schedule = schedule or LrSchedule(total=epochs)
    per_epoch = len(loader)
    scheduler = LambdaLR(optimizer, lambda step: schedule.factor(step, per_epoch))
    model.train()
    device = next(model.parameters()).device
    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    forward = wrap(model)  # DDP under torchrun: gradients averaged over the ranks
    forward = torch.compile(forward) if compile else forward
    read_every = 1 if device.type == "cpu" else READ_EVERY
    done = checkpoint.restore(model, optimizer, scheduler) if checkpoint else Progress()
    losses, step = done.losses, done.step
    for epoch in range(done.epoch + 1, epochs + 1):
        tally = LossTally(device)
        bar = tqdm(loader, desc=f"{phase} {epoch}/{epochs}", leave=False, disable=not progress)
        for clips, labels, failed in bar:
            on_skipped(failed)
            step += 1
            fault_point(f"{phase}:step:{step}")
            if len(labels) == 0:
                continue
            clips = clips.to(device, non_blocking=True, memory_format=layout)  # (B, C, T, H, W)
            labels = labels.to(device, non_blocking=True)
            with autocast(device, precision):
                logits = forward(clips)  # (B, K)
                if objective is None:
                    loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
                else:
                    loss = objective(model, clips, labels, logits, step)
            tally.record(loss, step, len(labels))
            if step % read_every == 0:
                bar.set_postfix(loss=f"{tally.read(phase):.3f}")
            if lr_log is not None:
                lr_log.append(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step(step, optimizer)
            scheduler.step()
        losses.append(tally.read(phase))
        if checkpoint is not None:
            checkpoint.save(Progress(epoch, step, losses), model, optimizer, scheduler)
    model.to(memory_format=torch.contiguous_format)
    return losses


def autocast(device: torch.device, precision: str) -> torch.autocast | nullcontext:
    """bfloat16 autocast for ``precision="bf16"`` on a CUDA ``device``; nothing otherwise.

    On CPU, bf16 autocast is not used: its backward pass blew up I3D's gradients (max |grad|
    1e14 within 6 AdamW steps where fp32 stays below 20), so a CPU run trains in fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision}: one of {' | '.join(PRECISIONS)}")
    if precision == "fp32" or device.type != "cuda":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
