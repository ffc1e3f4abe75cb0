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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from skr_cli.data.clips import VideoClips, collate_clips
from skr_cli.engine.checkpoint import load_state, save_state, write_json
from skr_cli.engine.evaluate import evaluate, latency_ms
from skr_cli.engine.train import train
from skr_cli.heuristics import Heuristic
from skr_cli.pruning.count import MAC_CONVENTION, count_macs, count_params
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import Plan, select_local
from skr_cli.pruning.remove import remove_channels
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

    def note_skipped(self, paths: list[str]) -> None:
        self.skipped.update(paths)


def seed_phase(seed: int, phase: str) -> int:
    """Seeds every RNG from (seed, phase), so a phase's result does not depend on earlier phases'
    random draws — a resumed run gives the same numbers as an uninterrupted one."""
    derived = int(hashlib.sha256(f"{seed}:{phase}".encode()).hexdigest()[:8], 16)
    random.seed(derived)
    np.random.seed(derived)
    torch.manual_seed(derived)
    return derived


def train_loader(ctx: RunContext, batch_size: int, seed: int) -> DataLoader:
    workers = ctx.cfg.dataset.num_workers
    return DataLoader(
        ctx.train_set,
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(ctx.train_set) > batch_size,
        generator=torch.Generator().manual_seed(seed),
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
    ctx: RunContext, model: nn.Module, *, phase: str, settings: DictConfig, seed: int, output: str
) -> nn.Module:
    """Trains ``model`` with a phase's settings (``train`` or ``finetune``) and saves its weights
    as ``output``; loads them instead when an earlier attempt already finished the phase."""
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
    )
    save_state(path, {"model": model.state_dict(), "losses": losses})
    return model


def pretrain(ctx: RunContext) -> nn.Module:
    """Builds the model and trains it on the task (or loads it from an earlier attempt)."""
    seed = seed_phase(ctx.cfg.seed, "pretrain")
    model = instantiate(ctx.cfg.model)  # built after seeding: the init depends on the seed alone
    return trained(
        ctx, model, phase="pretrain", settings=ctx.cfg.train, seed=seed, output="dense.pt"
    )


def score(ctx: RunContext, model: nn.Module, heuristic: Heuristic) -> dict[str, torch.Tensor]:
    """One importance score per channel of every prunable layer."""
    path = phase_output(ctx, "scores.pt")
    if path.exists():
        return load_state(path)
    seed = seed_phase(ctx.cfg.seed, "score")
    batches = []
    if heuristic.needs_data:
        loader = train_loader(ctx, ctx.cfg.train.batch_size, seed)
        for clips, labels, failed in loader:
            ctx.note_skipped(failed)
            if len(labels):
                batches.append((clips, labels))
            if len(batches) == ctx.cfg.prune.calib_batches:
                break
    scores = heuristic.score(model, prunable_layers(model), batches)
    save_state(path, scores)
    return scores


def select(ctx: RunContext, scores: dict[str, torch.Tensor]) -> Plan:
    """The channels to remove: the same share of every layer, lowest scores first."""
    path = phase_output(ctx, "plan.json")
    if path.exists():
        return json.loads(path.read_text())
    plan = select_local(scores, ctx.cfg.prune.ratio)
    write_json(path, plan)
    return plan


def remove(ctx: RunContext, dense: nn.Module, plan: Plan) -> nn.Module:
    """A physically smaller copy of the dense model (the dense one is kept for comparison)."""
    return remove_channels(copy.deepcopy(dense), plan, ctx.example)


def finetune(ctx: RunContext, model: nn.Module) -> nn.Module:
    """Trains the pruned model with a fresh optimiser (removal replaced its parameters).

    Its weights go to final.pt; the architecture is the dense one minus plan.json.
    """
    seed = seed_phase(ctx.cfg.seed, "finetune")
    return trained(
        ctx, model, phase="finetune", settings=ctx.cfg.finetune, seed=seed, output="final.pt"
    )


def measure(ctx: RunContext, model: nn.Module, stage: str) -> dict[str, Any]:
    """Test-split accuracy and loss, parameters and MACs of one model."""
    path = phase_output(ctx, f"eval_{stage}.json")
    if path.exists():
        return json.loads(path.read_text())
    result = evaluate(model, test_loader(ctx), on_skipped=ctx.note_skipped)
    result |= {"params": count_params(model), "macs": count_macs(model, ctx.example)}
    write_json(path, result)
    return result


# ------------------------------------------------------------------------------------ the run


def timed(ctx: RunContext, phase: str, fn: Any, *args: Any) -> Any:
    start = time.perf_counter()
    result = fn(*args)
    ctx.timings[phase] = round(time.perf_counter() - start, 3)
    return result


def build_context(cfg: DictConfig, out_dir: Path) -> RunContext:
    """Prepares the data (generating the built-in set on first use) and an example clip."""
    source = instantiate(cfg.dataset)
    try:
        source.prepare()
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"dataset: {err}") from err
    train_set, test_set = source.clips("train", train=True), source.clips("test", train=False)
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
    heuristic: Heuristic = instantiate(cfg.heuristic)
    with wandb_run(
        mode=cfg.logger.mode,
        project=cfg.logger.project,
        group=cfg.logger.group,
        name=f"{names['heuristic']}-r{cfg.prune.ratio}-s{cfg.seed}",
        tags=[f"heuristic={names['heuristic']}", f"dataset={names['dataset']}"],
        config=OmegaConf.to_container(cfg, resolve=True),
        out_dir=out_dir,
    ) as tracker:
        dense = timed(ctx, "pretrain", pretrain, ctx)
        dense_eval = timed(ctx, "evaluate_dense", measure, ctx, dense, "dense")
        scores = timed(ctx, "score", score, ctx, dense, heuristic)
        plan = timed(ctx, "select", select, ctx, scores)
        pruned = timed(ctx, "remove", remove, ctx, dense, plan)
        pruned_eval = timed(ctx, "evaluate_pruned", measure, ctx, pruned, "pruned")
        final = timed(ctx, "finetune", finetune, ctx, pruned)
        final_eval = timed(ctx, "evaluate_final", measure, ctx, final, "final")
        latency = latency_ms({"dense": dense, "final": final}, ctx.example, cfg.eval.latency_runs)

        metrics = {
            "heuristic": names["heuristic"],
            "prune_ratio": cfg.prune.ratio,
            "relocation_strength": 0.0,  # this version has no relocation phase: the baseline
            "lowrank_weight": 0.0,  # nor a low-rank regulariser
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
            "delta_loss_remove": pruned_eval["loss"] - dense_eval["loss"],
            "speedup": latency["dense"] / latency["final"],
            "channels": {
                "before": sum(layer.channels for layer in prunable_layers(dense).values()),
                "after": sum(layer.channels for layer in prunable_layers(final).values()),
            },
            "skipped_videos": len(ctx.skipped),
            "timings_s": ctx.timings,
        }
        stages = ("dense", "pruned", "final")
        tracker.log({f"{stage}/{k}": v for stage in stages for k, v in metrics[stage].items()})
        tracker.summary.update(
            {"delta_loss_remove": metrics["delta_loss_remove"], "speedup": metrics["speedup"]}
        )
        write_metrics(out_dir / "metrics.json", metrics)
    return metrics
