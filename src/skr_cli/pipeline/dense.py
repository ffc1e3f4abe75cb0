"""The dense model, trained once per seed and shared by every run that prunes it.

Every heuristic, prune ratio and relocation setting of a seed prunes the *same* checkpoint (the
paired design of a study): its key hashes everything that determines it — the data set, the model
and its starting weights, the pretraining settings, the low-rank regulariser where it is active
during pretraining, and the seed. The checkpoint lives in ``cache_dir/dense/<key>/`` and a file
lock makes parallel jobs (joblib, Slurm array tasks on a shared file system) train it once: the
first job trains it, the others wait and load it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from skr_cli.engine.checkpoint import write_json
from skr_cli.engine.distributed import barrier, broadcast, is_main, main_only
from skr_cli.errors import UserError
from skr_cli.models import WeightsError
from skr_cli.pipeline.lowrank import lowrank_step
from skr_cli.pipeline.measure import measure
from skr_cli.pipeline.outputs import phase_output
from skr_cli.pipeline.runcontext import RunContext, seed_phase
from skr_cli.pipeline.training import trained

# Bump when a change to the code alters what pretraining produces, so old checkpoints are not
# reused by mistake.
DENSE_VERSION = 1
# Data-set keys that change how or where data is read, not what a model learns from it.
NOT_DETERMINING = ("num_workers", "cache_decoded", "max_skip_fraction", "decoder", "cache_dir")


def build_model(model_cfg: DictConfig) -> nn.Module:
    """The network of ``cfg.model``, with ``model.weights`` loaded; a checkpoint that does not
    fit becomes one line naming the keys."""
    try:
        return instantiate(model_cfg)
    except InstantiationException as err:
        if isinstance(err.__cause__, (WeightsError, FileNotFoundError)):
            raise UserError(f"model.weights: {err.__cause__}") from err
        raise


def dense_recipe(cfg: DictConfig) -> dict[str, Any]:
    """Everything that determines the dense model, as plain data (hashed into its key)."""
    dataset = dataset_settings(cfg, without=NOT_DETERMINING)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    if model.get("weights"):  # the file's content, wherever it lies
        model["weights"] = _file_digest(Path(model["weights"]))
    lowrank = cfg.lowrank
    regularised = "pretrain" in lowrank.phases and (lowrank.weight > 0 or lowrank.group_weight > 0)
    return {
        "version": DENSE_VERSION,
        "dataset": dataset,
        "model": model,
        "train": OmegaConf.to_container(cfg.train, resolve=True),
        "lowrank": OmegaConf.to_container(lowrank, resolve=True) if regularised else None,
        "seed": cfg.seed,
    }


def dataset_settings(cfg: DictConfig, *, without: tuple[str, ...]) -> dict[str, Any]:
    """The ``dataset`` group as plain data, less the keys ``without``."""
    dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
    for key in without:
        dataset.pop(key, None)
    return dataset


def dense_key(cfg: DictConfig) -> str:
    recipe = json.dumps(dense_recipe(cfg), sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_entry(cache_dir: str | Path, key: str) -> Path:
    """The folder of the shared dense model ``key``: ``cache_dir/dense/<key>``, absolute (never
    inside the run folder)."""
    return Path(cache_dir).resolve() / "dense" / key


def pretrain(ctx: RunContext) -> tuple[nn.Module, dict[str, Any]]:
    """Builds the model and trains it on the task — or loads the shared checkpoint when a job
    of the same seed already trained it.

    Returns:
        The dense model and its provenance for metrics.json: ``{"key", "cached", "path",
        "train_seconds"}``, where ``cached`` says the weights were loaded rather than trained by
        this run, ``path`` is the checkpoint's place inside the cache folder (``cache_dir``),
        ``train_seconds`` is the wall time the job that trained the shared model spent on it
        (None where unknown) and ``waited_seconds`` how long this job waited for another one to
        train it (part of its ``pretrain`` phase; ``key`` is None and there is no
        ``train_seconds`` when ``dense_cache=false``).
    """
    cfg = ctx.cfg
    seed = seed_phase(cfg.seed, "pretrain")
    # built after seeding (the init depends on the seed alone), then moved to the run's device
    model = build_model(cfg.model).to(ctx.device)
    step = lowrank_step(ctx, model, "pretrain")

    def train_into(output: str | Path) -> nn.Module:  # loads output instead where it exists
        return trained(
            ctx,
            model,
            phase="pretrain",
            settings=cfg.train,
            seed=seed,
            output=output,
            after_step=step,
        )

    if not cfg.dense_cache:
        cached = phase_output(ctx, "dense.pt").exists()
        return train_into("dense.pt"), {"key": None, "cached": cached, "path": "dense.pt"}

    key = dense_key(cfg)
    entry = cache_entry(cfg.cache_dir, key)
    path = entry / "dense.pt"
    cached = broadcast(path.exists())  # under torchrun: rank 0's view, on every rank
    waited = 0.0  # seconds this job waited for another one to train the model
    if not cached:
        entry.mkdir(parents=True, exist_ok=True)
        lock = _WaitingLock(entry / "dense.lock", f"another job to train the dense model {key}")
        with main_only(lock):  # under torchrun rank 0 holds it for every rank
            cached = broadcast(path.exists())  # trained by another job while this one waited
            if not cached:
                print(
                    f"pretrain: training the dense model {key} ({cfg.train.epochs} epochs)",
                    flush=True,
                )
                write_json(entry / "recipe.json", dense_recipe(cfg))
            start = time.perf_counter()
            model = train_into(path)
            if not cached and is_main():  # what training it cost, for every run that loads it
                seconds = round(time.perf_counter() - start, 3)
                write_json(
                    entry / "trained.json", {"seconds": seconds, "threads": torch.get_num_threads()}
                )
        waited = round(lock.waited, 3)
    else:
        model = train_into(path)
    if is_main():
        _link(path, phase_output(ctx, "dense.pt"))
    trained_file = entry / "trained.json"
    train_seconds = (
        json.loads(trained_file.read_text())["seconds"] if trained_file.exists() else None
    )
    # the path inside the cache folder, so that metrics.json does not say where the cache lives
    inside = path.relative_to(Path(cfg.cache_dir).resolve()).as_posix()
    provenance = {"key": key, "cached": cached, "path": inside, "train_seconds": train_seconds}
    return model, provenance | {"waited_seconds": waited}


def measure_dense(ctx: RunContext, model: nn.Module, provenance: dict[str, Any]) -> dict[str, Any]:
    """The dense model's test metrics (``eval_dense.json``). A shared dense model is measured
    once per evaluation setting (data set and split) and the result kept beside its checkpoint,
    so the other runs that prune it copy the figures instead of evaluating it again."""
    if provenance["key"] is None:
        return measure(ctx, model, "dense")
    # the videos and how they are read and cut; not where they are kept or how fast
    dataset = dataset_settings(ctx.cfg, without=("num_workers", "cache_dir", "cache_decoded"))
    settings = {"dataset": dataset, "split": ctx.cfg.eval.split}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    entry = cache_entry(ctx.cfg.cache_dir, provenance["key"])
    shared = entry / f"eval_{ctx.cfg.eval.split}_{digest}.json"
    own = phase_output(ctx, "eval_dense.json")
    if is_main() and shared.exists() and not own.exists():
        shutil.copyfile(shared, own)
    barrier()  # under torchrun: every rank sees the copy, or every rank evaluates
    result = measure(ctx, model, "dense")
    if is_main() and not shared.exists():
        write_json(shared, result)
    return result


class _WaitingLock:
    """A file lock that says so when it has to wait for another process."""

    def __init__(self, path: Path, holder: str) -> None:
        self.lock, self.holder = FileLock(path), holder
        self.waited = 0.0  # seconds spent waiting for the other process

    def __enter__(self) -> None:
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            print(f"pretrain: waiting for {self.holder}", flush=True)
            start = time.perf_counter()
            self.lock.acquire()
            self.waited = time.perf_counter() - start

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def _link(source: Path, target: Path) -> None:
    """Puts the shared checkpoint into the run folder: a hard link (no copy), else a copy."""
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)
