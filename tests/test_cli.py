"""End-to-end runs of ``skr-run`` on tiny synthetic data, in subprocesses, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skr_cli.heuristics import HEURISTICS
from skr_cli.tracking.metrics import comparable as without_volatile

pytestmark = pytest.mark.slow

SMOKE = ("debug=smoke", "logger.mode=disabled")


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``skr-run`` with ``args`` in a subprocess (the fixture ``skr_run`` is per test)."""
    entry = str(Path(sys.executable).parent / "skr-run")
    return subprocess.run([entry, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """One plain smoke run, shared by the tests that read what it leaves."""
    root = tmp_path_factory.mktemp("smoke")
    return run_cli(*SMOKE, f"hydra.run.dir={root / 'run'}", cwd=root), root / "run"


OTHER_HEURISTICS = sorted(set(HEURISTICS) - {"l1"})  # l1: the default


@pytest.fixture(scope="module")
def every_heuristic(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess, Path]:
    """Every other heuristic at ratio 0.3, end to end: one sweep (Hydra's basic launcher runs its
    jobs one after the other in one process), so that start-up is paid once."""
    root = tmp_path_factory.mktemp("heuristics")
    subdir = "hydra.sweep.subdir=${hydra:runtime.choices.heuristic}"
    sweep = [f"heuristic={','.join(OTHER_HEURISTICS)}", "prune.ratio=0.3"]
    args = ["-m", *SMOKE, *sweep, f"hydra.sweep.dir={root}", subdir]
    return run_cli(*args, cwd=root), root


@pytest.mark.xdist_group("cli_smoke")  # one worker runs the shared smoke run
def test_smoke_run_prunes_for_real(smoke) -> None:
    result, run_dir = smoke
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(run_dir)
    for key in (
        "heuristic",
        "prune_ratio",
        "relocation_strength",
        "lowrank_weight",
        "seed",
        "dataset",
        "model",
        "delta_loss_remove",
        "mac_convention",
    ):
        assert key in metrics
    for stage in ("dense", "pruned", "final"):
        assert {"top1", "top5", "params", "macs"} <= set(metrics[stage])
    assert {"video_top1", "latency_ms"} <= set(metrics["final"])
    assert metrics["final"]["params"] < metrics["dense"]["params"]
    assert metrics["final"]["macs"] < metrics["dense"]["macs"]
    assert metrics["channels"]["after"] < metrics["channels"]["before"]
    assert metrics["mac_convention"]["clip"] == [8, 32, 32]
    assert (metrics["heuristic"], metrics["dataset"], metrics["model"]) == (
        "l1",
        "synthetic",
        "i3d_tiny",
    )
    assert "fine-tuned" in result.stdout and "speedup" in result.stdout
    assert metrics["latency_form"] == "train"
    job = metrics["job_s"]  # the run's time outside its phases, and the whole run
    assert set(job) == {"setup", "tracking", "latency", "run"} and min(job.values()) >= 0
    assert job["run"] >= sum(metrics["timings_s"].values()) + job["setup"] + job["latency"]


@pytest.mark.parametrize(
    ("options", "form"),
    [
        (["eval.deploy=true"], "deployed"),
        (["eval.deploy=true", "eval.compile=true"], "deployed, compiled"),
    ],
)
def test_eval_deploy_times_the_deployed_form(skr_run, tmp_path: Path, options, form) -> None:
    result = skr_run(*SMOKE, *options, "eval.latency_runs=2")
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(tmp_path / "run")
    assert metrics["latency_form"] == form
    assert metrics["final"]["latency_ms"] > 0 and f"({form} form)" in result.stdout


@pytest.mark.xdist_group("cli_smoke")
def test_phase_outputs_are_in_the_run_dir(smoke) -> None:
    result, run_dir = smoke
    assert result.returncode == 0, result.stderr
    names = {p.name for p in run_dir.iterdir()}
    expected = {"dense.pt", "plan.json", "eval_pruned_bn_recal.json", "final.pt", "metrics.json"}
    assert expected | {".hydra"} <= names


@pytest.mark.xdist_group("cli_heuristics")  # one worker runs the shared sweep
@pytest.mark.parametrize("heuristic", OTHER_HEURISTICS)
def test_every_heuristic_runs_end_to_end(every_heuristic, heuristic: str) -> None:
    result, sweep = every_heuristic
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(sweep / heuristic)
    assert metrics["heuristic"] == heuristic and metrics["prune_ratio"] == 0.3


@pytest.mark.parametrize(
    "override", ["model=i3d", "dataset.num_workers=1", "dataset.cache_decoded=false"]
)
def test_other_options_run_end_to_end(skr_run, tmp_path: Path, override: str) -> None:
    result = skr_run(*SMOKE, override)
    assert result.returncode == 0, result.stderr
    metrics = metrics_of(tmp_path / "run")
    assert metrics["final"]["params"] < metrics["dense"]["params"]


@pytest.mark.xdist_group("cli_heuristics")
def test_same_seed_gives_the_same_metrics(skr_run, tmp_path: Path, every_heuristic) -> None:
    """A run alone in its process gives the metrics of the same config's job in a sweep."""
    assert skr_run(*SMOKE, "heuristic=taylor", "prune.ratio=0.3", out="a").returncode == 0
    first, second = metrics_of(tmp_path / "a"), metrics_of(every_heuristic[1] / "taylor")
    assert without_volatile(first) | {"group": None} == without_volatile(second) | {"group": None}


def test_python_dash_m_is_the_same_entry(skr_run, tmp_path: Path) -> None:
    result = skr_run(*SMOKE, "train.epochs=0", "finetune.epochs=0", module=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "metrics.json").exists()


def test_offline_wandb_run_lands_in_the_output_dir(skr_run, tmp_path: Path) -> None:
    result = skr_run("debug=smoke", "logger.mode=offline")
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("prune.ratio=1.5", "prune.ratio=1.5 is not allowed: a number in [0, 1)"),
        ("train.epochs=-1", "train.epochs=-1 is not allowed: an integer >= 0"),
        ("prune.round_to=0", "prune.round_to=0 is not allowed: an integer >= 1"),
        ("logger.mode=loud", "logger.mode=loud is not allowed: offline | online | disabled"),
        ("train.optimizer.lr=-1", "train.optimizer.lr=-1 is not allowed: a number > 0"),
    ],
)
def test_bad_values_stop_with_one_line(
    skr_run, tmp_path: Path, override: str, expected: str
) -> None:
    result = skr_run(*SMOKE, override)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"skr-run: error: {expected}"]
    assert not (tmp_path / "run" / "dense.pt").exists()  # stopped before any work


def test_a_bad_value_stops_before_torch_loads(tmp_path: Path) -> None:
    # the command line of a single run is checked with the light modules only; a sweep's jobs
    # are checked again in the job (and in app for every run, a search trial's draw applied)
    code = (
        "import sys\n"
        "from skr_cli.cli import main\n"
        f"sys.argv = ['skr-run', 'debug=smoke', 'hydra.run.dir={tmp_path / 'run'}', "
        "'relocation.strength=-1']\n"
        "try:\n    main()\n"
        "except SystemExit as stop:\n    print(stop.code, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert result.stderr.strip() == (
        "skr-run: error: relocation.strength=-1 is not allowed: a number >= 0"
    )


def test_the_choice_values_name_what_the_code_has() -> None:
    from skr_cli.choices import SYNTHETIC_CLASSES
    from skr_cli.data.synthetic import CLASSES

    assert SYNTHETIC_CLASSES == len(CLASSES)


def test_an_output_folder_that_cannot_be_created_is_one_line(skr_run, tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    result = skr_run(*SMOKE, f"hydra.run.dir={tmp_path / 'file' / 'run'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"skr-run: error: hydra.run.dir={tmp_path / 'file' / 'run'} is not allowed: a folder "
        f"that can be created and written ({tmp_path / 'file'} is a file)"
    ]


def test_unknown_heuristic_lists_the_valid_ones(skr_run) -> None:
    result = skr_run(*SMOKE, "heuristic=magic")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "heuristic" in result.stderr and "taylor" in result.stderr


def test_nan_loss_stops_the_phase_and_keeps_earlier_outputs(skr_run, tmp_path: Path) -> None:
    result = skr_run(*SMOKE, "finetune.optimizer.lr=1e12", "finetune.epochs=3")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("skr-run: error: finetune: loss is")
    run_dir = tmp_path / "run"
    assert (run_dir / "dense.pt").exists() and (run_dir / "plan.json").exists()
    assert not (run_dir / "metrics.json").exists()


def test_rerun_into_the_same_dir_resumes_with_the_same_metrics(skr_run, tmp_path: Path) -> None:
    assert skr_run(*SMOKE).returncode == 0
    first = metrics_of(tmp_path / "run")
    (tmp_path / "run" / "metrics.json").unlink()
    (tmp_path / "run" / "final.pt").unlink()  # as if killed during fine-tuning
    (tmp_path / "run" / "eval_final.json").unlink()
    assert skr_run(*SMOKE).returncode == 0
    assert without_volatile(metrics_of(tmp_path / "run")) == without_volatile(first)


def test_rerun_into_a_dir_of_another_config_is_refused(skr_run, tmp_path: Path) -> None:
    assert skr_run(*SMOKE).returncode == 0
    result = skr_run(*SMOKE, "seed=5")
    assert result.returncode == 2 and "holds a run of another config" in result.stderr


def test_a_key_added_later_at_its_old_behaviour_keeps_finished_runs_resumable(
    make_cfg, tmp_path: Path
) -> None:
    from omegaconf import OmegaConf, open_dict

    from skr_cli.pipeline import UserError
    from skr_cli.pipeline.outputs import KEYS_ADDED_LATER, check_run_dir

    for (*parents, key), unchanged in KEYS_ADDED_LATER.items():
        older = make_cfg("debug=smoke")
        with open_dict(older):  # the config as it was before the key existed
            OmegaConf.select(older, ".".join(parents)).pop(key)
        folder = tmp_path / key
        check_run_dir(older, folder)
        current = make_cfg("debug=smoke")
        assert OmegaConf.select(current, ".".join([*parents, key])) == unchanged
        check_run_dir(current, folder)  # the same run: accepted
        other = make_cfg("debug=smoke", f"{'.'.join([*parents, key])}=7")
        with pytest.raises(UserError, match="another config"):
            check_run_dir(other, folder)
