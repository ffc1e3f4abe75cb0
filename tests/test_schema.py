"""The config schema: every option passes it, and a bad value, an unknown key or a folder that
cannot be written stops validation in one line naming the key, the value and what is allowed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from skr_cli.cli import check_composes, check_output_dir, validate
from skr_cli.pipeline import UserError
from skr_cli.schema import first_error
from tests.test_configs import OPTIONS


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_passes_the_schema(make_cfg, group: str, option: str) -> None:
    overrides = [f"{group}={option}"] if group == "debug" else [f"{group}={option}", "debug=smoke"]
    config = OmegaConf.to_container(make_cfg(*overrides), resolve=True)
    assert first_error(config) is None


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.optimizer.lr=-1", "train.optimizer.lr=-1 is not allowed: a number > 0"),
        ("finetune.optimizer.lr=0", "finetune.optimizer.lr=0 is not allowed: a number > 0"),
        (
            "train.optimizer.weight_decay=-0.1",
            "train.optimizer.weight_decay=-0.1 is not allowed: a number >= 0",
        ),
        (
            "+finetune.optimizer.betas=[0.9,1.0]",
            "finetune.optimizer.betas=[0.9, 1.0] is not allowed: [beta1, beta2], each in [0, 1)",
        ),
        ("train.optimizer.lr=true", "train.optimizer.lr=true is not allowed: a number > 0"),
        ("dataset.size=0", "dataset.size=0 is not allowed: an integer >= 1"),
        ("dataset.frames=-2", "dataset.frames=-2 is not allowed: an integer >= 1"),
        ("train.batch_size=0", "train.batch_size=0 is not allowed: an integer >= 1"),
        ("eval.batch_size=0", "eval.batch_size=0 is not allowed: an integer >= 1"),
        ("dataset.generator.noise=-1", "dataset.generator.noise=-1 is not allowed: a number >= 0"),
        (
            "relocation.distill.temperature=0",
            "relocation.distill.temperature=0 is not allowed: a number > 0",
        ),
        ("threads=0", "threads=0 is not allowed: an integer >= 1 or null"),
        ("prune.scope=wide", "prune.scope=wide is not allowed: local | global"),
        ("eval.split=train", "eval.split=train is not allowed: test | val"),
        ("+train.foo=1", "train.foo=1 is not allowed: no such key in train"),
        ("+model.dropout=0.1", "model.dropout=0.1 is not allowed: no such key in model"),
        ("+colour=red", "colour=red is not allowed: no such key in the top level"),
        (
            "train.optimizer._target_=torch.optim.RMSprop",
            "train.optimizer._target_=torch.optim.RMSprop is not allowed: one of "
            "torch.optim.AdamW | torch.optim.Adam | torch.optim.SGD",
        ),
        ("~train.epochs", "train.epochs is missing: every option of its group sets it"),
    ],
)
def test_a_bad_value_is_one_line(make_cfg, override: str, expected: str) -> None:
    overrides = ["model=r3d_18", override] if "model.dropout" in override else [override]
    with pytest.raises(UserError) as err:
        validate(make_cfg(*overrides))
    assert str(err.value) == expected


def test_a_cache_dir_under_a_file_is_one_line(make_cfg, tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    with pytest.raises(UserError) as err:
        validate(make_cfg(f"cache_dir={tmp_path / 'file' / 'cache'}"))
    assert str(err.value) == (
        f"cache_dir={tmp_path / 'file' / 'cache'} is not allowed: a folder that can be created "
        f"and written ({tmp_path / 'file'} is a file)"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_cache_dir_in_a_read_only_folder_is_one_line(make_cfg, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UserError, match=rf"^cache_dir=.*is not allowed: .*{locked} is not writ"):
        validate(make_cfg(f"cache_dir={locked / 'cache'}"))


@pytest.mark.parametrize(
    ("mode", "key"), [([], "hydra.run.dir"), (["--multirun"], "hydra.sweep.dir")]
)
def test_an_output_folder_under_a_file_is_one_line(tmp_path: Path, mode: list, key: str) -> None:
    (tmp_path / "file").touch()
    args = [*mode, f"{key}={tmp_path / 'file' / 'out'}"]
    with pytest.raises(UserError, match=rf"^{key}=.* is not allowed: .*{tmp_path / 'file'} is a"):
        check_output_dir(args, check_composes(args))


def test_inspecting_the_config_checks_no_output_folder(tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    args = ["--cfg", "job", f"hydra.run.dir={tmp_path / 'file' / 'out'}"]
    check_output_dir(args, check_composes(args))
