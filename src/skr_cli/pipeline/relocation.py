"""Soft Knowledge Relocation in a run: the phase that moves knowledge out of the planned
channels before each removal, and the (compensating) removal itself."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from skr_cli.engine.batchnorm import recalibrate_batchnorm
from skr_cli.engine.checkpoint import load_state
from skr_cli.errors import UserError
from skr_cli.heuristics.base import CalibBatch
from skr_cli.pipeline.loaders import calibration_batches, train_loader
from skr_cli.pipeline.lowrank import lowrank_step
from skr_cli.pipeline.outputs import phase_output
from skr_cli.pipeline.runcontext import RunContext, seed_phase
from skr_cli.pipeline.training import trained
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import Plan
from skr_cli.pruning.remove import remove_channels
from skr_cli.relocation import (
    Consumer,
    Distillation,
    Penalty,
    Ramp,
    Relocation,
    SpanPenalty,
    calibration_loss,
    compensate,
    energy_share,
    find_consumers,
    span_share,
    span_sites,
    target_terms,
)


def relocation_active(cfg: DictConfig) -> bool:
    """Whether a relocation phase trains before each removal (a penalty or distillation)."""
    settings = cfg.relocation
    return settings.epochs > 0 and (settings.strength > 0 or settings.distill.weight > 0)


def configured_target(cfg: DictConfig) -> str | list[str]:
    """``relocation.target`` as plain values: a name or a list of names."""
    target = cfg.relocation.target
    return target if isinstance(target, str) else list(target)


def penalised_terms(cfg: DictConfig) -> frozenset[str]:
    """The terms of R that ``relocation.target`` sums (bn, weights, activation, span)."""
    try:
        return target_terms(configured_target(cfg))
    except ValueError as err:
        raise UserError(str(err)) from err


def planned_consumers(ctx: RunContext, model: nn.Module, plan: Plan) -> dict[str, list[Consumer]]:
    """The layers reading each planned layer's channels; an unsupported one is one line."""
    try:
        return find_consumers(model, prunable_layers(model), plan, ctx.example)
    except ValueError as err:
        raise UserError(f"relocation: {err}") from err


def dense_teacher(cfg: DictConfig, dense: nn.Module) -> Distillation | None:
    """The dense model as the teacher of ``relocation.distill`` (None with weight 0), for the
    relocation phase and, with ``distill.finetune``, fine-tuning after removal."""
    distill = cfg.relocation.distill
    if distill.weight <= 0:
        return None
    # in eval mode and never trained again: pruning works on a copy
    return Distillation(dense.eval(), distill.weight, distill.temperature)


def relocation_objective(
    ctx: RunContext, model: nn.Module, dense: nn.Module, plan: Plan, step: int
) -> Relocation:
    """Round ``step``'s objective: task loss + λ(t)·R(plan) (+ distillation to ``dense``)."""
    settings = ctx.cfg.relocation
    layers = prunable_layers(model)
    terms = penalised_terms(ctx.cfg)
    wanted = not terms.isdisjoint(("weights", "span"))
    consumers = planned_consumers(ctx, model, plan) if wanted else {}
    span = None
    if "span" in terms:
        span = SpanPenalty(consumers, settings.ridge, settings.span_positions)
    steps = settings.epochs * len(train_loader(ctx, ctx.cfg.finetune.batch_size, 0))
    ramp = Ramp(settings.schedule, settings.strength, settings.exp_rate, steps)
    distillation = dense_teacher(ctx.cfg, dense)

    def log(parts: dict[str, float]) -> None:
        if ctx.tracker is not None:
            ctx.tracker.log({f"relocation/{key}": value for key, value in parts.items()})

    try:
        penalty = Penalty(layers, plan, consumers, configured_target(ctx.cfg), span)
        return Relocation(
            penalty,
            ramp,
            settings.balance,
            settings.decoupled,
            distillation,
            on_log=log,
            label_smoothing=ctx.cfg.finetune.label_smoothing,
        )
    except ValueError as err:
        raise UserError(str(err)) from err


def relocate(
    ctx: RunContext, model: nn.Module, dense: nn.Module, plan: Plan, step: int
) -> tuple[nn.Module, dict[str, Any]]:
    """Round ``step``'s relocation phase (relocated{step}.pt, resumed like every phase); the
    model unchanged and an empty record when relocation is off.

    Returns the model and the phase's record: per epoch the mean task loss, penalty (and
    distillation term), λ at the end, and the planned channels' share ‖γ_S‖/‖γ‖ before and after;
    with the ``span`` target, their residual share before and after (per layer and averaged).
    """
    if not relocation_active(ctx.cfg):
        return model, {}
    settings = ctx.cfg.relocation
    output = f"relocated{step}.pt"
    start = energy_share(prunable_layers(model), plan)
    span = SpanMeasure(ctx, model, plan, step) if "span" in penalised_terms(ctx.cfg) else None
    span_start = span() if span is not None else {}
    objective = None
    if not phase_output(ctx, output).exists():
        objective = relocation_objective(ctx, model, dense, plan, step)
    history = objective.history if objective is not None else []
    brief = OmegaConf.merge(ctx.cfg.finetune, {"epochs": settings.epochs})
    seed = seed_phase(ctx.cfg.seed, f"relocation{step}")
    decoupled = objective.after_step if objective is not None else None
    proximal = lowrank_step(ctx, model, "relocation")
    callbacks = [callback for callback in (decoupled, proximal) if callback is not None]

    def after_step(index: int, optimizer: torch.optim.Optimizer) -> None:
        for callback in callbacks:  # the decoupled penalty, then the low-rank proximal step
            callback(index, optimizer)

    with objective.penalty.hooks() if objective is not None else nullcontext():
        model = trained(
            ctx,
            model,
            phase=f"relocation {step}",
            settings=brief,
            seed=seed,
            output=output,
            after_step=after_step,
            extra={"relocation": history},  # filled while training, saved after it
            objective=objective,
            carried={"proximal": proximal} if proximal is not None else None,
            # the first part of the one schedule that fine-tuning continues after removal
            span=((step - 1) * settings.epochs, ctx.cfg.finetune.epochs),
        )
    if objective is None:  # resumed: the phase's log was saved with its weights
        history = load_state(phase_output(ctx, output))["relocation"]
    # the running statistics (momentum 0.01 in I3D) lag behind weights that moved within one
    # short phase: re-estimate them, with no gradient step, before the loss at removal is measured
    recalibrate_batchnorm(model, calibration_batches(ctx, f"relocation{step}_bn"))
    end = energy_share(prunable_layers(model), plan)
    record = phase_record(history, settings.epochs) | {
        "energy_share_start": start["total"],
        "energy_share_end": end["total"],
        "energy_share_end_mean": end["mean"],
    }
    if span is not None:
        span_end = span()
        record |= {
            "span_share_start": span_start["mean"],
            "span_share_end": span_end["mean"],
            "span_share_layers_start": span_start["layers"],
            "span_share_layers_end": span_end["layers"],
        }
    return model, record


class SpanMeasure:
    """The planned layers' residual share (``span``) on round ``step``'s own calibration
    batches in eval mode: called before the phase and after it, on the same batches."""

    def __init__(self, ctx: RunContext, model: nn.Module, plan: Plan, step: int) -> None:
        self.model = model
        self.sites = span_sites(planned_consumers(ctx, model, plan))
        self.batches = calibration_batches(ctx, f"relocation{step}_span")
        self.ridge = ctx.cfg.relocation.ridge

    def __call__(self) -> dict[str, Any]:
        return span_share(self.model, self.sites, self.batches, self.ridge)


def phase_record(history: list[dict[str, float]], epochs: int) -> dict[str, Any]:
    """Per-epoch means of the task loss, penalty and distillation term of a relocation phase's
    step log, and λ at its end."""
    per_epoch = max(len(history) // max(epochs, 1), 1)
    chunks = [history[i : i + per_epoch] for i in range(0, len(history), per_epoch)]
    means = {
        key: [sum(entry[key] for entry in chunk) / len(chunk) for chunk in chunks]
        for key in ("task", "penalty", "distill")
        if history and key in history[0]
    }
    return {
        "task_loss": means.get("task", []),
        "penalty": means.get("penalty", []),
        "distill": means.get("distill", []),
        "lambda_end": history[-1]["lambda"] if history else 0.0,
    }


def remove(ctx: RunContext, model: nn.Module, plan: Plan, fixed: list[CalibBatch]) -> dict:
    """Removes ``plan``'s channels — first folding them into their consumers when
    ``relocation.compensate`` — and measures the loss on the ``fixed`` calibration batches right
    before and right after (their difference is the loss jump at removal)."""
    before = calibration_loss(model, fixed)
    record: dict[str, Any] = {}
    if ctx.cfg.relocation.compensate:
        consumers = planned_consumers(ctx, model, plan)
        batches = calibration_batches(ctx, "compensate")  # fitted apart from the measurement
        residuals = compensate(model, consumers, batches, ctx.cfg.relocation.ridge)
        record["fit_residual_mean"] = sum(residuals.values()) / max(len(residuals), 1)
    remove_channels(model, plan, ctx.example)
    after = calibration_loss(model, fixed)
    return record | {"loss_before": before, "loss_after": after, "delta_loss": after - before}


def relocation_metrics(ctx: RunContext, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``relocation`` block of metrics.json: the settings and every round's record."""
    settings = OmegaConf.to_container(ctx.cfg.relocation, resolve=True)
    return {"active": relocation_active(ctx.cfg), **settings, "rounds": rounds}
