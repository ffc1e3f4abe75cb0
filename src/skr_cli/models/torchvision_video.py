"""torchvision's video models (R3D-18, R(2+1)D-18, S3D) with ``num_classes`` and a width option.

torchvision's constructors fix every channel count, so the classes below subclass torchvision's
and build the same modules, from torchvision's own blocks and under the same names, with each
channel count scaled by ``width``; ``forward`` is torchvision's. At ``width=1`` the state dict
matches torchvision's model key for key and shape for shape (a test checks it), so its
published Kinetics weights load through ``weights``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from torch import nn
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, Conv3DSimple, VideoResNet
from torchvision.models.video.s3d import S3D, SepInceptionBlock3D, TemporalSeparableConv
from torchvision.ops.misc import Conv3dNormActivation

from skr_cli.models.common import ClippedAvgPool3d, scaled
from skr_cli.models.i3d import MIXED_CHANNELS
from skr_cli.models.registry import register_model
from skr_cli.models.weights import load_weights

ConvMaker = type[Conv3DSimple] | type[Conv2Plus1D]


class WideVideoResNet(VideoResNet):
    """torchvision's 18-layer VideoResNet (BasicBlock, [2, 2, 2, 2]) at any width.

    Input (B, 3, T, H, W); output logits (B, num_classes). The stem halves H and W, layers 2–4
    halve T, H and W; the adaptive average pool takes any clip that survives the strides.
    """

    def __init__(
        self,
        *,
        conv_maker: ConvMaker,
        stem: nn.Sequential,
        num_classes: int,
        width: float,
        min_channels: int = 1,
    ) -> None:
        nn.Module.__init__(self)  # not VideoResNet.__init__, which fixes the widths
        self.inplanes = stem[-2].num_features  # the stem's last batch norm
        self.stem = stem
        for index, (planes, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), 1):
            layer = self._make_layer(
                BasicBlock, conv_maker, scaled(planes, width, min_channels), 2, stride=stride
            )
            setattr(self, f"layer{index}", layer)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)
        _init_like_torchvision(self)


def _init_like_torchvision(model: nn.Module) -> None:
    """VideoResNet's initialisation: Kaiming convolutions, unit batch norms, a small classifier."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


def _r3d_stem(width: float, min_channels: int) -> nn.Sequential:
    """torchvision's BasicStem: a 3×7×7 convolution, stride (1, 2, 2)."""
    out = scaled(64, width, min_channels)
    return nn.Sequential(
        nn.Conv3d(3, out, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(out),
        nn.ReLU(inplace=True),
    )


def _r2plus1d_stem(width: float, min_channels: int) -> nn.Sequential:
    """torchvision's R2Plus1dStem: a 1×7×7 spatial then a 3×1×1 temporal convolution."""
    mid, out = scaled(45, width, min_channels), scaled(64, width, min_channels)
    return nn.Sequential(
        nn.Conv3d(3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, out, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(out),
        nn.ReLU(inplace=True),
    )


class WideS3D(S3D):
    """torchvision's S3D (separable Inception-v1) at any width, with a head that fits small clips.

    Input (B, 3, T, H, W) with T ≥ 8 and H, W ≥ 32 (its last temporal pool has no padding);
    output logits (B, num_classes), averaged over time. The head's (2, 7, 7) average pool is
    clipped to the feature map, as in the I3D here; on 224² clips it is torchvision's.
    """

    def __init__(
        self, *, num_classes: int, width: float, dropout: float, min_channels: int = 1
    ) -> None:
        nn.Module.__init__(self)  # not S3D.__init__, which fixes the widths

        def w(channels: int) -> int:
            return scaled(channels, width, min_channels)

        norm = partial(nn.BatchNorm3d, eps=0.001, momentum=0.001)
        blocks: list[nn.Module] = [
            TemporalSeparableConv(3, w(64), 7, 2, 3, norm),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            Conv3dNormActivation(w(64), w(64), kernel_size=1, stride=1, norm_layer=norm),
            TemporalSeparableConv(w(64), w(192), 3, 1, 1, norm),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        ]
        channels = w(192)
        for name, published in MIXED_CHANNELS.items():  # S3D keeps Inception-v1's widths
            if name == "Mixed_4b":
                blocks.append(nn.MaxPool3d(kernel_size=(3, 3, 3), stride=2, padding=1))
            if name == "Mixed_5b":
                blocks.append(nn.MaxPool3d(kernel_size=(2, 2, 2), stride=2, padding=0))
            out = [w(c) for c in published]
            blocks.append(SepInceptionBlock3D(channels, *out, norm_layer=norm))
            channels = out[0] + out[2] + out[4] + out[5]
        self.features = nn.Sequential(*blocks)
        self.avgpool = ClippedAvgPool3d((2, 7, 7))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Conv3d(channels, num_classes, kernel_size=1, bias=True)
        )


def _with_weights(model: nn.Module, weights: str | Path | None, classifier: str) -> nn.Module:
    return model if weights is None else load_weights(model, weights, classifier=classifier)


@register_model("r3d_18")
def r3d_18(
    *, num_classes: int, width: float, weights: str | Path | None, min_channels: int = 1
) -> WideVideoResNet:
    """R3D-18 (Tran et al. 2018): 3×3×3 convolutions in every block; 33.4 M parameters at 400
    classes. ``weights``: torchvision's ``r3d_18-*.pth``, skr's ``dense.pt`` or a state dict;
    ``min_channels``: floor of every layer's channels after the width multiplier."""
    model = WideVideoResNet(
        conv_maker=Conv3DSimple,
        stem=_r3d_stem(width, min_channels),
        num_classes=num_classes,
        width=width,
        min_channels=min_channels,
    )
    return _with_weights(model, weights, "fc.")


@register_model("r2plus1d_18")
def r2plus1d_18(
    *, num_classes: int, width: float, weights: str | Path | None, min_channels: int = 1
) -> WideVideoResNet:
    """R(2+1)D-18: each 3×3×3 convolution split into 1×3×3 (mid channels, BN, ReLU) and 3×1×1;
    31.5 M parameters at 400 classes. ``weights`` and ``min_channels`` as for :func:`r3d_18`."""
    model = WideVideoResNet(
        conv_maker=Conv2Plus1D,
        stem=_r2plus1d_stem(width, min_channels),
        num_classes=num_classes,
        width=width,
        min_channels=min_channels,
    )
    return _with_weights(model, weights, "fc.")


@register_model("s3d")
def s3d(
    *,
    num_classes: int,
    width: float,
    dropout: float,
    weights: str | Path | None,
    min_channels: int = 1,
) -> WideS3D:
    """S3D (Xie et al. 2018): Inception-v1 with separable 1×k×k + k×1×1 convolutions; 8.3 M
    parameters at 400 classes. ``weights``: torchvision's ``s3d-*.pth``, ``dense.pt``, …;
    ``min_channels`` as for :func:`r3d_18`."""
    model = WideS3D(
        num_classes=num_classes, width=width, dropout=dropout, min_channels=min_channels
    )
    return _with_weights(model, weights, "classifier.")
