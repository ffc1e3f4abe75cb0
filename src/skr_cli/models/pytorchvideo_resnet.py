"""I3D-R50 through pytorchvideo's builder, with an adaptive head pool and a width option."""

from __future__ import annotations

import warnings
from pathlib import Path

from torch import nn

from skr_cli.models.common import scaled
from skr_cli.models.registry import register_model
from skr_cli.models.weights import load_weights


@register_model("i3d_r50")
def i3d_r50(
    *,
    num_classes: int,
    width: float,
    dropout: float,
    weights: str | Path | None,
    min_channels: int = 1,
) -> nn.Module:
    """I3D-R50: a ResNet-50 inflated to 3D (pytorchvideo's ``i3d_r50``), 28.0 M parameters at
    400 classes.

    pytorchvideo's published head averages a fixed (4, 7, 7) window, which rejects clips smaller
    than 8×224²; an adaptive pool to (1, 1, 1) takes any clip and equals it at that size.
    ``width`` scales the stem (64 channels) and with it every stage, whose widths pytorchvideo
    derives from the stem's.

    Args:
        num_classes: outputs of the classifier (``blocks.6.proj``).
        width: multiplier of every layer's channels (1 is the published network).
        dropout: dropout probability before the classifier.
        min_channels: floor of the stem's channels after the width multiplier; every stage's
            widths are multiples of the stem's, so no layer is narrower.
        weights: a checkpoint to load: pytorchvideo's ``I3D_8x8_R50.pyth`` (``model_state``),
            skr's ``dense.pt`` or a bare state dict.

    Returns:
        The network: (B, 3, T, H, W) clips → (B, num_classes) logits.
    """
    with warnings.catch_warnings():  # imported here: pytorchvideo pulls in fvcore, which is slow
        warnings.simplefilter("ignore", FutureWarning)  # to import and warns about torch.jit
        from pytorchvideo.models.hub.resnet import i3d_r50 as pytorchvideo_i3d_r50

    model = pytorchvideo_i3d_r50(
        pretrained=False,
        model_num_class=num_classes,
        stem_dim_out=scaled(64, width, min_channels),
        dropout_rate=dropout,
        head_pool=nn.AdaptiveAvgPool3d,
    )
    return model if weights is None else load_weights(model, weights, classifier="blocks.6.proj.")
