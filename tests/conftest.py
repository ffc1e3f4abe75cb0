"""Shared fixtures: tests run offline on CPU, with generated data in a temporary cache."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from skr_cli.configs import config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = Path(config_dir())


def _own_cores() -> None:
    """Under pytest-xdist, gives each worker its share of the cores (gw0 the first, gw1 the
    second, ...), which the ``skr-run`` processes it starts inherit: a run then takes one torch
    thread per core it may use (``cli.job_threads``) instead of every core of the machine, so
    that parallel workers' runs do not oversubscribe the cores (OpenMP threads that spin while
    another process holds their core)."""
    worker, count = (
        os.environ.get("PYTEST_XDIST_WORKER"),
        os.environ.get("PYTEST_XDIST_WORKER_COUNT"),
    )
    if not worker or not count or not hasattr(os, "sched_setaffinity"):
        return
    cores, index = sorted(os.sched_getaffinity(0)), int(worker.removeprefix("gw"))
    if int(count) <= len(cores):
        os.sched_setaffinity(0, cores[index :: int(count)])


@pytest.fixture(scope="session", autouse=True)
def _offline(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["SKR_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["WANDB_MODE"] = "disabled"
    torch.set_num_threads(1)
    _own_cores()


@pytest.fixture
def make_cfg() -> Callable[..., DictConfig]:
    """Composes the real config tree with overrides, as ``skr-run`` would."""

    def make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("config", overrides=list(overrides))

    return make


@pytest.fixture
def skr_run(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Runs ``skr-run`` in a subprocess with its outputs in ``tmp_path / name``."""

    def run(*overrides: str, out: str = "run", module: bool = False):
        entry = (
            [sys.executable, "-m", "skr_cli"]
            if module
            else [str(Path(sys.executable).parent / "skr-run")]
        )
        args = [*entry, f"hydra.run.dir={tmp_path / out}", *overrides]
        return subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=600)

    return run
