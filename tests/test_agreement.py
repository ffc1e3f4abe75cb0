"""Kendall τ-b between heuristics' scores and Jaccard overlap of their removal plans."""

from __future__ import annotations

import json

import pytest
import torch

from skr_cli.heuristics import L1, Taylor
from skr_cli.heuristics.agreement import agreement, jaccard, kendall_tau, plan_jaccard
from skr_cli.models.i3d import InceptionI3d
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import select_local


def test_kendall_tau_b_counts_ties() -> None:
    # 6 pairs: 4 concordant, 0 discordant, one tied in x only, one tied in y only:
    # τ-b = (4 − 0) / √((6 − 1)(6 − 1)) = 0.8 (τ-a would give 4 / 6)
    tau = kendall_tau(torch.tensor([1.0, 2.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0, 3.0]))
    assert tau == pytest.approx(0.8)


def test_kendall_tau_counts_discordant_pairs() -> None:
    # 6 pairs, one discordant (the swapped middle): (5 − 1) / 6
    tau = kendall_tau(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 3.0, 2.0, 4.0]))
    assert tau == pytest.approx(2 / 3)


def test_kendall_tau_is_undefined_without_an_order() -> None:
    assert kendall_tau(torch.tensor([0.3]), torch.tensor([0.5])) is None
    assert kendall_tau(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.0, 2.0, 3.0])) is None


def test_kendall_tau_rejects_unpaired_scores() -> None:
    with pytest.raises(ValueError, match="do not pair up"):
        kendall_tau(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0, 3.0]))


def test_jaccard_of_known_sets() -> None:
    assert jaccard([0, 1, 2], [1, 2, 3]) == 0.5
    assert jaccard([0, 1], [2, 3]) == 0.0
    assert jaccard([], []) == 1.0


def test_plan_jaccard_is_per_layer_and_needs_the_same_layers() -> None:
    assert plan_jaccard({"a": [0, 1], "b": [2]}, {"a": [1], "b": [2]}) == {"a": 0.5, "b": 1.0}
    with pytest.raises(ValueError, match="other layers"):
        plan_jaccard({"a": [0]}, {"b": [0]})


def test_agreement_matrices_per_layer_and_averaged() -> None:
    up = {
        "a": torch.tensor([1.0, 2.0, 3.0, 4.0]),
        "b": torch.tensor([1.0, 2.0]),
        "c": torch.ones(1),
    }
    down = {name: -scores for name, scores in up.items()}
    plans = {
        "up": {"a": [0, 1], "b": [0], "c": []},
        "down": {"a": [2, 3], "b": [1], "c": []},
    }
    result = agreement({"up": up, "down": down}, plans)
    assert result["heuristics"] == ["up", "down"] and result["layers"] == ["a", "b", "c"]
    tau = result["kendall_tau"]
    assert tau["per_layer"]["a"] == [[1.0, -1.0], [-1.0, 1.0]]
    assert tau["per_layer"]["c"] == [[None, None], [None, None]]  # one channel: no order
    assert tau["mean"] == [[1.0, -1.0], [-1.0, 1.0]]  # layer c is left out of the mean
    overlap = result["jaccard"]
    assert overlap["per_layer"]["a"] == [[1.0, 0.0], [0.0, 1.0]]
    assert overlap["mean"] == [[1.0, 1 / 3], [1 / 3, 1.0]]  # layers a, b, c: 0, 0, 1


def test_agreement_is_json_serialisable() -> None:
    scores = {"x": {"a": torch.tensor([0.1, 0.2])}, "y": {"a": torch.tensor([0.2, 0.1])}}
    result = agreement(scores, {"x": {"a": [0]}, "y": {"a": [1]}})
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_agreement_needs_scores_and_plans_of_the_same_heuristics() -> None:
    with pytest.raises(ValueError, match="do not pair up"):
        agreement({"x": {"a": torch.ones(2)}}, {"y": {"a": [0]}})


def test_a_heuristic_agrees_with_itself_on_i3d_tiny() -> None:
    torch.manual_seed(0)
    model = InceptionI3d(num_classes=4, width=0.0625, dropout=0.0, in_channels=3)
    layers = prunable_layers(model)
    batch = [(torch.randn(2, 3, 4, 32, 32), torch.tensor([0, 1]))]
    scores = {"l1": L1().score(model, layers, []), "taylor": Taylor().score(model, layers, batch)}
    plans = {name: select_local(table, 0.5) for name, table in scores.items()}
    result = agreement(scores, plans)
    for i in range(2):
        assert result["kendall_tau"]["mean"][i][i] == pytest.approx(1.0)
        assert result["jaccard"]["mean"][i][i] == 1.0
    assert result["jaccard"]["mean"][0][1] < 1.0  # two heuristics that do disagree somewhere
