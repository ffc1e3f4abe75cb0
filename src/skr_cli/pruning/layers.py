"""Which channels can be removed: one entry per convolution whose output channels are prunable."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from skr_cli.models.i3d import Unit3D


@dataclass(frozen=True)
class PrunableLayer:
    """A convolution whose output channels can be removed.

    Attributes:
        conv: the convolution; its output channels are the layer's channels.
        bn: the batch norm right after it, if any.
        output: the module whose output is the channels' activation (B, C, T, H, W), after the
            normalisation and the non-linearity: removing a channel sets exactly this to zero.
    """

    conv: nn.Conv3d
    bn: nn.BatchNorm3d | None
    output: nn.Module

    @property
    def channels(self) -> int:
        return self.conv.out_channels


def prunable_layers(model: nn.Module) -> dict[str, PrunableLayer]:
    """Every conv-BN-ReLU unit of the model, by module name; the classifier is never included."""
    layers = {
        name: PrunableLayer(conv=module.conv3d, bn=module.bn, output=module)
        for name, module in model.named_modules()
        if isinstance(module, Unit3D) and module.bn is not None
    }
    if not layers:
        raise ValueError(f"{type(model).__name__} has no layer that skr knows how to prune")
    return layers
