"""``skr-run``: the Hydra entry point. Validates the config, then hands it to the pipeline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from skr_cli.engine.train import NonFiniteLoss
from skr_cli.pipeline import UserError, run
from skr_cli.summary import format_summary
from skr_cli.tracking.wandb_run import MODES


def config_dir() -> str:
    """The config tree: shipped inside the package when installed, at the repo root otherwise."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if (candidate / "config.yaml").exists():
            return str(candidate)
    raise FileNotFoundError("skr's conf/ folder is missing from this installation")


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise UserError(f"{key}={value} is not allowed: {allowed}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


COUNTS_FROM_ZERO = ("train.epochs", "finetune.epochs")
COUNTS_FROM_ONE = (
    "train.batch_size",
    "finetune.batch_size",
    "eval.batch_size",
    "eval.latency_runs",
    "prune.calib_batches",
    "dataset.frames",
    "dataset.size",
    "dataset.eval_clips",
)


def validate(cfg: DictConfig) -> None:
    """Stops before any work on a value outside its range, naming the key and what is allowed."""
    ratio = cfg.prune.ratio
    in_range = isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 <= ratio < 1
    _check(in_range, "prune.ratio", ratio, "a number in [0, 1)")
    for lowest, keys in ((0, COUNTS_FROM_ZERO), (1, COUNTS_FROM_ONE)):
        for key in keys:
            value = OmegaConf.select(cfg, key)
            _check(_is_int(value) and value >= lowest, key, value, f"an integer >= {lowest}")
    _check(_is_int(cfg.seed), "seed", cfg.seed, "an integer")
    _check(cfg.logger.mode in MODES, "logger.mode", cfg.logger.mode, " | ".join(MODES))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def app(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    names = {group: hydra_cfg.runtime.choices[group] for group in ("dataset", "model", "heuristic")}
    try:
        validate(cfg)
        metrics = run(cfg, Path(hydra_cfg.runtime.output_dir), names)
    except (UserError, NonFiniteLoss) as err:
        if os.environ.get("SKR_DEBUG"):
            raise
        print(f"skr-run: error: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, UserError) else 1)
    print(format_summary(metrics, hydra_cfg.runtime.output_dir))


def main() -> None:
    app()
