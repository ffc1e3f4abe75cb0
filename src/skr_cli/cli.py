"""``skr-run``: the Hydra entry point. Validates the config, then hands it to the pipeline.

A single run's command line is validated before torch and the pipeline are imported (they take
seconds to load), so that a bad value stops at once; the run's machinery is imported after."""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException, HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from skr_cli.configs import config_dir
from skr_cli.errors import UserError
from skr_cli.schema import first_error
from skr_cli.search import SpaceError, draw, flatten_space
from skr_cli.summary import format_summary


class JobFailed(CompactHydraException):
    """A job of a sweep stopped on an error: Hydra runs the other jobs, then prints this one
    line (no traceback) and exits with code 1."""


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise UserError(f"{key}={value} is not allowed: {allowed}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(cfg: DictConfig, processes: int = 1, read_weights: bool = True) -> None:
    """Stops before any work on a value that is not allowed, naming the key and what is: first
    every key against its group's schema (types, ranges, choices, no unknown keys), then the
    rules that relate several keys or look at the machine (folders, files, devices).
    ``processes``: how many run it together (torchrun's ranks; 1 otherwise). ``read_weights``
    false: ``model.weights`` must exist, but its content is left to the run's own check."""
    for key in cfg.required:  # values an experiment cannot run without (a checkpoint, a path)
        if OmegaConf.select(cfg, key) is None:
            raise UserError(f"{key} is required by this experiment: set it, e.g. {key}=...")
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    problem = first_error(config)
    if problem is not None:
        raise UserError(problem)
    validate_device(cfg.device)
    validate_phases(cfg, processes)
    validate_relocation(cfg)
    split = cfg.eval.split
    ok = split == "test" or cfg.dataset.val_fraction > 0
    _check(ok, "eval.split", split, "test, or val with dataset.val_fraction > 0")
    check_writable("cache_dir", cfg.cache_dir)
    validate_dataset(cfg.dataset)
    validate_model(cfg.model, read_weights)


def validate_device(device: str) -> None:
    """``device`` (auto | cpu | cuda | cuda:N by the schema): a CUDA device this machine has."""
    if device.startswith("cuda"):
        import torch  # here only: the command line is checked before torch loads

        count = torch.cuda.device_count()
        index = int(device.partition(":")[2] or 0)
        found = f"{count} CUDA device(s) found" if count else "no CUDA device found"
        _check(index < count, "device", device, f"auto | cpu | cuda | cuda:N; {found}")


def validate_phases(cfg: DictConfig, processes: int) -> None:
    """``train`` and ``finetune``: a warm-up within the epochs, and under torchrun a batch that
    every rank takes an equal share of."""
    for phase in ("train", "finetune"):
        warmup, epochs = cfg[phase].warmup_epochs, cfg[phase].epochs
        allowed = f"an integer in [0, {phase}.epochs={epochs}]"
        _check(warmup <= epochs, f"{phase}.warmup_epochs", warmup, allowed)
        size = cfg[phase].batch_size
        allowed = f"a multiple of the {processes} processes"
        _check(size % processes == 0, f"{phase}.batch_size", size, allowed)


def validate_dataset(settings: DictConfig) -> None:
    """``root`` and ``splits``, where set, must be folders that exist (what they hold is checked
    by the source); the synthetic set keeps at least one group for training and a cache folder
    that can be written."""
    for key in ("root", "splits"):
        folder = settings.get(key)
        ok = folder is None or Path(str(folder)).is_dir()
        _check(ok, f"dataset.{key}", folder, "a folder that exists")
    if "generator" in settings:
        groups, test = settings.generator.groups, settings.generator.test_groups
        allowed = f"an integer in [1, dataset.generator.groups={groups})"
        _check(test < groups, "dataset.generator.test_groups", test, allowed)
    if "cache_dir" in settings:
        check_writable("dataset.cache_dir", settings.cache_dir)


def validate_model(settings: DictConfig, read_weights: bool = True) -> None:
    """``model.weights``: a file that exists and (``read_weights``) holds tensors only (a file
    that carries pickled code is refused here, before any work, and nothing in it runs; its keys
    are checked when the model is built)."""
    weights = settings.get("weights")
    if weights is not None and not Path(weights).is_file():
        raise UserError(f"model.weights={weights} is not allowed: no such file")
    if weights is not None and read_weights:
        from skr_cli.engine.checkpoint import CheckpointError, safe_load

        try:
            safe_load(Path(weights))
        except CheckpointError as err:
            reason = str(err).removeprefix(f"{weights}: ")
            raise UserError(f"model.weights={weights}: {reason}") from None


def check_writable(key: str, folder: str) -> None:
    """``folder`` exists as a folder this process can write into, or can be created: its nearest
    existing ancestor is a folder that can be written. Creates nothing."""
    path = Path(folder).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    blocked = None if existing.is_dir() else f"{existing} is a file"
    if blocked is None and not os.access(existing, os.W_OK | os.X_OK):
        blocked = f"{existing} is not writable"
    _check(blocked is None, key, folder, f"a folder that can be created and written ({blocked})")


def validate_relocation(cfg: DictConfig) -> None:
    """``relocation``: gradnorm needs the penalty in the loss; the phase fits in the fine-tuning
    budget (its epochs, every round's, come out of ``finetune.epochs``)."""
    settings = cfg.relocation
    ok = not (settings.decoupled and settings.balance == "gradnorm")
    _check(ok, "relocation.balance", "gradnorm", "none while relocation.decoupled=true")
    if not (settings.strength > 0 or settings.distill.weight > 0):
        return  # no phase: nothing is taken from fine-tuning
    epochs, budget, steps = settings.epochs, cfg.finetune.epochs, cfg.prune.steps
    rounds = f" per round x prune.steps={steps}" if steps > 1 else ""
    allowed = f"an integer >= 0, at most finetune.epochs={budget}{rounds} (taken from it)"
    _check(epochs * steps <= budget, "relocation.epochs", epochs, allowed)


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
        from skr_cli.engine.checkpoint import atomic_write_bytes

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
    from skr_cli.engine.checkpoint import CheckpointError
    from skr_cli.engine.distributed import is_main, world_size
    from skr_cli.engine.train import NonFiniteLoss
    from skr_cli.pipeline import finished, run

    hydra_cfg = HydraConfig.get()
    names = {group: hydra_cfg.runtime.choices[group] for group in ("dataset", "model", "heuristic")}
    out_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    subdir = hydra_cfg.output_subdir
    try:
        apply_search(cfg, out_dir / subdir / "config.yaml" if subdir else None)
        validate(cfg, world_size())
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
    """Composes the config with the command line's overrides (in a ``--multirun``, sweeps aside)
    so that an unknown key (``nokey=3``), a malformed value or a sweep without ``--multirun``
    stops in one line; Hydra's own message spans several. Returns the config composed, with
    Hydra's node."""
    parser = OverridesParser.create()
    multirun = any(arg in ("-m", "--multirun") for arg in args)
    plain = []
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            if not (multirun and parser.parse_override(arg).is_sweep_override()):
                plain.append(arg)
        except HydraException as err:
            raise UserError(f"{arg}: {_first_lines(err)}") from err
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose("config", overrides=plain, return_hydra_config=True)
    except HydraException as err:
        raise UserError(_first_lines(err)) from err


# Hydra's flags that print something and start no run: they write no output folder
INSPECTING = ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc")


def check_single_run(args: list[str], cfg: DictConfig) -> None:
    """Validates a single run's config as composed from the command line (what :func:`app`
    validates again, with a random-search trial's draw applied), so that a bad value stops
    before torch loads. Sweeps, trials and every command line with one of Hydra's flags (``-m``,
    ``--cfg``, ``--config-name``, …) are left to :func:`app`, and so is a config that only the
    run can resolve."""
    if any(arg.startswith("-") for arg in args):
        return
    task = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    try:
        if OmegaConf.select(task, "search.trial") is not None:
            return
        validate(task, int(os.environ.get("WORLD_SIZE", "1")), read_weights=False)
    except OmegaConfBaseException:
        return


def check_output_dir(args: list[str], cfg: DictConfig) -> None:
    """Stops in one line where the run's folder (``hydra.run.dir``; a sweep's
    ``hydra.sweep.dir``) can be neither created nor written, before Hydra tries to."""
    if any(arg in INSPECTING or arg.startswith("--shell-completion") for arg in args):
        return
    multirun = any(arg in ("-m", "--multirun") for arg in args)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        folder = OmegaConf.select(cfg, key)
    except OmegaConfBaseException:
        return  # a folder named by what only the run knows: Hydra resolves it then
    if folder is not None:
        check_writable(key, str(folder))


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
    from skr_cli.data.video import pyav_ffmpeg_folder, torchcodec_error

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
    from skr_cli.engine.distributed import broadcast, is_main

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
        composed = check_composes(sys.argv[1:])
        check_output_dir(sys.argv[1:], composed)
        check_single_run(sys.argv[1:], composed)
        ffmpeg_for_torchcodec(sys.argv[1:], composed)
        from skr_cli.engine.distributed import setup, teardown  # torch loads from here on

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
