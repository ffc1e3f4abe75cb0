"""The phase narrative of one run: pretrain → (score → select → relocate → remove) ×
``prune.steps`` → fine-tune → evaluate → (truncate), then metrics.json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from skr_cli.engine.batchnorm import recalibrate_batchnorm
from skr_cli.engine.checkpoint import load_state, write_json
from skr_cli.pipeline.dense import measure_dense, pretrain
from skr_cli.pipeline.loaders import calibration_batches
from skr_cli.pipeline.lowrank import lowrank_step, truncate, truncation_enabled
from skr_cli.pipeline.measure import (
    latency_form,
    measure,
    measure_latency,
    measure_recalibrated,
    timed,
)
from skr_cli.pipeline.outputs import check_run_dir, phase_output
from skr_cli.pipeline.prune import build_heuristic, compare_heuristics, prune
from skr_cli.pipeline.relocation import dense_teacher, relocation_active, relocation_metrics
from skr_cli.pipeline.runcontext import RunContext, build_context, seed_phase
from skr_cli.pipeline.training import trained
from skr_cli.pruning.count import MAC_CONVENTION
from skr_cli.pruning.history import pruning_history
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import Plan
from skr_cli.relocation import Distilled
from skr_cli.tracking.metrics import write_metrics
from skr_cli.tracking.wandb_run import wandb_run


def relocation_epochs(cfg: DictConfig) -> int:
    """Epochs of ``finetune.epochs`` spent by the relocation phases before removal (a fair
    budget: every arm trains as many epochs after scoring)."""
    return cfg.relocation.epochs * cfg.prune.steps if relocation_active(cfg) else 0


def finetune_objective(ctx: RunContext, dense: nn.Module) -> Distilled | None:
    """Fine-tuning's loss where ``relocation.distill.finetune`` carries distillation from the
    dense model on after removal (None: the plain cross-entropy)."""
    teacher = dense_teacher(ctx.cfg, dense) if ctx.cfg.relocation.distill.finetune else None
    if teacher is None:
        return None
    return Distilled(teacher, label_smoothing=ctx.cfg.finetune.label_smoothing)


def finetune(ctx: RunContext, model: nn.Module, plans: list[Plan], dense: nn.Module) -> nn.Module:
    """Trains the pruned model with a fresh optimiser (removal replaced its parameters), on the
    rest of the one learning-rate schedule that the relocation phases began: after relocation
    the rate goes on decaying from where it stood, it never restarts at the full rate.

    Its weights go to final.pt with the removal plans and the clip shape, so that
    ``skr_cli.pruning.history.load_pruned`` rebuilds it from the dense architecture.
    When relocation phases ran, their epochs come out of ``finetune.epochs`` (a fair budget).
    With ``finetune.recalibrate_bn`` the pruned model's batch-norm statistics are re-estimated
    first (the same batches as ``pruned.*_bn_recal``). With ``relocation.distill.finetune`` it
    distils from ``dense`` too.
    """
    seed = seed_phase(ctx.cfg.seed, "finetune")
    step = lowrank_step(ctx, model, "finetune")
    settings = ctx.cfg.finetune
    spent = relocation_epochs(ctx.cfg)
    settings = OmegaConf.merge(settings, {"epochs": settings.epochs - spent})
    if ctx.cfg.finetune.recalibrate_bn:
        recalibrate_batchnorm(model, calibration_batches(ctx, "bn_recal"))
    return trained(
        ctx,
        model,
        phase="finetune",
        settings=settings,
        seed=seed,
        output="final.pt",
        after_step=step,
        extra=pruning_history(plans, list(ctx.example.shape[1:])),
        objective=finetune_objective(ctx, dense),
        span=(spent, ctx.cfg.finetune.epochs),
    )


def finetune_start(ctx: RunContext, pruned: dict[str, Any]) -> dict[str, Any]:
    """What fine-tuning starts from: the pruned model's test figures (after the batch-norm
    re-estimate with ``finetune.recalibrate_bn``) and the schedule's learning rates at the end
    of the relocation phases and at fine-tuning's first and last step."""
    recalibrated = bool(ctx.cfg.finetune.recalibrate_bn)
    suffix = "_bn_recal" if recalibrated else ""
    keys = ("top1", "top5", "video_top1", "loss")
    start: dict[str, Any] = {key: pruned[f"{key}{suffix}"] for key in keys}
    rates = load_state(phase_output(ctx, "final.pt"))["lr"]
    relocated = phase_output(ctx, f"relocated{ctx.cfg.prune.steps}.pt")
    before = load_state(relocated)["lr"] if relocation_active(ctx.cfg) else []
    return start | {
        "bn_recalibrated": recalibrated,
        "epoch": relocation_epochs(ctx.cfg),
        "lr_relocation_last": before[-1] if before else None,
        "lr_first": rates[0] if rates else None,
        "lr_last": rates[-1] if rates else None,
    }


def finished(cfg: DictConfig, out_dir: Path) -> dict[str, Any] | None:
    """The metrics of a run of this config that already finished in ``out_dir``, else None
    (a folder holding another config's run is refused)."""
    check_run_dir(cfg, out_dir)
    path = out_dir / "metrics.json"  # written last: it exists only once every phase finished
    return json.loads(path.read_text()) if path.exists() else None


def run(
    cfg: DictConfig, out_dir: Path, names: dict[str, str], *, threads: int, group: str | None
) -> dict[str, Any]:
    """Runs every phase and writes metrics.json (last, atomically); returns the metrics.

    Args:
        cfg: the composed config.
        out_dir: the run's output folder.
        names: the chosen option of each config group (``dataset``, ``model``, ``heuristic``).
        threads: torch CPU threads for this run.
        group: the wandb group that gathers the runs of a sweep (None for a single run).
    """
    started = time.perf_counter()
    torch.set_num_threads(threads)
    check_run_dir(cfg, out_dir)
    ctx = build_context(cfg, out_dir)
    heuristic = build_heuristic(cfg.heuristic)
    # what the run spends outside its phases (metrics.json "job_s"): preparing the data, starting
    # the wandb run, timing latency; "run" is the whole of this function up to metrics.json
    job = {"setup": round(time.perf_counter() - started, 3)}
    with wandb_run(
        mode=cfg.logger.mode,
        project=cfg.logger.project,
        group=group,
        name=f"{names['heuristic']}-r{cfg.prune.ratio}-l{cfg.relocation.strength}-s{cfg.seed}",
        tags=[
            f"heuristic={names['heuristic']}",
            f"ratio={cfg.prune.ratio}",
            f"strength={cfg.relocation.strength}",
            f"seed={cfg.seed}",
            f"lowrank={cfg.lowrank.weight}",
            f"dataset={names['dataset']}",
            f"model={names['model']}",
        ],
        config=OmegaConf.to_container(cfg, resolve=True),
        out_dir=out_dir,
        timeout=cfg.logger.timeout,
    ) as tracker:
        ctx.tracker = tracker
        job["tracking"] = round(time.perf_counter() - started - job["setup"], 3)
        dense, dense_cache = timed(ctx, "pretrain", pretrain, ctx)
        dense_eval = timed(ctx, "evaluate_dense", measure_dense, ctx, dense, dense_cache)
        dense_macs = dense_eval["macs"]
        agreed = None  # several heuristics scored on the same dense model
        if cfg.agreement.heuristics:
            agreed = timed(ctx, "agreement", compare_heuristics, ctx, dense, dense_macs)
            if cfg.agreement.only:  # no metrics.json: the run stops before pruning
                write_json(
                    out_dir / "timings.json", {"timings_s": ctx.timings, "dense_cache": dense_cache}
                )
                return {"agreement": agreed, "dense": dense_eval, "out_dir": str(out_dir)}
        pruned, plans, rounds = timed(ctx, "prune", prune, ctx, dense, heuristic, dense_macs)
        relocated = relocation_metrics(ctx, rounds)  # relocation phases and loss jumps, per round
        pruned_eval = timed(ctx, "evaluate_pruned", measure, ctx, pruned, "pruned")
        pruned_eval |= timed(ctx, "bn_recal", measure_recalibrated, ctx, pruned)
        final = timed(ctx, "finetune", finetune, ctx, pruned, plans, dense)
        final_eval = timed(ctx, "evaluate_final", measure, ctx, final, "final")
        timing = time.perf_counter()
        latency = measure_latency(ctx, {"dense": dense, "final": final})
        job["latency"] = round(time.perf_counter() - timing, 3)
        lowrank = None  # compression-aware training: the factorised fine-tuned model
        if truncation_enabled(cfg):
            lowrank = timed(ctx, "truncate", truncate, ctx, final, final_eval)

        metrics = {
            "heuristic": names["heuristic"],
            "prune_ratio": cfg.prune.ratio,
            "relocation_strength": cfg.relocation.strength,
            "lowrank_weight": cfg.lowrank.weight,
            "seed": cfg.seed,
            "group": group,
            "dataset": names["dataset"],
            "model": names["model"],
            "mac_convention": {
                "clip": [cfg.dataset.frames, cfg.dataset.size, cfg.dataset.size],
                "unit": "MACs",
                "description": MAC_CONVENTION,
            },
            "finetune_epochs": cfg.finetune.epochs,
            "finetune_start": finetune_start(ctx, pruned_eval),
            "eval_split": cfg.eval.split,  # what dense/pruned/final were measured on
            # a random-search trial (search.trial): the config holds its drawn values
            "search": {"trial": cfg.search.trial, "seed": cfg.search.seed},
            # the shared dense checkpoint: its key, whether this run loaded it from the cache
            "dense_cache": dense_cache,
            "dense": dense_eval | {"latency_ms": latency["dense"]},
            "pruned": pruned_eval,
            "final": final_eval | {"latency_ms": latency["final"]},
            # the loss jump on fixed calibration batches right before → right after removal
            # (summed over rounds); delta_loss_test: pruned minus dense loss on the test split
            "delta_loss_remove": sum(r["removal"]["delta_loss"] for r in relocated["rounds"]),
            "delta_loss_test": pruned_eval["loss"] - dense_eval["loss"],
            "relocation": relocated,
            "speedup": latency["dense"] / latency["final"],
            # every latency_ms (and the lowrank ones) was timed in this form:
            # train | deployed, each with ", compiled" where eval.compile compiled it
            "latency_form": latency_form(cfg),
            "channels": {
                "before": sum(layer.channels for layer in prunable_layers(dense).values()),
                "after": sum(layer.channels for layer in prunable_layers(final).values()),
            },
            "prune": {
                "scope": cfg.prune.scope,
                "steps": cfg.prune.steps,
                "target_macs": cfg.prune.target_macs,
                "min_channels": cfg.prune.min_channels,
                "round_to": cfg.prune.round_to,
                "macs_share": final_eval["macs"] / dense_eval["macs"],
            },
            "data": {
                "skipped": len(ctx.skipped),  # videos that could not be decoded, skipped
                "skipped_files": sorted(Path(path).name for path in ctx.skipped)[:10],
                "damaged": len(ctx.damaged),  # of those, files cut short (few frames decode)
                "damaged_files": sorted(Path(path).name for path in ctx.damaged)[:10],
                "train_videos": len(ctx.train_set),
                "test_videos": len(ctx.test_set),  # of eval_split
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
        metrics["job_s"] = job | {"run": round(time.perf_counter() - started, 3)}
        write_metrics(out_dir / "metrics.json", metrics)
    return metrics
