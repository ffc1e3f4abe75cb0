"""Every option of every config group composes, validates and instantiates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from skr_cli.cli import validate
from skr_cli.heuristics import HEURISTICS
from tests.conftest import CONF

# conf/hydra holds presets of Hydra's own groups (hydra/launcher), not skr's
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(group, p.stem) for group in GROUPS for p in sorted((CONF / group).glob("*.yaml"))]


def _targets(node: DictConfig, path: str = "") -> list[str]:
    """Dotted paths of every node with a ``_target_``."""
    found = [path] if "_target_" in node else []
    for key, value in node.items():
        if isinstance(value, DictConfig) and key != "hydra":
            found += _targets(value, f"{path}.{key}".lstrip("."))
    return found


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_instantiates(make_cfg, group: str, option: str) -> None:
    overrides = [f"{group}={option}"] if group == "debug" else [f"{group}={option}", "debug=smoke"]
    if group == "experiment":  # the real-data studies require a checkpoint and data
        overrides.append("required=[]")
    cfg = make_cfg(*overrides)
    validate(cfg)
    for path in _targets(cfg):
        built = instantiate(OmegaConf.select(cfg, path))
        if callable(built) and path.endswith("optimizer"):
            built = built([torch.nn.Parameter(torch.zeros(1))])
        assert built is not None


def test_groups_of_the_contract_exist() -> None:
    for group in ("dataset", "model", "heuristic", "prune", "train", "finetune", "logger", "debug"):
        assert group in GROUPS


def test_contract_keys_exist(make_cfg) -> None:
    cfg = make_cfg()
    for key in (
        "dataset",
        "model",
        "heuristic",
        "prune.ratio",
        "seed",
        "train.epochs",
        "finetune.epochs",
        "logger.mode",
    ):
        assert OmegaConf.select(cfg, key) is not None, key


def test_registry_matches_heuristic_configs(make_cfg) -> None:
    stems = {p.stem for p in (CONF / "heuristic").glob("*.yaml")}
    assert stems == set(HEURISTICS)
    for stem in stems:
        built = instantiate(make_cfg(f"heuristic={stem}").heuristic)
        assert type(built) is HEURISTICS[stem] and built.name == stem


def test_random_heuristic_takes_the_run_seed(make_cfg) -> None:
    assert instantiate(make_cfg("heuristic=random", "seed=7").heuristic).seed == 7


def test_help_lists_the_groups() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "skr-run"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for group in GROUPS:
        assert f"{group}: " in out
    assert "heuristic: " + ", ".join(sorted(HEURISTICS)) in out
