"""Training within a phase: the weights it produces are saved into the run directory, loaded
back on a rerun, and checkpointed after every epoch so a killed phase resumes where it stopped."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from skr_cli.engine.checkpoint import PhaseCheckpoint, load_state, partial_path, save_state
from skr_cli.engine.distributed import barrier
from skr_cli.engine.train import LrSchedule, Objective, StepCallback, train
from skr_cli.pipeline.loaders import train_loader
from skr_cli.pipeline.outputs import phase_output
from skr_cli.pipeline.runcontext import RunContext


def trained(
    ctx: RunContext,
    model: nn.Module,
    *,
    phase: str,
    settings: DictConfig,
    seed: int,
    output: str,
    after_step: StepCallback | None = None,
    extra: dict[str, Any] | None = None,
    objective: Objective | None = None,
    carried: dict[str, Any] | None = None,
    span: tuple[int, int] | None = None,
) -> nn.Module:
    """Trains ``model`` with a phase's settings (``train`` or ``finetune``) and saves its weights
    as ``output``; loads them instead when an earlier attempt already finished the phase.
    ``after_step`` runs after every optimiser step (the low-rank proximal step); ``extra`` is
    saved beside the weights (after training: a list in it filled while training is saved
    filled); ``objective`` replaces the cross-entropy (the relocation phase). ``span`` is
    (first epoch, total epochs) of the learning-rate schedule the phase is part of (default: its
    own ``settings.epochs``), with ``settings.warmup_epochs`` of warm-up at the schedule's start;
    the learning rate of every step is saved as ``lr``.

    The state after every epoch goes to ``<output>.partial`` (deleted once ``output`` is
    written): a killed phase resumes from its last finished epoch, with the lists of ``extra``,
    ``after_step``'s counters (when it has a ``state_dict``) and ``carried`` objects restored."""
    path = phase_output(ctx, output)
    if path.exists():
        model.load_state_dict(load_state(path)["model"])
        barrier()
        return model
    loader = train_loader(ctx, settings.batch_size, seed)
    start, total = span or (0, settings.epochs)
    lrs: list[float] = []
    extra = (extra or {}) | {"lr": lrs}
    kept = {key: value for key, value in extra.items() if isinstance(value, list)}
    if hasattr(after_step, "state_dict"):
        kept["after_step"] = after_step
    checkpoint = PhaseCheckpoint(
        partial_path(path),
        generator=getattr(loader.batch_sampler.sampler, "generator", None),
        carried=kept | (carried or {}),
    )
    losses = train(
        model,
        loader,
        epochs=settings.epochs,
        make_optimizer=instantiate(settings.optimizer),
        phase=phase,
        on_skipped=ctx.note_skipped,
        progress=ctx.cfg.progress,
        after_step=after_step,
        objective=objective,
        precision=settings.precision,
        compile=settings.compile,
        channels_last=settings.channels_last,
        checkpoint=checkpoint,
        schedule=LrSchedule(total, min(settings.warmup_epochs, total), start),
        label_smoothing=settings.label_smoothing,
        lr_log=lrs,
    )
    save_state(path, {"model": model.state_dict(), "losses": losses} | extra)
    checkpoint.discard()
    barrier()
    return model
