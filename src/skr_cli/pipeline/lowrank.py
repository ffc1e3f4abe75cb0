"""Compression-aware training in a run: the proximal step during training phases and the
truncation of the fine-tuned network into factorised convolutions."""

from __future__ import annotations

import copy
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from skr_cli.engine.distributed import is_main
from skr_cli.errors import UserError
from skr_cli.lowrank import (
    ProximalStep,
    factorise,
    output_positions,
    plot_spectra,
    select_convs,
    singular_values,
    spectrum_charts,
    truncation_plan,
)
from skr_cli.pipeline.measure import measure, measure_latency
from skr_cli.pipeline.outputs import phase_output, resumed
from skr_cli.pipeline.runcontext import RunContext, seed_phase
from skr_cli.pipeline.training import trained

# Training phases in which the low-rank regulariser can be active (`lowrank.phases`).


def chosen_convs(ctx: RunContext, model: nn.Module) -> dict[str, nn.Conv3d]:
    """The Conv3d layers of ``model`` that ``lowrank.layers`` names."""
    layers = ctx.cfg.lowrank.layers
    try:
        return select_convs(model, layers if isinstance(layers, str) else list(layers))
    except ValueError as err:
        raise UserError(str(err)) from err


def lowrank_step(ctx: RunContext, model: nn.Module, phase: str) -> ProximalStep | None:
    """The proximal step of compression-aware training in ``phase``; None where it is off.

    Each application logs every layer's rank at ``lowrank.energy``, effective rank and SVD
    entropy as charts ``lowrank/<phase>/<layer>/...``.
    """
    settings = ctx.cfg.lowrank
    if phase not in settings.phases or (settings.weight == 0 and settings.group_weight == 0):
        return None

    def chart(spectra: dict[str, torch.Tensor]) -> None:
        if ctx.tracker is not None:
            ctx.tracker.log(spectrum_charts(spectra, settings.energy, f"lowrank/{phase}"))

    return ProximalStep(
        chosen_convs(ctx, model),
        weight=settings.weight,
        group_weight=settings.group_weight,
        l1_ratio=settings.l1_ratio,
        every=settings.prox_every,
        on_spectra=chart,
    )


def truncation_enabled(cfg: DictConfig) -> bool:
    """``lowrank.truncate``; when null, whether a low-rank or group regulariser was on."""
    if cfg.lowrank.truncate is not None:
        return bool(cfg.lowrank.truncate)
    return cfg.lowrank.weight > 0 or cfg.lowrank.group_weight > 0


def truncation(ctx: RunContext, model: nn.Module) -> dict[str, dict[str, Any]]:
    """Per-layer kept ranks from ``model``'s spectra (truncation.json), plotted in spectra.png."""

    def compute() -> dict[str, dict[str, Any]]:
        settings = ctx.cfg.lowrank
        convs = chosen_convs(ctx, model)
        spectra = singular_values(convs)
        plan = truncation_plan(
            convs,
            spectra,
            output_positions(model, convs, ctx.example),
            energy=settings.energy,
            rank_fraction=settings.rank_fraction,
        )
        title = f"lowrank.weight={settings.weight}, energy={settings.energy}"
        ranks = {name: layer["rank"] for name, layer in plan.items()}
        if is_main():  # under torchrun only rank 0 writes
            plot_spectra(spectra, ranks, settings.energy, phase_output(ctx, "spectra.png"), title)
        return plan

    return resumed(ctx, "truncation.json", compute)


def truncate(ctx: RunContext, model: nn.Module, before: dict[str, Any]) -> dict[str, Any]:
    """Factorises the chosen layers of the fine-tuned model where that saves weights, fine-tunes
    the result for ``lowrank.finetune_epochs`` (then "truncated" is measured before that), and
    evaluates it ("after", eval_factorised.json) against ``before`` side by side."""
    settings = ctx.cfg.lowrank
    plan = truncation(ctx, model)
    ranks = {name: layer["rank"] for name, layer in plan.items() if layer["factorised"]}
    factorised = factorise(copy.deepcopy(model), ranks)
    stages: dict[str, Any] = {"before": dict(before)}
    if settings.finetune_epochs > 0:
        stages["truncated"] = measure(ctx, factorised, "truncated")
        seed = seed_phase(ctx.cfg.seed, "lowrank_finetune")
        brief = OmegaConf.merge(
            ctx.cfg.finetune, {"epochs": settings.finetune_epochs, "warmup_epochs": 0}
        )
        output = "factorised.pt"
        trained(ctx, factorised, phase="factorised", settings=brief, seed=seed, output=output)
    stages["after"] = measure(ctx, factorised, "factorised")
    times = measure_latency(ctx, {"before": model, "after": factorised})
    for stage in ("before", "after"):
        stages[stage]["latency_ms"] = times[stage]
    if ctx.tracker is not None:
        ctx.tracker.log({f"factorised/{k}": v for k, v in stages["after"].items()})
    summary = {"energy": settings.energy, "rank_fraction": settings.rank_fraction}
    return summary | stages | {"speedup": times["before"] / times["after"], "layers": plan}
