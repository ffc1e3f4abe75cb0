"""Inception-v1 I3D (Carreira & Zisserman, 2017) with a width multiplier.

Module names follow the widely used PyTorch port of DeepMind's model (``Conv3d_1a_7x7.conv3d``,
``Mixed_3b.b1a.bn``, ``logits.conv3d``, ...), so the full-size network and the tiny test variant
are one builder with other arguments.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from skr_cli.models.common import ClippedAvgPool3d, scaled
from skr_cli.models.registry import register_model
from skr_cli.models.weights import load_weights

# Published output channels of each Inception block's branches:
# (b0 1x1, b1a 1x1, b1b 3x3, b2a 1x1, b2b 3x3, b3b 1x1 after max-pool).
MIXED_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) for one dimension of length ``size``."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """Pads a (B, C, T, H, W) tensor so that a kernel/stride covers it TF-"SAME"-style."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride, strict=True))):
        pads.extend(same_padding(size, k, s))
    return F.pad(x, pads) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d (SAME padding, no bias) → BatchNorm3d (eps 1e-3) → ReLU; or a bare biased conv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        use_bn: bool = True,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        # With stride 1 and odd kernels "SAME" is symmetric whatever the input size: the
        # convolution pads by itself, sparing a padded copy of its input.
        self.pads_itself = stride == (1, 1, 1) and all(k % 2 for k in kernel)
        padding = tuple((k - 1) // 2 for k in kernel) if self.pads_itself else 0
        self.conv3d = nn.Conv3d(
            in_channels, out_channels, kernel, stride, padding=padding, bias=not use_bn
        )
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if use_bn else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(x if self.pads_itself else pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPool3dSame(nn.MaxPool3d):
    """Max-pooling with TF "SAME" padding (zero padding is safe: inputs follow a ReLU).

    On CPU the pooling runs on a channels-last copy: PyTorch's CPU kernel vectorises over
    channels there and is 3–7× faster on I3D's shapes, copies included (same values exactly).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size, self.stride)
        if x.device.type != "cpu":
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last_3d)).contiguous()


class InceptionBlock(nn.Module):
    """Four parallel branches whose outputs are concatenated along channels."""

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a = Unit3D(in_channels, out[1])
        self.b1b = Unit3D(out[1], out[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, out[3])
        self.b2b = Unit3D(out[3], out[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame(kernel_size=(3, 3, 3), stride=(1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5])
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """I3D: stem, nine Inception blocks, average pool, dropout, 1x1x1 classifier, mean over time.

    Input (B, C, T, H, W); output logits (B, num_classes). The head's average pool is the
    published (2, 7, 7) window, clipped to the feature map, so small clips work too. Module and
    state-dict names are those of the PyTorch port, so its checkpoints load unchanged.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        width: float,
        dropout: float,
        in_channels: int,
        min_channels: int = 1,
    ) -> None:
        super().__init__()

        def w(channels: int) -> int:
            return scaled(channels, width, min_channels)

        self.Conv3d_1a_7x7 = Unit3D(in_channels, w(64), kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(w(64), w(64))
        self.Conv3d_2c_3x3 = Unit3D(w(64), w(192), kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        channels = w(192)
        for name, out in MIXED_CHANNELS.items():
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3dSame(kernel_size=(3, 3, 3), stride=(2, 2, 2))
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3dSame(kernel_size=(2, 2, 2), stride=(2, 2, 2))
            block = InceptionBlock(channels, tuple(w(c) for c in out))
            setattr(self, name, block)
            channels = block.out_channels
        self.features = [name for name, _ in self.named_children()]
        self.avg_pool = ClippedAvgPool3d((2, 7, 7))
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(channels, num_classes, use_bn=False, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clips → (B, num_classes) logits."""
        for name in self.features:
            x = getattr(self, name)(x)
        x = self.avg_pool(x)  # (B, 1024·width, T', H', W')
        x = self.logits(self.dropout(x))  # (B, classes, T', H', W')
        return x.mean(dim=(2, 3, 4))  # logits averaged over time (and the rare leftover space)


@register_model("i3d", "i3d_tiny")
def i3d(
    *,
    num_classes: int,
    width: float,
    dropout: float,
    in_channels: int,
    weights: str | Path | None,
    min_channels: int = 1,
) -> InceptionI3d:
    """The Inception I3D, optionally with pretrained weights.

    Args:
        num_classes: outputs of the classifier.
        width: multiplier of every layer's channels (1 is the published network).
        dropout: dropout probability before the classifier.
        in_channels: channels of the input clips (3 for RGB, 2 for optical flow).
        min_channels: floor of every layer's channels after the width multiplier.
        weights: a checkpoint to load (the PyTorch port's ``rgb_imagenet.pt``, skr's
            ``dense.pt``, or a bare state dict); with another number of classes the classifier
            keeps its fresh initialisation.
    """
    model = InceptionI3d(
        num_classes=num_classes,
        width=width,
        dropout=dropout,
        in_channels=in_channels,
        min_channels=min_channels,
    )
    if weights is not None:
        load_weights(model, weights, classifier="logits.")
    return model
