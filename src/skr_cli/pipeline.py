"""The phase narrative of one run: pretrain → score → select → remove → fine-tune → evaluate.

This module and ``cli.py`` are the only ones that read the config; every phase below hands typed
values to the packages. Each phase writes its output into the run directory before the next one
starts, and a rerun into the same directory picks up the phases that already finished.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn
from torch.utils.data import DataLoader

from skr_cli.data.clips import SeededSampler, VideoClips, collate_clips
from skr_cli.engine.batchnorm import recalibrate_batchnorm
from skr_cli.engine.checkpoint import load_state, save_state, write_json
from skr_cli.engine.evaluate import evaluate, latency_ms
from skr_cli.engine.train import Objective, StepCallback, train
from skr_cli.heuristics import Heuristic
from skr_cli.heuristics.agreement import agreement
from skr_cli.heuristics.base import CalibBatch
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
from skr_cli.models import WeightsError
from skr_cli.pruning import plan as planning
from skr_cli.pruning.count import MAC_CONVENTION, count_macs, count_params
from skr_cli.pruning.history import macs_after
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import Plan
from skr_cli.pruning.remove import remove_channels
from skr_cli.relocation import (
    Consumer,
    Distillation,
    Penalty,
    Ramp,
    Relocation,
    calibration_loss,
    compensate,
    energy_share,
    find_consumers,
)
from skr_cli.tracking.metrics import write_metrics
from skr_cli.tracking.wandb_run import wandb_run


class UserError(Exception):
    """A mistake in what the user asked for: reported as one line, never as a traceback."""


@dataclass
class RunContext:
    """What every phase needs: the config, the output folder and the data."""

    cfg: DictConfig
    out_dir: Path
    train_set: VideoClips
    test_set: VideoClips
    example: torch.Tensor  # (1, C, T, H, W): traces the graph, counts MACs, times latency
    skipped: set[str] = field(default_factory=set)
    timings: dict[str, float] = field(default_factory=dict)
    tracker: Any = None  # the wandb run, set once it is started: ``ctx.tracker.log({...})``

    def note_skipped(self, paths: list[str]) -> None:
        """Counts videos that failed to decode; stops the run once more than
        ``dataset.max_skip_fraction`` of a split has failed, naming a few of them."""
        if not paths:
            return
        self.skipped.update(paths)
        limit = self.cfg.dataset.max_skip_fraction
        for split, dataset in (("train", self.train_set), ("test", self.test_set)):
            failed = sorted(self.skipped.intersection(dataset.paths))
            if len(failed) > limit * len(dataset):
                names = ", ".join(Path(path).name for path in failed[:3])
                raise UserError(
                    f"dataset: {len(failed)} of {len(dataset)} {split} videos cannot be decoded, "
                    f"more than dataset.max_skip_fraction={limit}: {names}"
                    + (", ..." if len(failed) > 3 else "")
                )


def seed_phase(seed: int, phase: str) -> int:
    """Seeds every RNG from (seed, phase), so a phase's result does not depend on earlier phases'
    random draws — a resumed run gives the same numbers as an uninterrupted one."""
    derived = int(hashlib.sha256(f"{seed}:{phase}".encode()).hexdigest()[:8], 16)
    random.seed(derived)
    np.random.seed(derived)
    torch.manual_seed(derived)
    return derived


def train_loader(ctx: RunContext, batch_size: int, seed: int) -> DataLoader:
    """Shuffled training clips; the order, each clip's start and its augmentation all come from
    ``seed`` in the main process, so the batches are the same whatever ``num_workers`` is."""
    workers = ctx.cfg.dataset.num_workers
    return DataLoader(
        ctx.train_set,
        batch_size=batch_size,
        sampler=SeededSampler(len(ctx.train_set), torch.Generator().manual_seed(seed)),
        drop_last=len(ctx.train_set) > batch_size,
        collate_fn=collate_clips,
        num_workers=workers,
        persistent_workers=workers > 0,
    )


def test_loader(ctx: RunContext) -> DataLoader:
    return DataLoader(
        ctx.test_set,
        batch_size=ctx.cfg.eval.batch_size,
        collate_fn=collate_clips,
        num_workers=ctx.cfg.dataset.num_workers,
    )


def phase_output(ctx: RunContext, name: str) -> Path:
    return ctx.out_dir / name


# ----------------------------------------------------------------------------------- the phases


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
) -> nn.Module:
    """Trains ``model`` with a phase's settings (``train`` or ``finetune``) and saves its weights
    as ``output``; loads them instead when an earlier attempt already finished the phase.
    ``after_step`` runs after every optimiser step (the low-rank proximal step); ``extra`` is
    saved beside the weights (after training: a list in it filled while training is saved
    filled); ``objective`` replaces the cross-entropy (the relocation phase)."""
    path = phase_output(ctx, output)
    if path.exists():
        model.load_state_dict(load_state(path)["model"])
        return model
    losses = train(
        model,
        train_loader(ctx, settings.batch_size, seed),
        epochs=settings.epochs,
        make_optimizer=instantiate(settings.optimizer),
        phase=phase,
        on_skipped=ctx.note_skipped,
        progress=ctx.cfg.progress,
        after_step=after_step,
        objective=objective,
    )
    save_state(path, {"model": model.state_dict(), "losses": losses} | (extra or {}))
    return model


def build_model(model_cfg: DictConfig) -> nn.Module:
    """The network of ``cfg.model``, with ``model.weights`` loaded; a checkpoint that does not
    fit becomes one line naming the keys."""
    try:
        return instantiate(model_cfg)
    except InstantiationException as err:
        if isinstance(err.__cause__, (WeightsError, FileNotFoundError)):
            raise UserError(f"model.weights: {err.__cause__}") from err
        raise


def pretrain(ctx: RunContext) -> nn.Module:
    """Builds the model and trains it on the task (or loads it from an earlier attempt)."""
    seed = seed_phase(ctx.cfg.seed, "pretrain")
    model = build_model(ctx.cfg.model)  # built after seeding: the init depends on the seed alone
    step = lowrank_step(ctx, model, "pretrain")
    return trained(
        ctx,
        model,
        phase="pretrain",
        settings=ctx.cfg.train,
        seed=seed,
        output="dense.pt",
        after_step=step,
    )


def calibration_batches(ctx: RunContext, phase: str) -> list[CalibBatch]:
    """``prune.calib_batches`` training batches (clips, labels), drawn from the phase's seed."""
    loader = train_loader(ctx, ctx.cfg.train.batch_size, seed_phase(ctx.cfg.seed, phase))
    batches: list[CalibBatch] = []
    for clips, labels, failed in loader:
        ctx.note_skipped(failed)
        if len(labels):
            batches.append((clips, labels))
        if len(batches) == ctx.cfg.prune.calib_batches:
            break
    return batches


def score(
    ctx: RunContext, model: nn.Module, heuristic: Heuristic, step: int
) -> dict[str, torch.Tensor]:
    """One importance score per channel of every prunable layer of ``model``."""
    batches = calibration_batches(ctx, f"score{step}") if heuristic.needs_data else []
    return heuristic.score(model, prunable_layers(model), batches)


def choose_plan(
    ctx: RunContext,
    model: nn.Module,
    scores: dict[str, torch.Tensor],
    step: int,
    dense_macs: int,
    steps: int | None = None,
) -> Plan:
    """The channels to remove in round ``step`` of ``steps`` (``prune.steps`` by default): each
    round takes an equal part of the way to ``prune.ratio`` (of the channels) or to
    ``prune.target_macs`` (of the dense MACs)."""
    prune, steps = ctx.cfg.prune, steps or ctx.cfg.prune.steps
    if prune.target_macs is None:
        done, goal = prune.ratio * (step - 1) / steps, prune.ratio * step / steps
        return planning.select(scores, 1 - (1 - goal) / (1 - done), prune.scope, prune.min_channels)
    current = count_macs(model, ctx.example)
    goal = (1 - (1 - prune.target_macs) * step / steps) * dense_macs / current
    return planning.select_for_budget(
        scores,
        lambda plan: macs_after(model, plan, ctx.example) / current,
        goal,
        scope=prune.scope,
        min_channels=prune.min_channels,
        tolerance=prune.macs_tolerance,
    )


def plan_record(scores: dict[str, torch.Tensor], plan: Plan) -> dict[str, Any]:
    """One round of plan.json: per layer, its channel count, every channel's score and the
    indices removed (indices count within the model that round started from)."""
    return {
        name: {"channels": len(values), "scores": values.tolist(), "removed": plan[name]}
        for name, values in scores.items()
    }


def named_heuristic(cfg: DictConfig, name: str) -> Heuristic:
    """The heuristic of ``conf/heuristic/<name>.yaml``, its interpolations resolved against the
    run's config (e.g. ``random``'s seed)."""
    from skr_cli.cli import config_dir  # the CLI owns the config folder; imported when needed

    composed = copy.deepcopy(cfg)
    with open_dict(composed):
        composed.heuristic = OmegaConf.load(Path(config_dir()) / "heuristic" / f"{name}.yaml")
    return build_heuristic(composed.heuristic)


def build_heuristic(settings: DictConfig) -> Heuristic:
    """The heuristic a ``heuristic`` config node describes; a bad setting becomes one line."""
    try:
        return instantiate(settings)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError):
            raise UserError(f"heuristic: {err.__cause__}") from err
        raise


def compare_heuristics(ctx: RunContext, dense: nn.Module) -> dict[str, Any]:
    """Scores the dense model with every heuristic of ``agreement.heuristics`` (on the same
    calibration batches), plans each at the run's budget in one round, and writes
    agreement.json: every heuristic's scores, and Kendall τ-b and Jaccard matrices per layer
    and averaged over layers."""
    path = phase_output(ctx, "agreement.json")
    if path.exists():
        return json.loads(path.read_text())
    dense_macs = count_macs(dense, ctx.example)
    scores, plans = {}, {}
    for name in ctx.cfg.agreement.heuristics:
        scores[name] = score(ctx, dense, named_heuristic(ctx.cfg, name), step=1)
        plans[name] = choose_plan(ctx, dense, scores[name], 1, dense_macs, steps=1)
    result = agreement(scores, plans) | {
        "scores": {name: {k: v.tolist() for k, v in s.items()} for name, s in scores.items()},
        "plans": plans,
    }
    write_json(path, result)
    return result


def prune(ctx: RunContext, dense: nn.Module, heuristic: Heuristic) -> tuple[nn.Module, list[Plan]]:
    """``prune.steps`` rounds of score → select → remove, with a short fine-tune
    (``prune.step_epochs``) between rounds; returns the pruned copy of ``dense`` and the plans.

    Each round is recorded in plan.json as soon as it is chosen, and a rerun replays the
    recorded rounds instead of scoring again.
    """
    path = phase_output(ctx, "plan.json")
    rounds = json.loads(path.read_text())["rounds"] if path.exists() else []
    model, plans = copy.deepcopy(dense), []
    dense_macs = count_macs(dense, ctx.example)
    steps = ctx.cfg.prune.steps
    fixed = calibration_batches(ctx, "removal")  # the loss jump at each removal is measured here
    records = []  # per round: the relocation phase and the removal (relocation.json)
    for step in range(1, steps + 1):
        if step > len(rounds):
            scores = score(ctx, model, heuristic, step)
            rounds.append(plan_record(scores, choose_plan(ctx, model, scores, step, dense_macs)))
            write_json(path, {"heuristic": heuristic.name, "rounds": rounds})
        plan = {name: layer["removed"] for name, layer in rounds[step - 1].items()}
        plans.append(plan)
        model, phase = relocate(ctx, model, dense, plan, step)
        records.append({"round": step, "phase": phase, "removal": remove(ctx, model, plan, fixed)})
        if step < steps:
            settings = OmegaConf.merge(ctx.cfg.finetune, {"epochs": ctx.cfg.prune.step_epochs})
            seed = seed_phase(ctx.cfg.seed, f"prune_step{step}")
            model = trained(
                ctx,
                model,
                phase=f"step {step}",
                settings=settings,
                seed=seed,
                output=f"step{step}.pt",
            )
    write_json(phase_output(ctx, "relocation.json"), {"rounds": records})
    return model, plans


def finetune(ctx: RunContext, model: nn.Module, plans: list[Plan]) -> nn.Module:
    """Trains the pruned model with a fresh optimiser (removal replaced its parameters).

    Its weights go to final.pt with the removal plans and the clip shape, so that
    ``skr_cli.pruning.history.load_pruned`` rebuilds it from the dense architecture.
    When relocation phases ran, their epochs come out of ``finetune.epochs`` (a fair budget).
    """
    seed = seed_phase(ctx.cfg.seed, "finetune")
    step = lowrank_step(ctx, model, "finetune")
    settings = ctx.cfg.finetune
    if relocation_active(ctx.cfg):
        spent = ctx.cfg.relocation.epochs * ctx.cfg.prune.steps
        settings = OmegaConf.merge(settings, {"epochs": settings.epochs - spent})
    return trained(
        ctx,
        model,
        phase="finetune",
        settings=settings,
        seed=seed,
        output="final.pt",
        after_step=step,
        extra={"plans": plans, "clip": list(ctx.example.shape[1:])},  # see pruned_checkpoint
    )


def measure_recalibrated(ctx: RunContext, model: nn.Module) -> dict[str, Any]:
    """Test accuracy of a copy of ``model`` whose batch-norm statistics were re-estimated on
    calibration batches, with no gradient step (the ``*_bn_recal`` entries of ``pruned``)."""
    path = phase_output(ctx, "eval_pruned_bn_recal.json")
    if path.exists():
        return json.loads(path.read_text())
    recalibrated = copy.deepcopy(model)
    recalibrate_batchnorm(recalibrated, calibration_batches(ctx, "bn_recal"))
    result = evaluate(recalibrated, test_loader(ctx), on_skipped=ctx.note_skipped)
    keys = ("top1", "top5", "video_top1", "video_top5", "loss")
    result = {f"{key}_bn_recal": result[key] for key in keys}
    write_json(path, result)
    return result


def measure(ctx: RunContext, model: nn.Module, stage: str) -> dict[str, Any]:
    """Test-split accuracy and loss, parameters and MACs of one model."""
    path = phase_output(ctx, f"eval_{stage}.json")
    if path.exists():
        return json.loads(path.read_text())
    result = evaluate(model, test_loader(ctx), on_skipped=ctx.note_skipped)
    result |= {"params": count_params(model), "macs": count_macs(model, ctx.example)}
    write_json(path, result)
    return result


# -------------------------------------------------------------------- soft knowledge relocation


def relocation_active(cfg: DictConfig) -> bool:
    """Whether a relocation phase trains before each removal (a penalty or distillation)."""
    settings = cfg.relocation
    return settings.epochs > 0 and (settings.strength > 0 or settings.distill.weight > 0)


def planned_consumers(ctx: RunContext, model: nn.Module, plan: Plan) -> dict[str, list[Consumer]]:
    """The layers reading each planned layer's channels; an unsupported one is one line."""
    try:
        return find_consumers(model, prunable_layers(model), plan, ctx.example)
    except ValueError as err:
        raise UserError(f"relocation: {err}") from err


def relocation_objective(
    ctx: RunContext, model: nn.Module, dense: nn.Module, plan: Plan, step: int
) -> Relocation:
    """Round ``step``'s objective: task loss + λ(t)·R(plan) (+ distillation to ``dense``)."""
    settings = ctx.cfg.relocation
    layers = prunable_layers(model)
    wanted = settings.target in ("weights", "all")
    consumers = planned_consumers(ctx, model, plan) if wanted else {}
    steps = settings.epochs * len(train_loader(ctx, ctx.cfg.finetune.batch_size, 0))
    ramp = Ramp(settings.schedule, settings.strength, settings.exp_rate, steps)
    distillation = None
    if settings.distill.weight > 0:
        teacher = dense.eval()  # never trained again: pruning works on a copy
        distillation = Distillation(teacher, settings.distill.weight, settings.distill.temperature)

    def log(parts: dict[str, float]) -> None:
        if ctx.tracker is not None:
            ctx.tracker.log({f"relocation/{key}": value for key, value in parts.items()})

    try:
        penalty = Penalty(layers, plan, consumers, settings.target)
        return Relocation(
            penalty, ramp, settings.balance, settings.decoupled, distillation, on_log=log
        )
    except ValueError as err:
        raise UserError(str(err)) from err


def relocate(
    ctx: RunContext, model: nn.Module, dense: nn.Module, plan: Plan, step: int
) -> tuple[nn.Module, dict[str, Any]]:
    """Round ``step``'s relocation phase (relocated{step}.pt, resumed like every phase); the
    model unchanged and an empty record when relocation is off.

    Returns the model and the phase's record: per epoch the mean task loss, penalty (and
    distillation term), λ at the end, and the planned channels' share ‖γ_S‖/‖γ‖ before and after.
    """
    if not relocation_active(ctx.cfg):
        return model, {}
    settings = ctx.cfg.relocation
    output = f"relocated{step}.pt"
    start = energy_share(prunable_layers(model), plan)
    objective = None
    if not phase_output(ctx, output).exists():
        objective = relocation_objective(ctx, model, dense, plan, step)
    history = objective.history if objective is not None else []
    brief = OmegaConf.merge(ctx.cfg.finetune, {"epochs": settings.epochs})
    seed = seed_phase(ctx.cfg.seed, f"relocation{step}")
    callbacks = [objective.after_step] if objective is not None else []
    callbacks += [cb for cb in (lowrank_step(ctx, model, "relocation"),) if cb is not None]

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
        )
    if objective is None:  # resumed: the phase's log was saved with its weights
        history = load_state(phase_output(ctx, output))["relocation"]
    # the running statistics (momentum 0.01 in I3D) lag behind weights that moved within one
    # short phase: re-estimate them, with no gradient step, before the loss at removal is measured
    recalibrate_batchnorm(model, calibration_batches(ctx, f"relocation{step}_bn"))
    end = energy_share(prunable_layers(model), plan)
    return model, phase_record(history, settings.epochs) | {
        "energy_share_start": start["total"],
        "energy_share_end": end["total"],
        "energy_share_end_mean": end["mean"],
    }


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


def relocation_metrics(ctx: RunContext) -> dict[str, Any]:
    """The ``relocation`` block of metrics.json: the settings and every round's record."""
    settings = OmegaConf.to_container(ctx.cfg.relocation, resolve=True)
    rounds = json.loads(phase_output(ctx, "relocation.json").read_text())["rounds"]
    return {"active": relocation_active(ctx.cfg), **settings, "rounds": rounds}


# -------------------------------------------------------------------- compression-aware training

# Training phases in which the low-rank regulariser can be active (`lowrank.phases`).
LOWRANK_PHASES = ("pretrain", "relocation", "finetune")


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
    path = phase_output(ctx, "truncation.json")
    if path.exists():
        return json.loads(path.read_text())
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
    plot_spectra(spectra, ranks, settings.energy, phase_output(ctx, "spectra.png"), title)
    write_json(path, plan)
    return plan


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
        brief = OmegaConf.merge(ctx.cfg.finetune, {"epochs": settings.finetune_epochs})
        output = "factorised.pt"
        trained(ctx, factorised, phase="factorised", settings=brief, seed=seed, output=output)
    stages["after"] = measure(ctx, factorised, "factorised")
    runs = ctx.cfg.eval.latency_runs
    latency = latency_ms({"before": model, "after": factorised}, ctx.example, runs)
    for stage in ("before", "after"):
        stages[stage]["latency_ms"] = latency[stage]
    if ctx.tracker is not None:
        ctx.tracker.log({f"factorised/{k}": v for k, v in stages["after"].items()})
    summary = {"energy": settings.energy, "rank_fraction": settings.rank_fraction}
    return summary | stages | {"speedup": latency["before"] / latency["after"], "layers": plan}


# ------------------------------------------------------------------------------------ the run


def timed(ctx: RunContext, phase: str, fn: Any, *args: Any) -> Any:
    start = time.perf_counter()
    result = fn(*args)
    ctx.timings[phase] = round(time.perf_counter() - start, 3)
    return result


def build_context(cfg: DictConfig, out_dir: Path) -> RunContext:
    """Prepares the data (generating the built-in set on first use) and an example clip."""
    source = instantiate(cfg.dataset)
    try:  # a missing root or split file, or a malformed one, stops here in one line
        source.prepare()
        train_set, test_set = source.clips("train", train=True), source.clips("test", train=False)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"dataset: {err}") from err
    for split, dataset in (("train", train_set), ("test", test_set)):
        if len(dataset) == 0:
            raise UserError(f"dataset: the {split} split lists no video (see dataset.splits)")
    example = torch.zeros(1, 3, cfg.dataset.frames, cfg.dataset.size, cfg.dataset.size)
    return RunContext(cfg, out_dir, train_set, test_set, example)


def check_run_dir(cfg: DictConfig, out_dir: Path) -> None:
    """Refuses to resume into a folder that holds the outputs of a different config."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("logger", None)
    resolved.pop("progress", None)
    key = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()
    path = out_dir / "run_key.json"
    if path.exists() and json.loads(path.read_text())["key"] != key:
        raise UserError(f"{out_dir} holds a run of another config; choose a new hydra.run.dir")
    write_json(path, {"key": key})


def run(cfg: DictConfig, out_dir: Path, names: dict[str, str]) -> dict[str, Any]:
    """Runs every phase and writes metrics.json (last, atomically); returns the metrics.

    Args:
        cfg: the composed config.
        out_dir: the run's output folder.
        names: the chosen option of each config group (``dataset``, ``model``, ``heuristic``).
    """
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    check_run_dir(cfg, out_dir)
    ctx = build_context(cfg, out_dir)
    heuristic = build_heuristic(cfg.heuristic)
    with wandb_run(
        mode=cfg.logger.mode,
        project=cfg.logger.project,
        group=cfg.logger.group,
        name=f"{names['heuristic']}-r{cfg.prune.ratio}-s{cfg.seed}",
        tags=[f"heuristic={names['heuristic']}", f"dataset={names['dataset']}"],
        config=OmegaConf.to_container(cfg, resolve=True),
        out_dir=out_dir,
    ) as tracker:
        ctx.tracker = tracker
        dense = timed(ctx, "pretrain", pretrain, ctx)
        dense_eval = timed(ctx, "evaluate_dense", measure, ctx, dense, "dense")
        agreed = None  # several heuristics scored on the same dense model
        if cfg.agreement.heuristics:
            agreed = timed(ctx, "agreement", compare_heuristics, ctx, dense)
            if cfg.agreement.only:
                return {"agreement": agreed, "dense": dense_eval, "out_dir": str(out_dir)}
        pruned, plans = timed(ctx, "prune", prune, ctx, dense, heuristic)
        relocated = relocation_metrics(ctx)  # relocation phases and loss jumps, per round
        pruned_eval = timed(ctx, "evaluate_pruned", measure, ctx, pruned, "pruned")
        pruned_eval |= timed(ctx, "bn_recal", measure_recalibrated, ctx, pruned)
        final = timed(ctx, "finetune", finetune, ctx, pruned, plans)
        final_eval = timed(ctx, "evaluate_final", measure, ctx, final, "final")
        latency = latency_ms({"dense": dense, "final": final}, ctx.example, cfg.eval.latency_runs)
        lowrank = None  # compression-aware training: the factorised fine-tuned model
        if truncation_enabled(cfg):
            lowrank = timed(ctx, "truncate", truncate, ctx, final, final_eval)

        metrics = {
            "heuristic": names["heuristic"],
            "prune_ratio": cfg.prune.ratio,
            "relocation_strength": cfg.relocation.strength,
            "lowrank_weight": cfg.lowrank.weight,
            "seed": cfg.seed,
            "dataset": names["dataset"],
            "model": names["model"],
            "mac_convention": {
                "clip": [cfg.dataset.frames, cfg.dataset.size, cfg.dataset.size],
                "unit": "MACs",
                "description": MAC_CONVENTION,
            },
            "dense": dense_eval | {"latency_ms": latency["dense"]},
            "pruned": pruned_eval,
            "final": final_eval | {"latency_ms": latency["final"]},
            # the loss jump on fixed calibration batches right before → right after removal
            # (summed over rounds); delta_loss_test: pruned minus dense loss on the test split
            "delta_loss_remove": sum(r["removal"]["delta_loss"] for r in relocated["rounds"]),
            "delta_loss_test": pruned_eval["loss"] - dense_eval["loss"],
            "relocation": relocated,
            "speedup": latency["dense"] / latency["final"],
            "channels": {
                "before": sum(layer.channels for layer in prunable_layers(dense).values()),
                "after": sum(layer.channels for layer in prunable_layers(final).values()),
            },
            "prune": {
                "scope": cfg.prune.scope,
                "steps": cfg.prune.steps,
                "target_macs": cfg.prune.target_macs,
                "min_channels": cfg.prune.min_channels,
                "macs_share": final_eval["macs"] / dense_eval["macs"],
            },
            "data": {
                "skipped": len(ctx.skipped),  # videos that could not be decoded, skipped
                "skipped_files": sorted(Path(path).name for path in ctx.skipped)[:10],
            },
            "timings_s": ctx.timings,
        }
        if agreed is not None:  # means over layers; agreement.json has them per layer
            metrics["agreement"] = {
                "heuristics": agreed["heuristics"],
                "kendall_tau": agreed["kendall_tau"]["mean"],
                "jaccard": agreed["jaccard"]["mean"],
            }
        if lowrank is not None:
            metrics["lowrank"] = lowrank  # per-layer ranks; before/after truncation
        stages = ("dense", "pruned", "final")
        tracker.log({f"{stage}/{k}": v for stage in stages for k, v in metrics[stage].items()})
        tracker.summary.update(
            {"delta_loss_remove": metrics["delta_loss_remove"], "speedup": metrics["speedup"]}
        )
        write_metrics(out_dir / "metrics.json", metrics)
    return metrics
