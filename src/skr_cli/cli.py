"""``skr-run``: the Hydra entry point. Validates the config, then hands it to the pipeline."""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime
from pathlib import Path

import hydra
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException, HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from skr_cli.configs import config_dir
from skr_cli.data.video import DECODERS, pyav_ffmpeg_folder, torchcodec_error
from skr_cli.engine.checkpoint import CheckpointError, atomic_write_bytes, safe_load
from skr_cli.engine.distributed import broadcast, is_main, setup, teardown, world_size
from skr_cli.engine.train import PRECISIONS, NonFiniteLoss
from skr_cli.pipeline import LOWRANK_PHASES, UserError, finished, run
from skr_cli.pruning.plan import SCOPES
from skr_cli.relocation import BALANCES, SCHEDULES, TARGETS
from skr_cli.search import SpaceError, draw, flatten_space
from skr_cli.summary import format_summary
from skr_cli.tracking.wandb_run import MODES


class JobFailed(CompactHydraException):
    """A job of a sweep stopped on an error: Hydra runs the other jobs, then prints this one
    line (no traceback) and exits with code 1."""


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
    "prune.round_to",
    "prune.steps",
    "dataset.frames",
    "dataset.size",
    "dataset.eval_clips",
)


def validate(cfg: DictConfig) -> None:
    """Stops before any work on a value outside its range, naming the key and what is allowed."""
    for key in cfg.required:  # values an experiment cannot run without (a checkpoint, a path)
        if OmegaConf.select(cfg, key) is None:
            raise UserError(f"{key} is required by this experiment: set it, e.g. {key}=...")
    ratio = cfg.prune.ratio
    in_range = isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 <= ratio < 1
    _check(in_range, "prune.ratio", ratio, "a number in [0, 1)")
    for lowest, keys in ((0, COUNTS_FROM_ZERO), (1, COUNTS_FROM_ONE)):
        for key in keys:
            value = OmegaConf.select(cfg, key)
            _check(_is_int(value) and value >= lowest, key, value, f"an integer >= {lowest}")
    _check(_is_int(cfg.seed), "seed", cfg.seed, "an integer")
    validate_device(cfg.device)
    processes = world_size()  # under torchrun every rank takes an equal share of each batch
    for key in ("train.batch_size", "finetune.batch_size") if processes > 1 else ():
        value = OmegaConf.select(cfg, key)
        _check(value % processes == 0, key, value, f"a multiple of the {processes} processes")
    _check(cfg.logger.mode in MODES, "logger.mode", cfg.logger.mode, " | ".join(MODES))
    timeout = cfg.logger.timeout
    _check(_is_number(timeout) and timeout > 0, "logger.timeout", timeout, "seconds > 0")
    for phase in ("train", "finetune"):
        precision = cfg[phase].precision
        _check(precision in PRECISIONS, f"{phase}.precision", precision, " | ".join(PRECISIONS))
        switches = ("compile", "channels_last", "recalibrate_bn")
        for key in (key for key in switches if key in cfg[phase]):
            value = cfg[phase][key]
            _check(isinstance(value, bool), f"{phase}.{key}", value, "true | false")
        warmup, epochs = cfg[phase].warmup_epochs, cfg[phase].epochs
        ok = _is_int(warmup) and 0 <= warmup <= epochs
        _check(ok, f"{phase}.warmup_epochs", warmup, f"an integer in [0, {phase}.epochs={epochs}]")
        smoothing = cfg[phase].label_smoothing
        ok = _in(smoothing, 0, 1, open_low=False) and smoothing < 1
        _check(ok, f"{phase}.label_smoothing", smoothing, "a number in [0, 1)")
    validate_prune(cfg.prune)
    validate_agreement(cfg.agreement)
    validate_lowrank(cfg.lowrank)
    validate_relocation(cfg)
    validate_dataset(cfg.dataset)
    deploy = cfg.eval.deploy
    _check(isinstance(deploy, bool), "eval.deploy", deploy, "true | false")
    split = cfg.eval.split
    _check(split in ("test", "val"), "eval.split", split, "test | val")
    ok = split == "test" or cfg.dataset.val_fraction > 0
    _check(ok, "eval.split", split, "test, or val with dataset.val_fraction > 0")
    validate_model(cfg.model)


def validate_device(device: object) -> None:
    """``device``: auto, cpu, or a CUDA device that this machine has."""
    allowed = "auto | cpu | cuda | cuda:N"
    ok = isinstance(device, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", device) is not None
    _check(ok, "device", device, allowed)
    if device.startswith("cuda"):
        count = torch.cuda.device_count()
        index = int(device.partition(":")[2] or 0)
        found = f"{count} CUDA device(s) found" if count else "no CUDA device found"
        _check(index < count, "device", device, f"{allowed}; {found}")


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
    """The ``dataset`` group's keys shared by every source; ``root`` and ``splits``, where set,
    must be folders that exist (what they hold is checked by the source)."""
    for key in ("root", "splits"):
        folder = settings.get(key)
        ok = folder is None or Path(str(folder)).is_dir()
        _check(ok, f"dataset.{key}", folder, "a folder that exists")
    if "fold" in settings:
        fold = settings.fold
        _check(_is_int(fold) and 1 <= fold <= 3, "dataset.fold", fold, "1 | 2 | 3")
    decoder = settings.decoder
    _check(decoder in DECODERS, "dataset.decoder", decoder, " | ".join(DECODERS))
    fraction = settings.max_skip_fraction
    ok = _in(fraction, 0, 1, open_low=False)
    _check(ok, "dataset.max_skip_fraction", fraction, "a number in [0, 1]")
    held = settings.val_fraction
    ok = _is_number(held) and 0 <= held < 1
    _check(ok, "dataset.val_fraction", held, "a number in [0, 1)")
    fps = settings.fps
    _check(fps is None or (_is_number(fps) and fps > 0), "dataset.fps", fps, "a number > 0 or null")
    workers = settings.num_workers
    _check(_is_int(workers) and workers >= 0, "dataset.num_workers", workers, "an integer >= 0")
    scale = settings.scale
    ok = len(scale) == 2 and all(_is_number(s) for s in scale) and 1 <= scale[0] <= scale[1]
    _check(ok, "dataset.scale", list(scale), "[low, high] with 1 <= low <= high")


def validate_model(settings: DictConfig) -> None:
    """The ``model`` group: a positive width, a channel floor >= 1, a weights file that exists
    and holds tensors only (a file that carries pickled code is refused here, before any work,
    and nothing in it runs; its keys are checked when the model is built)."""
    if "width" in settings:
        width = settings.width
        _check(_is_number(width) and width > 0, "model.width", width, "a number > 0")
    if "min_channels" in settings:
        floor = settings.min_channels
        _check(_is_int(floor) and floor >= 1, "model.min_channels", floor, "an integer >= 1")
    weights = settings.get("weights")
    if weights is not None and not Path(weights).is_file():
        raise UserError(f"model.weights={weights} is not allowed: no such file")
    if weights is not None:
        try:
            safe_load(Path(weights))
        except CheckpointError as err:
            reason = str(err).removeprefix(f"{weights}: ")
            raise UserError(f"model.weights={weights}: {reason}") from None


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


def apply_search(cfg: DictConfig, config_file: Path | None) -> dict[str, object] | None:
    """Random search: sets the keys of ``search.space`` to trial ``search.trial``'s draw and
    rewrites the run's recorded config (``.hydra/config.yaml``) to match; None without a trial."""
    trial = cfg.search.trial
    if trial is None:
        return None
    _check(_is_int(trial) and trial >= 0, "search.trial", trial, "an integer >= 0 or null")
    _check(_is_int(cfg.search.seed), "search.seed", cfg.search.seed, "an integer")
    space = flatten_space(OmegaConf.to_container(cfg.search.space, resolve=True))
    _check(bool(space), "search.space", "{}", "at least one key to draw when search.trial is set")
    try:
        values = draw(space, seed=cfg.search.seed, trial=trial)
    except SpaceError as err:
        raise UserError(str(err)) from None
    for key, value in values.items():
        if OmegaConf.select(cfg, key, default="<missing>") == "<missing>":
            raise UserError(f"search.space.{key}: no such config key")
        OmegaConf.update(cfg, key, value, merge=False)
    if config_file is not None and config_file.exists():
        text = OmegaConf.to_yaml(cfg)
        atomic_write_bytes(config_file, lambda file: file.write(text.encode()))
    return values


def job_threads(launcher: DictConfig) -> int:
    """torch CPU threads for one job: the cores this process may use, divided among the jobs a
    joblib launcher runs at once (so that parallel jobs do not fight over the cores)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity else os.cpu_count() or 1
    parallel = 1
    if "joblib" in str(launcher.get("_target_", "")).lower():
        n_jobs = launcher.n_jobs  # joblib's convention: -1 every core, -2 all but one, ...
        parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)
    return max(1, cores // parallel)


def sweep_group(sweep_dir: str) -> str:
    """The wandb group of a sweep: its folder's name (date_time for Hydra's timestamped ones)."""
    path = Path(sweep_dir)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", path.parent.name):
        return f"{path.parent.name}_{path.name}"
    return path.name


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def app(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    names = {group: hydra_cfg.runtime.choices[group] for group in ("dataset", "model", "heuristic")}
    out_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    subdir = hydra_cfg.output_subdir
    try:
        apply_search(cfg, out_dir / subdir / "config.yaml" if subdir else None)
        validate(cfg)
        metrics = finished(cfg, out_dir)
        if metrics is not None:  # a sweep run again: this job already finished
            print(f"skr-run: {out_dir} holds a finished run of this config; nothing to do")
        else:
            group = cfg.logger.group or (sweep_group(hydra_cfg.sweep.dir) if multirun else None)
            threads = cfg.threads or job_threads(hydra_cfg.launcher)
            metrics = run(cfg, out_dir, names, threads=threads, group=group)
    except (UserError, NonFiniteLoss, CheckpointError) as err:
        if os.environ.get("SKR_DEBUG"):
            raise
        print(f"skr-run: error: {err}", file=sys.stderr)
        if multirun:  # the other jobs go on; the sweep ends with this line and exit code 1
            raise JobFailed(f"skr-run: error: job {out_dir.name} failed: {err}") from None
        sys.exit(2 if isinstance(err, UserError) else 1)
    if is_main():  # under torchrun: once
        print(format_summary(metrics, str(out_dir)))


def check_choices(args: list[str]) -> None:
    """Stops on a command-line choice of a config group option that does not exist
    (``heuristic=magic``, also inside a sweep ``heuristic=l1,magic``) in one line listing the
    valid ones; Hydra's own message spans a dozen lines. Anything else is left to Hydra."""
    conf = Path(config_dir())
    groups = {path.name for path in conf.iterdir() if path.is_dir()}
    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            override = parser.parse_override(arg)
            if override.key_or_group not in groups or override.is_delete():
                continue
            if override.is_sweep_override():
                values = list(override.sweep_string_iterator())
            else:
                values = [override.get_value_element_as_str()]
        except HydraException:
            continue  # a malformed override: Hydra reports it
        known = sorted(path.stem for path in (conf / override.key_or_group).glob("*.yaml"))
        for value in values:
            allowed = f"one of {' | '.join(known)}"
            _check(value in known or value == "null", override.key_or_group, value, allowed)


def check_composes(args: list[str]) -> DictConfig:
    """Composes the config with the command line's overrides (``hydra.*`` and, in a
    ``--multirun``, sweeps aside) so that an unknown key (``nokey=3``), a malformed value or a
    sweep without ``--multirun`` stops in one line; Hydra's own message spans several.
    Returns the config composed."""
    parser = OverridesParser.create()
    multirun = any(arg in ("-m", "--multirun") for arg in args)
    plain = []
    for arg in args:
        if arg.startswith("-") or "=" not in arg or arg.lstrip("+~").startswith("hydra"):
            continue
        try:
            if not (multirun and parser.parse_override(arg).is_sweep_override()):
                plain.append(arg)
        except HydraException as err:
            raise UserError(f"{arg}: {_first_lines(err)}") from err
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose("config", overrides=plain)
    except HydraException as err:
        raise UserError(_first_lines(err)) from err


PYAV_FFMPEG = "SKR_PYAV_FFMPEG"  # set in a process started again on PyAV's FFmpeg libraries


def ffmpeg_for_torchcodec(args: list[str], cfg: DictConfig) -> None:
    """Where ``dataset.decoder=torchcodec`` is asked for (or swept over) and torchcodec finds no
    FFmpeg libraries, starts this command again, once, with ``LD_LIBRARY_PATH`` on links to the
    ones PyAV bundles (the dynamic loader reads it only when a process starts). Where that is
    not possible or does not help, the run warns in one line and decodes with PyAV."""
    swept = any("decoder=" in arg and "torchcodec" in arg for arg in args)
    asked = OmegaConf.select(cfg, "dataset.decoder") == "torchcodec" or swept
    if not asked or os.environ.get(PYAV_FFMPEG):
        return
    if torchcodec_error() is None:
        return
    try:
        folder = pyav_ffmpeg_folder()
    except OSError:  # no writable temporary folder: PyAV decodes instead, after the warning
        return
    if folder is None:
        return
    env = dict(os.environ, **{PYAV_FFMPEG: str(folder)})
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        filter(None, [str(folder), env.get("LD_LIBRARY_PATH")])
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def _first_lines(err: Exception) -> str:
    lines = [line.strip().rstrip(".") for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines[:2])


def distributed_overrides(args: list[str]) -> list[str]:
    """Under torchrun: every rank writes into rank 0's folder (Hydra's default one is named by
    the time, which ranks may read a second apart: rank 0's time is broadcast and put into the
    configured pattern), and only rank 0 records the config there."""
    if any(arg in ("-m", "--multirun") for arg in args):
        raise UserError("torchrun runs one run on several processes, not a sweep (--multirun)")
    extra = []
    if not any(arg.startswith("hydra.run.dir=") for arg in args):
        pattern = OmegaConf.load(Path(config_dir()) / "config.yaml").hydra.run._get_node("dir")
        now = datetime.fromisoformat(broadcast(datetime.now().isoformat()))
        folder = re.sub(r"\$\{now:([^}]*)\}", lambda m: now.strftime(m.group(1)), str(pattern))
        extra.append(f"hydra.run.dir={folder}")
    if not is_main():
        extra.append("hydra.output_subdir=null")
    return extra


def main() -> None:
    try:
        check_choices(sys.argv[1:])
        ffmpeg_for_torchcodec(sys.argv[1:], check_composes(sys.argv[1:]))
        if setup():  # started by torchrun: one run on several processes
            sys.argv += distributed_overrides(sys.argv[1:])
    except UserError as err:
        if os.environ.get("SKR_DEBUG"):
            raise
        print(f"skr-run: error: {err}", file=sys.stderr)
        sys.exit(2)
    try:
        app()
    finally:
        teardown()
