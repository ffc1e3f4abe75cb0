"""Selection, physical removal through concatenation groups, and MAC counting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from skr_cli.models.i3d import InceptionI3d
from skr_cli.pruning.count import count_macs, count_params
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import select_local
from skr_cli.pruning.remove import remove_channels


@pytest.fixture
def model() -> InceptionI3d:
    torch.manual_seed(0)
    return InceptionI3d(num_classes=5, width=0.125, dropout=0.0, in_channels=3).eval()


CLIP = torch.randn(1, 3, 8, 32, 32)


def test_select_local_removes_the_lowest_share_of_every_layer() -> None:
    scores = {"a": torch.tensor([0.5, 0.1, 0.9, 0.3]), "b": torch.tensor([1.0, 2.0, 3.0])}
    assert select_local(scores, 0.5) == {"a": [1, 3], "b": [0]}


def test_select_local_keeps_one_channel() -> None:
    assert select_local({"a": torch.tensor([1.0, 2.0])}, 0.99) == {"a": [0]}


def test_classifier_is_not_prunable(model: InceptionI3d) -> None:
    layers = prunable_layers(model)
    assert len(layers) == 3 + 9 * 6  # stem convs + six convs per Inception block
    assert all(layer.conv is not model.logits.conv3d for layer in layers.values())


def test_removal_shrinks_every_layer_and_the_consumers(model: InceptionI3d) -> None:
    before = {n: layer.channels for n, layer in prunable_layers(model).items()}
    params, macs = count_params(model), count_macs(model, CLIP)
    plan = select_local({n: torch.arange(c, dtype=torch.float) for n, c in before.items()}, 0.5)
    remove_channels(model, plan, CLIP)
    after = {n: layer.channels for n, layer in prunable_layers(model).items()}
    assert all(after[n] == before[n] - len(plan[n]) for n in before)
    # the next block's 1x1 convs read the concatenation of the pruned branches
    concatenated = sum(after[f"Mixed_3b.{b}"] for b in ("b0", "b1b", "b2b", "b3b"))
    for consumer in ("b0", "b1a", "b2a", "b3b"):
        assert getattr(model.Mixed_3c, consumer).conv3d.in_channels == concatenated
    assert count_params(model) < params and count_macs(model, CLIP) < macs


def test_removal_rejects_unknown_layers(model: InceptionI3d) -> None:
    with pytest.raises(KeyError, match="nope"):
        remove_channels(model, {"nope": [0]}, CLIP)


def test_macs_of_a_single_convolution() -> None:
    conv = nn.Conv3d(4, 6, kernel_size=(3, 3, 3), padding=1)
    # every output element (6 x 2 x 5 x 5) takes 4 x 27 multiply-accumulates
    assert count_macs(conv, torch.randn(1, 4, 2, 5, 5)) == 6 * 2 * 5 * 5 * 4 * 27
