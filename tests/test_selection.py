"""Selection scopes, the MAC budget search, pruned checkpoints and batch-norm re-estimation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from skr_cli.engine.batchnorm import recalibrate_batchnorm
from skr_cli.engine.checkpoint import load_state, save_state
from skr_cli.heuristics import L1, RandomScores
from skr_cli.models.i3d import InceptionI3d
from skr_cli.pruning.count import count_macs
from skr_cli.pruning.history import apply_plans, load_pruned, macs_after, pruned_checkpoint
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import (
    kept_rounded,
    removal_order,
    select,
    select_for_budget,
    select_global,
    select_local,
)

CLIP = torch.randn(1, 3, 8, 32, 32)


def tiny() -> InceptionI3d:
    torch.manual_seed(0)
    return InceptionI3d(num_classes=5, width=0.125, dropout=0.0, in_channels=3).eval()


def test_local_scope_respects_min_channels() -> None:
    scores = {"a": torch.arange(8.0), "b": torch.arange(3.0)}
    assert select_local(scores, 0.9, min_channels=2) == {"a": [0, 1, 2, 3, 4, 5], "b": [0]}


def test_global_scope_ranks_normalised_scores_across_layers() -> None:
    # layer b's scores are 100x larger but, normalised, its first channel is the weakest
    scores = {"a": torch.tensor([1.0, 2.0, 3.0]), "b": torch.tensor([10.0, 200.0, 390.0])}
    assert select_global(scores, 2 / 6, min_channels=1) == {"a": [0], "b": [0]}


def test_global_scope_keeps_min_channels_in_every_layer() -> None:
    scores = {"weak": torch.full((6,), 1e-3) + torch.arange(6.0) * 1e-6, "strong": torch.ones(6)}
    scores["strong"][0] = 100.0  # every strong channel but one is far below its own mean
    plan = select_global(scores, 0.9, min_channels=3)
    assert all(6 - len(plan[name]) >= 3 for name in scores)
    assert sum(len(indices) for indices in plan.values()) == 6  # 3 removable per layer


def test_local_removal_order_spreads_over_layers() -> None:
    scores = {"a": torch.arange(4.0), "b": torch.arange(8.0)}
    order = removal_order(scores, "local", min_channels=1)
    first_half = order[:5]  # about half of the removable channels of each layer
    assert sum(name == "a" for name, _ in first_half) == 2
    assert sum(name == "b" for name, _ in first_half) == 3


def test_select_rejects_an_unknown_scope() -> None:
    with pytest.raises(ValueError, match="prune.scope=everywhere"):
        select({"a": torch.ones(2)}, 0.5, "everywhere", 1)


@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("target", [0.3, 0.5, 0.7])
def test_target_macs_lands_within_two_percent(scope: str, target: float) -> None:
    model = tiny()
    scores = L1().score(model, prunable_layers(model), [])
    dense = count_macs(model, CLIP)
    plan = select_for_budget(
        scores,
        lambda p: macs_after(model, p, CLIP) / dense,
        target,
        scope=scope,
        min_channels=1,
        tolerance=0.005,
    )
    share = macs_after(model, plan, CLIP) / dense
    assert abs(share - target) <= 0.02 * target


@pytest.mark.parametrize(
    ("channels", "keep", "min_channels", "expected"),
    [
        (64, 20, 1, 24),  # the nearest multiple, halves up
        (64, 19, 1, 16),
        (64, 3, 1, 8),  # never zero channels
        (64, 20, 17, 24),
        (64, 20, 25, 32),  # at least min_channels, rounded up
        (6, 3, 1, 6),  # narrower than round_to: not pruned
        (100, 99, 1, 96),  # a width that is no multiple rounds down to one
        (100, 100, 1, 100),  # nothing planned: nothing removed
        (14, 13, 1, 14),  # the nearest multiple, 16, is more than the layer has: not pruned
    ],
)
def test_round_to_keeps_a_multiple_or_the_whole_layer(
    channels: int, keep: int, min_channels: int, expected: int
) -> None:
    assert kept_rounded(channels, keep, 8, min_channels) == expected
    assert kept_rounded(channels, keep, 1, min_channels) == keep


@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("budget", ["ratio", "target_macs"])
def test_round_to_holds_in_every_scope_and_budget(scope: str, budget: str) -> None:
    torch.manual_seed(0)
    model = InceptionI3d(num_classes=5, width=0.5, dropout=0.0, in_channels=3).eval()
    scores = L1().score(model, prunable_layers(model), [])
    if budget == "ratio":
        plan = select(scores, 0.6, scope, min_channels=1, round_to=8)
    else:
        dense = count_macs(model, CLIP)
        share = lambda p: macs_after(model, p, CLIP) / dense  # noqa: E731
        plan = select_for_budget(
            scores, share, 0.4, scope=scope, min_channels=1, tolerance=0.005, round_to=8
        )
        assert abs(share(plan) - 0.4) <= 0.05
    kept = {name: values.numel() - len(plan[name]) for name, values in scores.items()}
    pruned = [name for name, values in scores.items() if kept[name] < values.numel()]
    assert len(pruned) > len(scores) // 2
    assert all(kept[name] % 8 == 0 and kept[name] > 0 for name in pruned)


def test_pruned_checkpoint_reloads_with_the_same_outputs(tmp_path) -> None:
    model = tiny()
    first = select_local(RandomScores(seed=0).score(model, prunable_layers(model), []), 0.3)
    apply_plans(model, [first], CLIP)
    second = select_local(RandomScores(seed=1).score(model, prunable_layers(model), []), 0.3)
    apply_plans(model, [second], CLIP)
    with torch.no_grad():
        for parameter in model.parameters():  # weights unlike any fresh model's
            parameter.add_(torch.randn_like(parameter) * 0.1)
    save_state(tmp_path / "pruned.pt", pruned_checkpoint(model, [first, second], [3, 8, 32, 32]))
    reloaded = load_pruned(tiny(), load_state(tmp_path / "pruned.pt")).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(CLIP), model(CLIP))


def test_load_pruned_refuses_a_plain_state() -> None:
    with pytest.raises(KeyError, match="plans"):
        load_pruned(tiny(), {"model": tiny().state_dict()})


def test_batchnorm_recalibration_takes_the_batch_statistics() -> None:
    net = nn.Sequential(nn.Conv3d(2, 3, 1), nn.BatchNorm3d(3))
    batches = [(torch.randn(4, 2, 2, 3, 3) * 5 + 1, torch.zeros(4)) for _ in range(3)]
    weights = copy.deepcopy(net[1].weight.data)
    assert recalibrate_batchnorm(net, batches) == 12
    with torch.no_grad():
        features = torch.cat([net[0](clips) for clips, _ in batches])
    expected = features.mean(dim=(0, 2, 3, 4))
    torch.testing.assert_close(net[1].running_mean, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(net[1].weight.data, weights)
    assert not net.training and net[1].momentum == 0.1
