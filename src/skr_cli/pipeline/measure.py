"""What a run measures: test accuracy, loss, parameters and MACs of a model (with and without
re-estimated batch-norm statistics), batch-1 latency side by side, and each phase's wall time."""

from __future__ import annotations

import copy
import time
from typing import Any

from omegaconf import DictConfig
from torch import nn

from skr_cli.engine.batchnorm import recalibrate_batchnorm
from skr_cli.engine.deploy import compiled, deployed
from skr_cli.engine.evaluate import evaluate, latency_ms
from skr_cli.pipeline.loaders import calibration_batches, test_loader
from skr_cli.pipeline.outputs import resumed
from skr_cli.pipeline.runcontext import RunContext
from skr_cli.pruning.count import count_macs, count_params


def measure(ctx: RunContext, model: nn.Module, stage: str) -> dict[str, Any]:
    """Test-split accuracy and loss, parameters and MACs of one model (eval_<stage>.json)."""

    def compute() -> dict[str, Any]:
        result = evaluate(model, test_loader(ctx), on_skipped=ctx.note_skipped)
        return result | {"params": count_params(model), "macs": count_macs(model, ctx.example)}

    return resumed(ctx, f"eval_{stage}.json", compute)


def measure_recalibrated(ctx: RunContext, model: nn.Module) -> dict[str, Any]:
    """Test accuracy of a copy of ``model`` whose batch-norm statistics were re-estimated on
    calibration batches, with no gradient step (the ``*_bn_recal`` entries of ``pruned``)."""

    def compute() -> dict[str, Any]:
        recalibrated = copy.deepcopy(model)
        recalibrate_batchnorm(recalibrated, calibration_batches(ctx, "bn_recal"))
        result = evaluate(recalibrated, test_loader(ctx), on_skipped=ctx.note_skipped)
        keys = ("top1", "top5", "video_top1", "video_top5", "loss")
        return {f"{key}_bn_recal": result[key] for key in keys}

    return resumed(ctx, "eval_pruned_bn_recal.json", compute)


def latency_form(cfg: DictConfig) -> str:
    """The form the models' latency is measured in: ``deployed`` (``eval.deploy``) or ``train``,
    followed by ``, compiled`` where ``eval.compile`` compiles it."""
    form = "deployed" if cfg.eval.deploy else "train"
    return f"{form}, compiled" if cfg.eval.compile else form


def measure_latency(ctx: RunContext, models: dict[str, nn.Module]) -> dict[str, float]:
    """Median batch-1 latency (ms) of each model on the example clip, side by side, every one in
    the form ``eval.deploy`` and ``eval.compile`` choose (each on a copy: the models stay as
    they are)."""
    if ctx.cfg.eval.deploy:
        models = {name: deployed(model) for name, model in models.items()}
    if ctx.cfg.eval.compile:
        copies = models if ctx.cfg.eval.deploy else copy.deepcopy(models)
        models = {name: compiled(model) for name, model in copies.items()}
    return latency_ms(models, ctx.example, ctx.cfg.eval.latency_runs)


def timed(ctx: RunContext, phase: str, fn: Any, *args: Any) -> Any:
    start = time.perf_counter()
    result = fn(*args)
    ctx.timings[phase] = round(time.perf_counter() - start, 3)
    return result
