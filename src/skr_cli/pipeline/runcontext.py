"""The run's context: the config, the output folder, the data sets, the example clip and the
device every phase works with (built once by :func:`build_context`), and the seed of each phase."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from skr_cli.data.clips import DamagedPath, VideoClips
from skr_cli.data.video import torchcodec_problem
from skr_cli.errors import UserError


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


def seed_phase(seed: int, phase: str) -> int:
    """Seeds every RNG from (seed, phase), so a phase's result does not depend on earlier phases'
    random draws — a resumed run gives the same numbers as an uninterrupted one."""
    derived = int(hashlib.sha256(f"{seed}:{phase}".encode()).hexdigest()[:8], 16)
    random.seed(derived)
    np.random.seed(derived)
    torch.manual_seed(derived)
    return derived
