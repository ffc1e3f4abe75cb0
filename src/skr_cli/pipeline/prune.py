"""Scoring, selecting and removing channels, in ``prune.steps`` rounds; comparing heuristics."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from skr_cli.configs import config_dir
from skr_cli.engine.checkpoint import write_json
from skr_cli.errors import UserError
from skr_cli.heuristics import Heuristic
from skr_cli.heuristics.agreement import agreement
from skr_cli.pipeline.loaders import calibration_batches
from skr_cli.pipeline.outputs import phase_output, resumed
from skr_cli.pipeline.relocation import relocate, remove
from skr_cli.pipeline.runcontext import RunContext, seed_phase
from skr_cli.pipeline.training import trained
from skr_cli.pruning import plan as planning
from skr_cli.pruning.count import count_macs
from skr_cli.pruning.history import macs_after
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import Plan


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
    ``prune.target_macs`` (of the dense MACs). Every pruned layer keeps a multiple of
    ``prune.round_to`` channels."""
    prune, steps = ctx.cfg.prune, steps or ctx.cfg.prune.steps
    if prune.target_macs is None:
        done, goal = prune.ratio * (step - 1) / steps, prune.ratio * step / steps
        share = 1 - (1 - goal) / (1 - done)
        return planning.select(scores, share, prune.scope, prune.min_channels, prune.round_to)
    current = count_macs(model, ctx.example)
    goal = (1 - (1 - prune.target_macs) * step / steps) * dense_macs / current
    return planning.select_for_budget(
        scores,
        lambda plan: macs_after(model, plan, ctx.example) / current,
        goal,
        scope=prune.scope,
        min_channels=prune.min_channels,
        tolerance=prune.macs_tolerance,
        round_to=prune.round_to,
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


def compare_heuristics(ctx: RunContext, dense: nn.Module, dense_macs: int) -> dict[str, Any]:
    """Scores the dense model (of ``dense_macs`` MACs) with every heuristic of
    ``agreement.heuristics`` (on the same calibration batches), plans each at the run's budget
    in one round, and writes
    agreement.json: every heuristic's scores, and Kendall τ-b and Jaccard matrices per layer
    and averaged over layers."""

    def compute() -> dict[str, Any]:
        scores, plans = {}, {}
        for name in ctx.cfg.agreement.heuristics:
            scores[name] = score(ctx, dense, named_heuristic(ctx.cfg, name), step=1)
            plans[name] = choose_plan(ctx, dense, scores[name], 1, dense_macs, steps=1)
        return agreement(scores, plans) | {
            "scores": {name: {k: v.tolist() for k, v in s.items()} for name, s in scores.items()},
            "plans": plans,
        }

    return resumed(ctx, "agreement.json", compute)


def prune(
    ctx: RunContext, dense: nn.Module, heuristic: Heuristic, dense_macs: int
) -> tuple[nn.Module, list[Plan], list[dict[str, Any]]]:
    """``prune.steps`` rounds of score → select → (relocate →) remove, with a short fine-tune
    (``prune.step_epochs``) between rounds.

    Each round is recorded in plan.json as soon as it is chosen, and a rerun replays the
    recorded rounds instead of scoring again.

    Returns:
        The pruned copy of ``dense``, the plans of the rounds, and per round the record of its
        relocation phase and removal (also written to relocation.json).
    """
    path = phase_output(ctx, "plan.json")
    rounds = json.loads(path.read_text())["rounds"] if path.exists() else []
    model, plans = copy.deepcopy(dense), []
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
    return model, plans, records
