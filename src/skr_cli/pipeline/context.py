"""What every phase shares: the run context, seeding, data loaders, the training and
evaluation steps that write their outputs into the run directory (and load them on a rerun)."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from skr_cli.data.clips import DamagedPath, SeededSampler, VideoClips, collate_clips
from skr_cli.data.video import torchcodec_problem
from skr_cli.engine.batchnorm import recalibrate_batchnorm
from skr_cli.engine.checkpoint import (
    PhaseCheckpoint,
    load_state,
    partial_path,
    save_state,
    write_json,
)
from skr_cli.engine.deploy import deployed
from skr_cli.engine.distributed import RankShare, barrier, rank, world_size
from skr_cli.engine.evaluate import evaluate, latency_ms
from skr_cli.engine.train import LrSchedule, Objective, StepCallback, train
from skr_cli.heuristics.base import CalibBatch
from skr_cli.pruning.count import count_macs, count_params


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
    device: torch.device  # where the model and its batches live (``device``)
    skipped: set[str] = field(default_factory=set)  # the damaged ones included
    damaged: set[str] = field(default_factory=set)  # decode under half of their frames or so
    timings: dict[str, float] = field(default_factory=dict)
    tracker: Any = None  # the wandb run, set once it is started: ``ctx.tracker.log({...})``

    def note_skipped(self, paths: list[str]) -> None:
        """Counts videos that failed to decode (telling the damaged ones, a
        :class:`DamagedPath`, apart); stops the run once more than
        ``dataset.max_skip_fraction`` of a split has failed, naming a few of them."""
        if not paths:
            return
        self.skipped.update(paths)
        self.damaged.update(str(path) for path in paths if isinstance(path, DamagedPath))
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


def train_loader(ctx: RunContext, batch_size: int, seed: int, *, shard: bool = True) -> DataLoader:
    """Shuffled training clips; the order, each clip's start and its augmentation all come from
    ``seed`` in the main process, so the batches are the same whatever ``num_workers`` is.
    Under torchrun each rank loads its share of every one of these batches (``shard``), or
    all of them."""
    sampler = SeededSampler(len(ctx.train_set), torch.Generator().manual_seed(seed))
    drop_last = len(ctx.train_set) > batch_size
    batching: dict[str, Any] = {"batch_size": batch_size, "sampler": sampler}
    if shard and world_size() > 1:
        share = RankShare(sampler, batch_size, drop_last, rank(), world_size())
        batching, drop_last = {"batch_sampler": share}, False
    return DataLoader(
        ctx.train_set,
        **batching,
        drop_last=drop_last,
        collate_fn=collate_clips,
        **loader_options(ctx.cfg.dataset.num_workers, persistent=True),
    )


def test_loader(ctx: RunContext) -> DataLoader:
    return DataLoader(
        ctx.test_set,
        batch_size=ctx.cfg.eval.batch_size,
        collate_fn=collate_clips,
        **loader_options(ctx.cfg.dataset.num_workers, persistent=False),
    )


# Batches each worker prepares ahead (DataLoader's default is 2): decoding times vary by video.
PREFETCH_FACTOR = 4


def loader_options(workers: int, *, persistent: bool) -> dict[str, Any]:
    """DataLoader settings for ``workers`` processes: pinned memory where a CUDA device can take
    the batches asynchronously; with workers, ``PREFETCH_FACTOR`` batches ahead each, kept alive
    between epochs when ``persistent`` (a loader iterated for several epochs)."""
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": torch.cuda.is_available()}
    if workers > 0:
        options |= {"persistent_workers": persistent, "prefetch_factor": PREFETCH_FACTOR}
    return options


def phase_output(ctx: RunContext, name: str) -> Path:
    return ctx.out_dir / name


def resumed(ctx: RunContext, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The JSON output ``name`` of a phase: read back when an earlier attempt wrote it, else
    computed and written (atomically) before it is returned."""
    path = phase_output(ctx, name)
    if path.exists():
        result = json.loads(path.read_text())
    else:
        result = compute()
        write_json(path, result)
    barrier()  # under torchrun: the other ranks see the file before anyone goes on
    return result


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


def calibration_batches(ctx: RunContext, phase: str) -> list[CalibBatch]:
    """``prune.calib_batches`` training batches (clips, labels), drawn from the phase's seed;
    whole on every rank under torchrun (a heuristic scores its share of each and all-reduces)."""
    seed = seed_phase(ctx.cfg.seed, phase)
    loader = train_loader(ctx, ctx.cfg.train.batch_size, seed, shard=False)
    batches: list[CalibBatch] = []
    for clips, labels, failed in loader:
        ctx.note_skipped(failed)
        if len(labels):
            batches.append((clips.to(ctx.device), labels.to(ctx.device)))
        if len(batches) == ctx.cfg.prune.calib_batches:
            break
    return batches


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
    """The form the models' latency is measured in: ``deployed`` (``eval.deploy``) or ``train``."""
    return "deployed" if cfg.eval.deploy else "train"


def measure_latency(ctx: RunContext, models: dict[str, nn.Module]) -> dict[str, float]:
    """Median batch-1 latency (ms) of each model on the example clip, side by side, every one in
    the form ``eval.deploy`` chooses."""
    if ctx.cfg.eval.deploy:
        models = {name: deployed(model) for name, model in models.items()}
    return latency_ms(models, ctx.example, ctx.cfg.eval.latency_runs)


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
        train_set = source.clips("train", train=True)
        test_set = source.clips(cfg.eval.split, train=False)  # "val" while tuning
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"dataset: {err}") from err
    for split, dataset in (("train", train_set), (cfg.eval.split, test_set)):
        if len(dataset) == 0:
            raise UserError(f"dataset: the {split} split lists no video (see dataset.splits)")
    if cfg.dataset.decoder == "torchcodec":
        torchcodec_problem()  # where it cannot load: one warning, here, before workers start
    device = run_device(cfg.device)
    example = torch.zeros(1, 3, cfg.dataset.frames, cfg.dataset.size, cfg.dataset.size)
    return RunContext(cfg, out_dir, train_set, test_set, example.to(device), device)


def run_device(name: str) -> torch.device:
    """The ``device`` setting as a torch device: ``auto`` is the current CUDA device where there
    is one (under torchrun, the rank's own), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
