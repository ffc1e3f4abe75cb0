"""Pieces shared by the builders: the width multiplier and a head pool that fits small clips."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled(channels: int, width: float, min_channels: int = 1) -> int:
    """Channel count after the width multiplier, never below ``min_channels`` (nor one).

    The floor is MobileNet's: a thin model keeps every layer at least ``min_channels`` wide, as
    no real network has two-channel layers, unless the published layer itself is narrower.
    """
    return max(min(min_channels, channels), int(math.ceil(channels * width)), 1)


class ClippedAvgPool3d(nn.Module):
    """Average pooling with a published window (stride 1), clipped to the feature map.

    On clips of the published size it is the published pool; on smaller clips, whose feature map
    is smaller than the window, it averages the whole map instead of failing.
    """

    def __init__(self, window: tuple[int, int, int]) -> None:
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, C, T - t + 1, H - h + 1, W - w + 1) for the clipped window."""
        window = [min(k, size) for k, size in zip(self.window, x.shape[2:], strict=True)]
        return F.avg_pool3d(x, window, stride=1)
