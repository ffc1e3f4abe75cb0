"""End-to-end runs of the pruning options: scope, compute budget, iterative pruning, agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from skr_cli.engine.checkpoint import load_state
from skr_cli.pruning.history import load_pruned
from skr_cli.pruning.layers import prunable_layers

pytestmark = pytest.mark.slow

SMOKE = ("debug=smoke", "logger.mode=disabled")


def outputs(run_dir: Path) -> tuple[dict, dict]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return metrics, json.loads((run_dir / "plan.json").read_text())


def test_global_scope_keeps_min_channels(skr_run, tmp_path: Path) -> None:
    result = skr_run(*SMOKE, "prune.scope=global", "prune.min_channels=2", "prune.ratio=0.7")
    assert result.returncode == 0, result.stderr
    metrics, plan = outputs(tmp_path / "run")
    (layers,) = plan["rounds"]
    for layer in layers.values():  # a layer narrower than min_channels keeps all it has
        assert layer["channels"] - len(layer["removed"]) >= min(2, layer["channels"])
    assert all(len(layer["scores"]) == layer["channels"] for layer in layers.values())
    removed = sum(len(layer["removed"]) for layer in layers.values())
    assert removed == metrics["channels"]["before"] - metrics["channels"]["after"]
    assert metrics["prune"]["scope"] == "global"


def test_target_macs_gives_that_share_of_the_dense_macs(skr_run, tmp_path: Path) -> None:
    result = skr_run(*SMOKE, "prune.target_macs=0.5", "model.width=0.125")
    assert result.returncode == 0, result.stderr
    metrics, _ = outputs(tmp_path / "run")
    assert abs(metrics["final"]["macs"] / metrics["dense"]["macs"] - 0.5) <= 0.01
    assert abs(metrics["prune"]["macs_share"] - 0.5) <= 0.01


def test_round_to_keeps_multiples_of_eight_channels(skr_run, tmp_path: Path) -> None:
    result = skr_run(*SMOKE, "prune.round_to=8", "model.width=0.25")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run"
    metrics, _ = outputs(run_dir)
    assert metrics["prune"]["round_to"] == 8
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    dense = prunable_layers(instantiate(cfg.model))
    final = load_pruned(instantiate(cfg.model), load_state(run_dir / "final.pt"))
    widths = {name: layer.channels for name, layer in prunable_layers(final).items()}
    pruned = [name for name, width in widths.items() if width < dense[name].channels]
    assert pruned  # a layer narrower than 8 keeps its width, the others a multiple of 8
    assert all(widths[name] % 8 == 0 for name in pruned)


def test_iterative_pruning_records_every_round_and_reloads(skr_run, tmp_path: Path) -> None:
    result = skr_run(*SMOKE, "prune.steps=3", "heuristic=taylor")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run"
    metrics, plan = outputs(run_dir)
    assert len(plan["rounds"]) == 3
    assert {"step1.pt", "step2.pt"} <= {p.name for p in run_dir.iterdir()}
    assert 0 < metrics["pruned"]["top1_bn_recal"] <= 100
    # final.pt carries its pruning history: the dense architecture plus the plans rebuild it
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    model = load_pruned(instantiate(cfg.model), load_state(run_dir / "final.pt")).eval()
    assert sum(p.numel() for p in model.parameters()) == metrics["final"]["params"]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 32, 32)).shape == (2, cfg.dataset.num_classes)


def test_agreement_only_compares_heuristics_on_one_model(skr_run, tmp_path: Path) -> None:
    result = skr_run(*SMOKE, "agreement.heuristics=[l1,l2,random]", "agreement.only=true")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run"
    report = json.loads((run_dir / "agreement.json").read_text())
    assert report["heuristics"] == ["l1", "l2", "random"]
    for matrix in (report["kendall_tau"]["mean"], report["jaccard"]["mean"]):
        assert [matrix[i][i] for i in range(3)] == pytest.approx([1.0, 1.0, 1.0])
    assert set(report["scores"]["l2"]) == set(report["kendall_tau"]["per_layer"])
    assert not (run_dir / "metrics.json").exists()  # nothing was pruned
    timings = json.loads((run_dir / "timings.json").read_text())
    assert {"pretrain", "evaluate_dense", "agreement"} <= set(timings["timings_s"])
    assert timings["dense_cache"]["train_seconds"] > 0  # trained here or by an earlier run
    assert "Kendall" in result.stdout
