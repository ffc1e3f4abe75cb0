"""Sweeps: the shared dense model, launchers, rerunning a sweep, experiments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from skr_cli.cli import job_threads, sweep_group
from skr_cli.pipeline.dense import dense_key
from skr_cli.tracking.metrics import comparable as without_volatile

SKR_RUN = str(Path(sys.executable).parent / "skr-run")


def make(*overrides: str):
    """The config ``skr-run`` composes from these overrides, Hydra's node included."""
    from hydra import compose, initialize_config_dir

    from skr_cli.configs import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def sweep(tmp_path: Path, *overrides: str, cache: Path) -> subprocess.CompletedProcess:
    """``skr-run -m`` with its sweep in ``tmp_path / "sweep"`` and its own cache."""
    env = os.environ | {"SKR_CACHE_DIR": str(cache)}
    args = [SKR_RUN, "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]
    return subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)


def runs_of(sweep_dir: Path) -> dict[str, dict]:
    """Job folder name → its metrics.json."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")}


@pytest.mark.slow
def test_submitit_sweep_shares_the_dense_model_and_a_rerun_trains_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    overrides = (
        "debug=smoke",
        "logger.mode=offline",
        "heuristic=l1,random",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
    )
    result = sweep(tmp_path, *overrides, cache=cache)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = runs_of(tmp_path / "sweep")
    assert sorted(runs) == ["debug=smoke,heuristic=l1", "debug=smoke,heuristic=random"]
    # both jobs ran at once: one trained the dense model, the other waited for it and loaded it
    provenance = [run["dense_cache"] for run in runs.values()]
    assert sorted(p["cached"] for p in provenance) == [False, True]
    assert len({p["key"] for p in provenance}) == 1
    # both record what training it cost, the job that loaded it included
    assert len({p["train_seconds"] for p in provenance}) == 1 and provenance[0]["train_seconds"] > 0
    assert provenance[0]["path"] == f"dense/{provenance[0]['key']}/dense.pt"  # inside the cache
    # how long each waited for the other to train it: the trainer not at all
    trainer = next(p for p in provenance if not p["cached"])
    assert trainer["waited_seconds"] == 0 and all(p["waited_seconds"] >= 0 for p in provenance)
    dense = cache / provenance[0]["path"]
    for name in runs:  # the shared checkpoint is in each run folder too
        assert (tmp_path / "sweep" / name / "dense.pt").stat().st_size == dense.stat().st_size
    assert {run["group"] for run in runs.values()} == {"sweep"}
    # wandb: one offline run per job, in the sweep's group, tagged with the heuristic
    for name, run in runs.items():
        (log,) = (tmp_path / "sweep" / name / "wandb").glob("offline-run-*/run-*.wandb")
        data = log.read_bytes()
        assert f"heuristic={run['heuristic']}".encode() in data and b"sweep" in data

    # kill one run during fine-tuning (its outputs from then on are gone), then rerun the sweep
    unfinished = tmp_path / "sweep" / "debug=smoke,heuristic=random"
    for output in ("metrics.json", "final.pt", "eval_final.json"):
        (unfinished / output).unlink()
    finished = tmp_path / "sweep" / "debug=smoke,heuristic=l1" / "metrics.json"
    stamps = {finished: finished.stat().st_mtime_ns, dense: dense.stat().st_mtime_ns}
    result = sweep(tmp_path, *overrides, cache=cache)
    assert result.returncode == 0, result.stderr[-2000:]
    again = runs_of(tmp_path / "sweep")
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps  # nothing retrained
    for name in runs:
        assert without_volatile(again[name]) == without_volatile(runs[name])


@pytest.mark.slow
def test_rerunning_a_sweep_skips_finished_runs(tmp_path: Path) -> None:
    overrides = ("debug=smoke", "logger.mode=disabled", "prune.ratio=0.3,0.5")
    assert sweep(tmp_path, *overrides, cache=tmp_path / "cache").returncode == 0
    result = sweep(tmp_path, *overrides, cache=tmp_path / "cache")
    assert result.returncode == 0
    assert result.stdout.count("holds a finished run of this config; nothing to do") == 2
    assert "pretrain" not in result.stdout


def test_dense_key_covers_what_determines_the_dense_model(make_cfg) -> None:
    base = dense_key(make_cfg("debug=smoke"))
    same = [
        "heuristic=taylor",
        "prune.ratio=0.3",
        "relocation.strength=100",
        "finetune.epochs=3",
        "dataset.num_workers=2",
        "lowrank.weight=0.1 lowrank.phases=[finetune]",  # not active while pretraining
    ]
    for overrides in same:
        assert dense_key(make_cfg("debug=smoke", *overrides.split())) == base, overrides
    other = [
        "seed=1",
        "train.epochs=2",
        "train.optimizer.lr=0.01",
        "model.width=0.125",
        "dataset.frames=4",
        "lowrank.weight=0.1",
        "model=r3d_18",
    ]
    keys = {dense_key(make_cfg("debug=smoke", *overrides.split())) for overrides in other}
    assert base not in keys and len(keys) == len(other)


def test_joblib_jobs_divide_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    basic = OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher.X"})
    assert job_threads(basic) == 8
    assert job_threads(OmegaConf.create({"_target_": joblib, "n_jobs": 2})) == 4
    assert job_threads(OmegaConf.create({"_target_": joblib, "n_jobs": -1})) == 1
    assert job_threads(OmegaConf.create({"_target_": joblib, "n_jobs": -5})) == 2
    assert job_threads(OmegaConf.create({"_target_": joblib, "n_jobs": 16})) == 1


def test_sweep_group_names_the_sweep() -> None:
    assert sweep_group("multirun/quickstart") == "quickstart"
    assert sweep_group("multirun/2026-11-22/10-11-12") == "2026-11-22_10-11-12"


def test_experiments_define_their_sweep(tmp_path: Path) -> None:
    cfg = make("experiment=quickstart")
    assert cfg.hydra.sweep.dir == "multirun/quickstart"
    assert "joblib" in cfg.hydra.launcher._target_.lower()
    params = cfg.hydra.sweeper.params
    assert params.heuristic.split(",") == ["l1", "taylor", "apoz", "random"]
    assert params["relocation.strength"].split(",") == ["0", "100"]


def test_every_relocation_preset_composes_and_sets_something() -> None:
    from skr_cli.configs import config_dir

    default = make().relocation
    presets = sorted(p.stem for p in (Path(config_dir()) / "relocation").glob("*.yaml"))
    assert {"default", "skr", "compensate", "distill"} <= set(presets)
    for name in set(presets) - {"default"}:
        assert make(f"relocation={name}").relocation != default, name


def test_the_study_runs_its_arms_as_tuned_on_the_calibrated_benchmark() -> None:
    study = make("experiment=study")
    params = study.hydra.sweeper.params
    assert params["prune.ratio"] == "0.5,0.3,0.7" and params.seed == "0,1,2,3,4"
    assert params.arm == "baseline,penalty,span" and len(params.heuristic.split(",")) == 9
    calibration = make("experiment=calibration")
    assert study.train == calibration.train and study.dataset == calibration.dataset
    assert study.finetune.epochs == calibration.finetune.epochs == 10  # the one budget
    arms = {arm: make("experiment=study", f"arm={arm}") for arm in params.arm.split(",")}
    assert arms["baseline"].relocation.epochs == 0  # no phase: fine-tuning from removal on
    assert arms["span"].relocation.target == "span" and arms["span"].relocation.compensate
    assert arms["penalty"].relocation.strength > 0 and not arms["penalty"].relocation.compensate
    for cfg in arms.values():  # every arm keeps the study's data, budget and ratio
        assert (cfg.dataset, cfg.finetune.epochs, cfg.prune) == (
            study.dataset,
            study.finetune.epochs,
            study.prune,
        )
    ablation = make("experiment=study_ablation").hydra.sweeper.params
    for arm in ablation.arm.split(","):  # the span arm less one ingredient, or the baseline plus
        cfg = make("experiment=study", f"arm={arm}")
        assert cfg.relocation != arms["span"].relocation != arms["baseline"].relocation
    assert make("experiment=study", "arm=compensation").relocation.compensate
    budget = make("experiment=study_budget").hydra.sweeper.params
    assert budget["finetune.epochs"] == "3,30" and budget.arm == "baseline,span"
    sweeps = {make(f"experiment={n}").hydra.sweep.dir for n in ("study", "study_budget")}
    assert len(sweeps | {make("experiment=study_ablation").hydra.sweep.dir}) == 3
    # the committed arms are the tuning's best trials (the tuning's runs are committed too)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import study_arms
    finally:
        sys.path.pop(0)
    for path, text in study_arms.arm_files().items():
        assert path.read_text() == text, path


def test_the_calibration_experiments_compose_on_the_study_setting() -> None:
    names = ("calibration_dense", "calibration_tune", "calibration", "calibration_budget")
    configs = {name: make(f"experiment={name}") for name in names}
    for cfg in configs.values():  # one dense recipe, one data set for every part
        assert cfg.train == configs["calibration"].train and cfg.model.min_channels == 8
        assert cfg.dataset.generator == configs["calibration"].dataset.generator
    assert configs["calibration_tune"].eval.split == "val"
    assert configs["calibration"].eval.split == "test"
    budget = configs["calibration_budget"]
    assert budget.finetune.optimizer == configs["calibration"].finetune.optimizer
    assert budget.hydra.sweeper.params["finetune.epochs"] == "1,3,30"
    assert len(budget.hydra.sweeper.params.heuristic.split(",")) == 9
    sweeps = {cfg.hydra.sweep.dir for cfg in configs.values()}
    assert len(sweeps) == len(names)  # each part keeps its runs apart


def test_a_required_value_left_unset_is_one_line(skr_run) -> None:
    result = skr_run("experiment=ucf101_i3d", "logger.mode=disabled")
    assert result.returncode == 2
    expected = "model.weights is required by this experiment: set it, e.g. model.weights=..."
    assert result.stderr.strip().splitlines() == [f"skr-run: error: {expected}"]


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep(tmp_path: Path) -> None:
    overrides = ("debug=smoke", "logger.mode=disabled", "prune.ratio=1.5,0.5")
    result = sweep(tmp_path, *overrides, cache=tmp_path / "cache")
    assert result.returncode == 1
    assert list(runs_of(tmp_path / "sweep")) == ["debug=smoke,prune.ratio=0.5"]  # ran after it
    line = "skr-run: error: prune.ratio=1.5 is not allowed: a number in [0, 1)"
    assert line in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cuda:99"])
def test_a_device_that_is_not_there_is_one_line(skr_run, device: str) -> None:
    result = skr_run("debug=smoke", "logger.mode=disabled", f"device={device}")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"skr-run: error: device={device} is not allowed: auto | cpu | cuda")


def test_device_cpu_runs_on_the_cpu(make_cfg, tmp_path: Path) -> None:
    from skr_cli.pipeline.runcontext import build_context, run_device

    assert run_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert run_device("auto").type == expected
    ctx = build_context(make_cfg("debug=smoke", "device=cpu"), tmp_path)
    assert ctx.device == torch.device("cpu") and ctx.example.device == ctx.device


def test_kept_run_folders_hold_paths_relative_to_the_project(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "scripts"))
    try:
        from relative_paths import relative
    finally:
        sys.path.remove(str(root / "scripts"))
    hydra_yaml = "  runtime:\n    cwd: /srv/x/skr\n    output_dir: /srv/x/skr/benchmarks/run\n"
    assert relative(hydra_yaml, "/srv/x/skr") == (
        "  runtime:\n    cwd: .\n    output_dir: ./benchmarks/run\n"
    )
    assert relative('"path": "/srv/x/skr2/a"', "/srv/x/skr") == '"path": "/srv/x/skr2/a"'
    old = '"dense_cache": {"key": "c10a", "path": "/home/u/.cache/skr/dense/c10a/dense.pt"}'
    new = '"dense_cache": {"key": "c10a", "path": "dense/c10a/dense.pt"}'
    assert relative(old, "/srv/x/skr") == new
