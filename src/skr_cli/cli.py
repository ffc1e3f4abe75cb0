"""``skr-run``: the Hydra entry point. Validates the config, then hands it to the pipeline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from skr_cli.configs import config_dir
from skr_cli.data.video import DECODERS
from skr_cli.engine.train import NonFiniteLoss
from skr_cli.pipeline import LOWRANK_PHASES, UserError, run
from skr_cli.pruning.plan import SCOPES
from skr_cli.relocation import BALANCES, SCHEDULES, TARGETS
from skr_cli.summary import format_summary
from skr_cli.tracking.wandb_run import MODES


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise UserError(f"{key}={value} is not allowed: {allowed}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


COUNTS_FROM_ZERO = ("train.epochs", "finetune.epochs", "prune.step_epochs")
COUNTS_FROM_ONE = (
    "train.batch_size",
    "finetune.batch_size",
    "eval.batch_size",
    "eval.latency_runs",
    "prune.calib_batches",
    "prune.min_channels",
    "prune.steps",
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
    validate_prune(cfg.prune)
    validate_agreement(cfg.agreement)
    validate_lowrank(cfg.lowrank)
    validate_relocation(cfg)
    validate_dataset(cfg.dataset)
    validate_model(cfg.model)


def validate_agreement(settings: DictConfig) -> None:
    """``agreement.heuristics`` names heuristics that exist."""
    known = sorted(path.stem for path in (Path(config_dir()) / "heuristic").glob("*.yaml"))
    names = settings.heuristics
    ok = isinstance(names, ListConfig) and all(name in known for name in names)
    _check(ok, "agreement.heuristics", names, f"a list of {' | '.join(known)}")
    _check(isinstance(settings.only, bool), "agreement.only", settings.only, "true | false")


def validate_prune(settings: DictConfig) -> None:
    """The ``prune`` group's choices beyond the counts: scope, compute budget."""
    scope = settings.scope
    _check(scope in SCOPES, "prune.scope", scope, " | ".join(SCOPES))
    target = settings.target_macs
    ok = target is None or (_is_number(target) and 0 < target <= 1)
    _check(ok, "prune.target_macs", target, "a share of the dense MACs in (0, 1], or null")
    tolerance = settings.macs_tolerance
    ok = _is_number(tolerance) and 0 < tolerance < 0.5
    _check(ok, "prune.macs_tolerance", tolerance, "a number in (0, 0.5)")


def validate_dataset(settings: DictConfig) -> None:
    """The ``dataset`` group's keys shared by every source (paths are checked by the source)."""
    if "fold" in settings:
        fold = settings.fold
        _check(_is_int(fold) and 1 <= fold <= 3, "dataset.fold", fold, "1 | 2 | 3")
    decoder = settings.decoder
    _check(decoder in DECODERS, "dataset.decoder", decoder, " | ".join(DECODERS))
    fraction = settings.max_skip_fraction
    ok = _in(fraction, 0, 1, open_low=False)
    _check(ok, "dataset.max_skip_fraction", fraction, "a number in [0, 1]")
    fps = settings.fps
    _check(fps is None or (_is_number(fps) and fps > 0), "dataset.fps", fps, "a number > 0 or null")
    workers = settings.num_workers
    _check(_is_int(workers) and workers >= 0, "dataset.num_workers", workers, "an integer >= 0")
    scale = settings.scale
    ok = len(scale) == 2 and all(_is_number(s) for s in scale) and 1 <= scale[0] <= scale[1]
    _check(ok, "dataset.scale", list(scale), "[low, high] with 1 <= low <= high")


def validate_model(settings: DictConfig) -> None:
    """The ``model`` group: a positive width, a weights file that exists (its keys are checked
    when the model is built)."""
    if "width" in settings:
        width = settings.width
        _check(_is_number(width) and width > 0, "model.width", width, "a number > 0")
    weights = settings.get("weights")
    if weights is not None and not Path(weights).is_file():
        raise UserError(f"model.weights={weights} is not allowed: no such file")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _in(value: object, low: float, high: float, *, open_low: bool) -> bool:
    return _is_number(value) and (low < value if open_low else low <= value) and value <= high


def validate_relocation(cfg: DictConfig) -> None:
    """The ``relocation`` group: weights >= 0, known schedule/target/balance, a phase that fits
    in the fine-tuning budget (its epochs, every round's, come out of ``finetune.epochs``)."""
    settings = cfg.relocation
    for key in ("strength", "distill.weight"):
        value = OmegaConf.select(settings, key)
        _check(_is_number(value) and value >= 0, f"relocation.{key}", value, "a number >= 0")
    for key, value in (
        ("distill.temperature", settings.distill.temperature),
        ("ridge", settings.ridge),
        ("exp_rate", settings.exp_rate),
    ):
        _check(_is_number(value) and value > 0, f"relocation.{key}", value, "a number > 0")
    for key, allowed in (("schedule", SCHEDULES), ("target", TARGETS), ("balance", BALANCES)):
        _check(settings[key] in allowed, f"relocation.{key}", settings[key], " | ".join(allowed))
    for key in ("compensate", "decoupled"):
        _check(isinstance(settings[key], bool), f"relocation.{key}", settings[key], "true | false")
    ok = not (settings.decoupled and settings.balance == "gradnorm")
    _check(ok, "relocation.balance", "gradnorm", "none while relocation.decoupled=true")
    epochs, budget = settings.epochs, cfg.finetune.epochs
    _check(_is_int(epochs) and epochs >= 0, "relocation.epochs", epochs, "an integer >= 0")
    if not (settings.strength > 0 or settings.distill.weight > 0):
        return  # no phase: nothing is taken from fine-tuning
    steps = cfg.prune.steps if _is_int(cfg.prune.steps) else 1
    ok = epochs * steps <= budget
    rounds = f" per round x prune.steps={steps}" if steps > 1 else ""
    allowed = f"an integer >= 0, at most finetune.epochs={budget}{rounds} (taken from it)"
    _check(ok, "relocation.epochs", epochs, allowed)


def validate_lowrank(settings: DictConfig) -> None:
    """The ``lowrank`` group: weights >= 0, shares in range, known phases, layers as patterns."""
    for key in ("weight", "group_weight"):
        value = settings[key]
        _check(_is_number(value) and value >= 0, f"lowrank.{key}", value, "a number >= 0")
    ratio, energy, fraction = settings.l1_ratio, settings.energy, settings.rank_fraction
    _check(_in(ratio, 0, 1, open_low=False), "lowrank.l1_ratio", ratio, "a number in [0, 1]")
    _check(_in(energy, 0, 1, open_low=True), "lowrank.energy", energy, "a number in (0, 1]")
    ok = fraction is None or _in(fraction, 0, 1, open_low=True)
    _check(ok, "lowrank.rank_fraction", fraction, "a number in (0, 1] or null")
    for key, lowest in (("prox_every", 1), ("finetune_epochs", 0)):
        ok = _is_int(settings[key]) and settings[key] >= lowest
        _check(ok, f"lowrank.{key}", settings[key], f"an integer >= {lowest}")
    phases = settings.phases
    ok = isinstance(phases, ListConfig) and len(phases) > 0 and set(phases) <= set(LOWRANK_PHASES)
    _check(ok, "lowrank.phases", phases, f"a non-empty list of {' | '.join(LOWRANK_PHASES)}")
    layers = settings.layers
    patterns = isinstance(layers, ListConfig) and all(isinstance(p, str) for p in layers)
    ok = layers == "default" or (patterns and len(layers) > 0)
    _check(ok, "lowrank.layers", layers, "default or a list of module-name patterns")
    truncate = settings.truncate
    ok = truncate is None or isinstance(truncate, bool)
    _check(ok, "lowrank.truncate", truncate, "true | false | null (when a weight is > 0)")


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
