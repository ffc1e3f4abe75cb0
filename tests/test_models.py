"""The Inception I3D builder: published size and names, small clips, width multiplier."""

from __future__ import annotations

import torch

from skr_cli.models.i3d import InceptionI3d, same_padding


def test_full_size_i3d_has_the_published_parameter_count() -> None:
    model = InceptionI3d(num_classes=400, width=1.0, dropout=0.5, in_channels=3)
    assert sum(p.numel() for p in model.parameters()) == 12_697_264  # 12.70 M


def test_state_dict_names_follow_the_pytorch_port() -> None:
    keys = set(InceptionI3d(num_classes=400, width=1.0, dropout=0.5, in_channels=3).state_dict())
    for key in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.running_mean",
        "Mixed_3b.b1a.conv3d.weight",
        "Mixed_5c.b3b.bn.bias",
        "logits.conv3d.weight",
        "logits.conv3d.bias",
    ):
        assert key in keys


def test_tiny_model_takes_small_clips() -> None:
    model = InceptionI3d(num_classes=5, width=0.125, dropout=0.0, in_channels=3).eval()
    assert model(torch.randn(2, 3, 4, 32, 32)).shape == (2, 5)


def test_width_multiplier_scales_channels() -> None:
    tiny = InceptionI3d(num_classes=5, width=0.125, dropout=0.0, in_channels=3)
    assert tiny.Conv3d_1a_7x7.conv3d.out_channels == 8
    assert tiny.Mixed_5c.out_channels == 128


def test_same_padding_matches_tensorflow() -> None:
    assert same_padding(224, 7, 2) == (2, 3)
    assert same_padding(32, 3, 1) == (1, 1)
    assert same_padding(8, 2, 2) == (0, 0)
    assert same_padding(7, 3, 2) == (1, 1)
