"""Reliability: resume after a kill inside any phase, atomic outputs, safe loading, one-line
errors for bad inputs, non-finite losses, wandb without a network, and failed writes.

The end-to-end tests kill a real ``skr-run`` with SIGKILL at a chosen point (``SKR_FAULT``, see
``skr_cli.engine.faults``), run the same command again into the same folder, and compare
metrics.json with an uninterrupted run's.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from skr_cli.data.clips import SeededSampler, collate_clips
from skr_cli.engine import checkpoint as checkpoint_module
from skr_cli.engine.checkpoint import (
    CheckpointError,
    PhaseCheckpoint,
    atomic_write_bytes,
    load_state,
    partial_path,
    save_state,
    write_json,
)
from skr_cli.engine.train import NonFiniteLoss, train
from skr_cli.lowrank import ProximalStep
from skr_cli.tracking.metrics import comparable as without_volatile
from skr_cli.tracking.wandb_run import wandb_run

SKR_RUN = str(Path(sys.executable).parent / "skr-run")

# ---------------------------------------------------------------------------------------------
# In-process: the training loop's checkpoint, atomic writes, safe loading


class Clips(Dataset):
    """Random clips (3, 4, 8, 8) of 3 classes, the same for the same (index, seed)."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = item
        clip = torch.rand(3, 4, 8, 8, generator=torch.Generator().manual_seed(seed))
        return clip + index % 3, index % 3


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Dropout(0.3),  # draws from the global RNG: a resumed epoch must draw the same
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


class Crash(Exception):
    """Stands for the process dying mid-epoch."""


def run_training(tmp_path: Path, *, crash_at: int | None = None, nan_at: int | None = None):
    """Trains ``tiny_net`` for 3 epochs of 3 steps with a per-epoch checkpoint; returns the
    model, the losses and the proximal step (every 2 steps: its counter crosses epochs)."""
    torch.manual_seed(0)
    model = tiny_net()
    loader = DataLoader(
        Clips(),
        batch_size=4,
        sampler=SeededSampler(12, torch.Generator().manual_seed(1)),
        collate_fn=collate_clips,
    )
    conv = model[0]
    proximal = ProximalStep({"conv": conv}, weight=0.1, group_weight=0.0, l1_ratio=0.0, every=2)
    checkpoint = PhaseCheckpoint(
        tmp_path / "out.pt.partial",
        generator=loader.sampler.generator,
        carried={"after_step": proximal},
    )

    def objective(model, clips, labels, logits, step):
        if step == crash_at:
            raise Crash
        loss = nn.functional.cross_entropy(logits, labels)
        return loss * float("nan") if step == nan_at else loss

    losses = train(
        model,
        loader,
        epochs=3,
        make_optimizer=lambda params: torch.optim.AdamW(params, lr=0.01),
        phase="finetune",
        on_skipped=lambda paths: None,
        progress=False,
        after_step=proximal,
        objective=objective,
        checkpoint=checkpoint,
    )
    return model, losses, proximal


def test_a_phase_killed_mid_epoch_resumes_to_the_same_weights(tmp_path: Path) -> None:
    reference, ref_losses, _ = run_training(tmp_path / "reference")
    with pytest.raises(Crash):
        run_training(tmp_path / "resumed", crash_at=5)  # epoch 2 of 3 (3 steps per epoch)
    saved = load_state(tmp_path / "resumed" / "out.pt.partial")
    assert saved["epoch"] == 1 and saved["step"] == 3
    resumed, losses, proximal = run_training(tmp_path / "resumed")
    assert losses == ref_losses
    ours = resumed.state_dict()
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, ours[name]), name
    assert proximal.calls == 9  # the counter went on from 3, not from 0


def test_nan_loss_names_the_phase_and_step_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLoss) as caught:
        run_training(tmp_path, nan_at=5)
    assert str(caught.value) == "finetune: loss is nan at step 5"
    assert load_state(tmp_path / "out.pt.partial")["epoch"] == 1  # the last good state


def test_partial_checkpoint_lies_beside_the_output_wherever_it_is(tmp_path: Path) -> None:
    assert partial_path(tmp_path / "cache" / "dense.pt") == tmp_path / "cache" / "dense.pt.partial"


def test_a_failed_write_keeps_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"top1": 1.0})

    def half_then_fail(file) -> None:
        file.write(b'{"top1": 2')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(CheckpointError) as caught:
        atomic_write_bytes(path, half_then_fail)
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert json.loads(path.read_text()) == {"top1": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def test_a_kill_while_writing_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"top1": 1.0})
    code = (
        "import sys; from pathlib import Path; from skr_cli.engine.checkpoint import write_json;"
        "write_json(Path(sys.argv[1]), {'top1': 2.0})"
    )
    env = os.environ | {"SKR_FAULT": "write:metrics.json"}
    result = subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=False)
    assert result.returncode == -signal.SIGKILL
    assert json.loads(path.read_text()) == {"top1": 1.0}


def test_a_failed_checkpoint_write_is_one_line_and_keeps_the_last_good_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Crash):
        run_training(tmp_path, crash_at=5)  # out.pt.partial holds epoch 1
    real_replace = os.replace

    def disk_full(src, dst):
        if Path(dst).name == "out.pt.partial":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint_module.os, "replace", disk_full)
    with pytest.raises(CheckpointError) as caught:
        run_training(tmp_path)
    message = str(caught.value)
    assert message == f"cannot write {tmp_path / 'out.pt.partial'}: No space left on device"
    assert load_state(tmp_path / "out.pt.partial")["epoch"] == 1


class Marker:
    """Pickles into a call that would create a file: the proof that pickled code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"model": {"w": torch.zeros(2)}, "payload": Marker(marker)}, path)
    return path


def test_a_checkpoint_with_pickled_code_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = hostile_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError) as caught:
        load_state(path)
    assert str(caught.value).startswith(f"{path}: refused: it carries pickled code (")
    assert "\n" not in str(caught.value)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "dense.pt"
    save_state(path, {"model": {"w": torch.zeros(1000)}})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError) as caught:
        load_state(path)
    assert str(caught.value).startswith(f"{path}: cannot be read")
    assert "\n" not in str(caught.value)


def test_every_torch_load_is_weights_only() -> None:
    root = Path(__file__).resolve().parents[1]
    for folder in ("src", "scripts"):
        for source in (root / folder).rglob("*.py"):
            for number, line in enumerate(source.read_text().splitlines(), 1):
                if "torch.load(" in line:
                    assert "weights_only=True" in line, f"{source}:{number}"


@pytest.mark.parametrize(
    "env",
    [
        pytest.param(
            {"WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_API_KEY": "a" * 40}, id="down"
        ),
        pytest.param({"WANDB_API_KEY": None}, id="no-key"),
    ],
)
def test_wandb_online_without_network_falls_back_to_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture, env: dict
) -> None:
    """An unreachable server (a closed port, a key that cannot be checked) or no key at all: the
    run is logged offline after at most ``timeout`` seconds, with one warning line."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))  # no stored key
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    options = dict(project="skr", group=None, name="t", tags=[], config={"seed": 0})
    with wandb_run(mode="online", out_dir=tmp_path, timeout=2, **options) as run:
        run.log({"top1": 1.0})
    warnings = [line for line in capfd.readouterr().err.splitlines() if "skr-run: warning" in line]
    assert len(warnings) == 1 and "logging offline" in warnings[0]
    assert any((tmp_path / "wandb").glob("offline-run-*/*.wandb"))


# ---------------------------------------------------------------------------------------------
# End to end: a real skr-run killed at a chosen point, then run again into the same folder

# Every training phase long enough (2 epochs, 6 steps each) to be killed inside its second epoch:
# pretrain, the relocation phase, fine-tuning.
KILLED = (
    "debug=smoke",
    "logger.mode=disabled",
    "threads=1",
    "train.epochs=2",
    "finetune.epochs=4",
    "relocation.strength=1.0",
    "relocation.epochs=2",
)


def skr_run(
    run_dir: Path,
    *overrides: str,
    cache: Path,
    fault: str | None = None,
    env: dict[str, str] | None = None,
    **kwargs,
) -> subprocess.CompletedProcess:
    """``skr-run`` into ``run_dir`` with generated data and dense models under ``cache``;
    ``fault`` is an ``SKR_FAULT`` point where the process kills itself."""
    env = os.environ | {"SKR_CACHE_DIR": str(cache)} | (env or {})
    env.pop("SKR_FAULT", None)
    if fault is not None:
        env["SKR_FAULT"] = fault
    args = [SKR_RUN, f"hydra.run.dir={run_dir}", *overrides]
    return subprocess.run(
        args, capture_output=True, text=True, cwd=run_dir.parent, env=env, timeout=600, **kwargs
    )


def comparable(run_dir: Path) -> dict:
    """metrics.json without wall-clock figures and the dense cache's provenance."""
    return without_volatile(json.loads((run_dir / "metrics.json").read_text()))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("uninterrupted")
    result = skr_run(root / "run", *KILLED, cache=root / "cache")
    assert result.returncode == 0, result.stderr
    return comparable(root / "run")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "left"),
    [
        ("pretrain:step:8", "dense.pt.partial"),
        ("relocation 1:step:8", "relocated1.pt.partial"),
        ("finetune:step:8", "final.pt.partial"),
        ("write:final.pt", "final.pt.partial"),
        ("write:relocated1.pt.partial", "plan.json"),
        ("write:metrics.json", "eval_final.json"),
    ],
)
def test_killed_anywhere_the_same_command_ends_with_the_same_metrics(
    tmp_path: Path, uninterrupted: dict, fault: str, left: str
) -> None:
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    killed = skr_run(run_dir, *KILLED, fault=fault, cache=cache)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (run_dir / "metrics.json").exists()
    assert (run_dir / left).exists() or any(cache.rglob(left))
    assert skr_run(run_dir, *KILLED, cache=cache).returncode == 0
    assert comparable(run_dir) == uninterrupted
    assert not list(run_dir.glob("*.partial")) and not list(cache.rglob("*.partial"))


@pytest.mark.slow
def test_a_resumed_phase_starts_from_its_last_epoch_not_from_scratch(tmp_path: Path) -> None:
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    killed = skr_run(run_dir, *KILLED, fault="finetune:step:8", cache=cache)
    assert killed.returncode == -signal.SIGKILL
    # step 3 lies in the first epoch, which the checkpoint already holds: a phase that started
    # over would reach it and die again
    resumed = skr_run(run_dir, *KILLED, fault="finetune:step:3", cache=cache)
    assert resumed.returncode == 0, resumed.stderr


# ---------------------------------------------------------------------------------------------
# End to end: bad inputs, hostile files, non-finite losses, failed writes

SMOKE = ("debug=smoke", "logger.mode=disabled", "threads=1")


def bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    """(overrides, the one line printed): the table of docs/reliability.md."""
    a_file = tmp / "notes.txt"
    a_file.touch()
    return [
        (["prune.ratio=1.0"], "prune.ratio=1.0 is not allowed: a number in [0, 1)"),
        (["prune.ratio=-0.1"], "prune.ratio=-0.1 is not allowed: a number in [0, 1)"),
        (["relocation.strength=-1"], "relocation.strength=-1 is not allowed: a number >= 0"),
        (["lowrank.weight=-1e-4"], "lowrank.weight=-0.0001 is not allowed: a number >= 0"),
        (["lowrank.energy=0"], "lowrank.energy=0 is not allowed: a number in (0, 1]"),
        (["lowrank.energy=1.5"], "lowrank.energy=1.5 is not allowed: a number in (0, 1]"),
        (
            ["dataset=ucf101", f"dataset.root={tmp}", f"dataset.splits={tmp}", "dataset.fold=4"],
            "dataset.fold=4 is not allowed: 1 | 2 | 3",
        ),
        (
            ["dataset=hmdb51", f"dataset.root={tmp / 'nope'}", f"dataset.splits={tmp}"],
            f"dataset.root={tmp / 'nope'} is not allowed: a folder that exists",
        ),
        (
            [f"model.weights={tmp / 'nope.pt'}"],
            f"model.weights={tmp / 'nope.pt'} is not allowed: no such file",
        ),
        (
            ["heuristic=magic"],
            "heuristic=magic is not allowed: one of apoz | bn_scale | fpgm | l1 | l2 | "
            "mean_activation | random | svd_entropy | taylor | taylor_weight",
        ),
        (
            ["model=i3d_xl"],
            "model=i3d_xl is not allowed: one of i3d | i3d_r50 | i3d_tiny | r2plus1d_18 | "
            "r3d_18 | s3d",
        ),
        (
            ["dataset=imagenet"],
            "dataset=imagenet is not allowed: one of hmdb51 | kinetics400 | synthetic | "
            "synthetic_study | ucf101",
        ),
        (["train.epochs=-1"], "train.epochs=-1 is not allowed: an integer >= 0"),
        (["logger.mode=loud"], "logger.mode=loud is not allowed: offline | online | disabled"),
        (["logger.timeout=0"], "logger.timeout=0 is not allowed: seconds > 0"),
        (["train.optimizer.lr=-1"], "train.optimizer.lr=-1 is not allowed: a number > 0"),
        (["+train.foo=1"], "train.foo=1 is not allowed: no such key in train"),
        (
            [f"hydra.run.dir={a_file / 'run'}"],
            f"hydra.run.dir={a_file / 'run'} is not allowed: a folder that can be created and "
            f"written ({a_file} is a file)",
        ),
        (["nokey=3"], "Could not override 'nokey'; To append to your config use +nokey=3"),
        (
            ["prune.ratio=0.3,0.5"],
            "Ambiguous value for argument 'prune.ratio=0.3,0.5'; 1. To use it as a list, use "
            "key=[value1,value2]",
        ),
    ]


@pytest.mark.slow
def test_every_bad_input_prints_its_one_line(tmp_path: Path) -> None:
    cases = bad_inputs(tmp_path)

    def attempt(number: int) -> subprocess.CompletedProcess:
        overrides = cases[number][0]
        return skr_run(tmp_path / f"run{number}", *SMOKE, *overrides, cache=tmp_path / "cache")

    with ThreadPoolExecutor(max_workers=4) as pool:  # independent processes: start-up dominates
        results = list(pool.map(attempt, range(len(cases))))
    for number, ((overrides, expected), result) in enumerate(zip(cases, results, strict=True)):
        run_dir = tmp_path / f"run{number}"
        assert result.returncode == 2, (overrides, result.stderr)
        assert result.stderr.strip().splitlines() == [f"skr-run: error: {expected}"], overrides
        assert not (run_dir / "run_key.json").exists()  # stopped before any work


@pytest.mark.slow
def test_a_debug_switch_shows_the_traceback(tmp_path: Path) -> None:
    env = {"SKR_DEBUG": "1"}
    result = skr_run(tmp_path / "run", *SMOKE, "prune.ratio=1.0", cache=tmp_path, env=env)
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.slow
def test_hostile_weights_are_refused_before_any_work(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = hostile_checkpoint(tmp_path / "evil.pt", marker)
    result = skr_run(tmp_path / "run", *SMOKE, f"model.weights={path}", cache=tmp_path / "c")
    assert result.returncode == 2
    expected = f"skr-run: error: model.weights={path}: refused: it carries pickled code ("
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected)
    assert not marker.exists()


@pytest.mark.slow
def test_a_hostile_phase_output_in_the_run_dir_is_refused(tmp_path: Path) -> None:
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    overrides = (*SMOKE, "dense_cache=false")
    killed = skr_run(run_dir, *overrides, fault="write:eval_dense.json", cache=cache)
    assert killed.returncode == -signal.SIGKILL
    marker = tmp_path / "ran"
    hostile_checkpoint(run_dir / "dense.pt", marker)  # swapped in by someone else
    result = skr_run(run_dir, *overrides, cache=cache)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"skr-run: error: {run_dir / 'dense.pt'}: refused: it carries")
    assert not marker.exists()


@pytest.mark.slow
def test_nan_loss_stops_with_one_line_and_keeps_earlier_outputs(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = skr_run(
        run_dir, *SMOKE, "finetune.optimizer.lr=1e12", "finetune.epochs=3", cache=tmp_path / "c"
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skr-run: error: finetune: loss is ")
    assert " at step " in lines[0]
    assert (run_dir / "plan.json").exists() and (run_dir / "eval_pruned.json").exists()
    assert not (run_dir / "metrics.json").exists()


def _limit_file_size() -> None:  # in the child: files larger than 100 KiB cannot be written
    resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, resource.RLIM_INFINITY))


@pytest.mark.slow
def test_a_failed_write_stops_with_one_line_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    overrides = (*SMOKE, "dense_cache=false", "finetune.epochs=3")
    killed = skr_run(run_dir, *overrides, fault="finetune:step:8", cache=cache)
    assert killed.returncode == -signal.SIGKILL  # final.pt.partial holds epoch 1
    before = (run_dir / "final.pt.partial").read_bytes()
    # the disk "fills up": no file over 100 KiB can be written (a checkpoint is ~400 KiB)
    full = skr_run(run_dir, *overrides, cache=cache, preexec_fn=_limit_file_size)
    assert full.returncode == 1
    assert full.stderr.strip().splitlines() == [
        f"skr-run: error: cannot write {run_dir / 'final.pt.partial'}: File too large"
    ]
    assert (run_dir / "final.pt.partial").read_bytes() == before
    assert load_state(run_dir / "final.pt.partial")["epoch"] == 1
    assert skr_run(run_dir, *overrides, cache=cache).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_stops_with_one_line(tmp_path: Path) -> None:
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    overrides = (*SMOKE, "dense_cache=false")
    killed = skr_run(run_dir, *overrides, fault="finetune:step:2", cache=cache)
    assert killed.returncode == -signal.SIGKILL
    run_dir.chmod(0o555)
    try:
        result = skr_run(run_dir, *overrides, cache=cache)
    finally:
        run_dir.chmod(0o755)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"skr-run: error: cannot write {run_dir}") and "ermission" in last
