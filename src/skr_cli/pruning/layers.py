"""Which channels can be removed: one entry per convolution whose output channels are prunable.

The rule, for every backbone: a layer is prunable when it is a convolution → batch norm → ReLU
unit whose output channels reach nothing but the next convolutions' inputs, possibly through
concatenations and pooling — that is, when its torch-pruning group holds no other layer's output
channels. Concretely:

- Inception I3D: every ``Unit3D`` with batch norm (stem and all six units of each Inception
  block; the four branches feed a concatenation), never the classifier ``logits``.
- S3D: every ``Conv3dNormActivation`` (the spatial and the temporal half of each separable
  convolution included).
- R3D-18 / R(2+1)D-18: the first convolution of each residual block, the mid channels of every
  (2+1)D convolution and of the R(2+1)D stem. The stem's output and each block's second
  convolution join the residual stream (an addition ties their channels to those of other
  layers), so they are not prunable; nor is the classifier.
- I3D-R50 (pytorchvideo): the stem (its first block projects the shortcut, so the stem's
  channels reach only convolution inputs) and ``conv_a`` and ``conv_b`` of every bottleneck
  block; ``conv_c`` and the shortcut projections are on the residual stream.

Tests check this rule against torch-pruning's dependency graph for every backbone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
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
    """Every prunable conv-BN-ReLU unit of the model, by name, in module order.

    Names are the ``Unit3D`` module's name for the Inception I3D (``Mixed_3b.b1a``) and the
    convolution's module name otherwise (``layer1.0.conv1.0``, ``features.5.branch0.0``).
    """
    residual = _residual_stream_outputs(model)
    found = [
        (name, layer)
        for parent_name, parent in model.named_modules()
        for name, layer in _units(parent_name, parent)
        if layer.output not in residual
    ]
    if not found:
        raise ValueError(f"{type(model).__name__} has no layer that skr knows how to prune")
    position = {module: i for i, module in enumerate(model.modules())}
    return dict(sorted(found, key=lambda item: position[item[1].conv]))


def _units(name: str, module: nn.Module) -> Iterator[tuple[str, PrunableLayer]]:
    """The conv-BN-ReLU units that ``module`` holds directly (not those of its submodules)."""
    if isinstance(module, Unit3D) and module.bn is not None:
        yield name, PrunableLayer(conv=module.conv3d, bn=module.bn, output=module)
    elif all(hasattr(module, a) for a in ("conv", "norm", "activation")):  # pytorchvideo's stem
        if _is_unit(module.conv, module.norm, module.activation):
            yield f"{name}.conv", PrunableLayer(module.conv, module.norm, module.activation)
    elif all(hasattr(module, f"conv_{part}") for part in "abc"):  # pytorchvideo's bottleneck
        for part in ("a", "b"):
            conv, bn, act = (getattr(module, f"{kind}_{part}") for kind in ("conv", "norm", "act"))
            if _is_unit(conv, bn, act):
                yield f"{name}.conv_{part}", PrunableLayer(conv=conv, bn=bn, output=act)
    elif isinstance(module, nn.Sequential):
        yield from _sequential_units(name, module)


def _sequential_units(name: str, seq: nn.Sequential) -> Iterator[tuple[str, PrunableLayer]]:
    """Consecutive (convolution, BatchNorm3d, ReLU) children of a Sequential.

    The convolution may be a (2+1)D one (a Sequential ending in a Conv3d): its last, temporal
    convolution makes the unit's channels.
    """
    children = list(seq.named_children())
    for i in range(len(children) - 2):
        (conv_name, conv), (_, bn), (_, act) = children[i : i + 3]
        prefix = f"{name}.{conv_name}".lstrip(".")
        if isinstance(conv, nn.Sequential) and len(conv) and isinstance(conv[-1], nn.Conv3d):
            prefix, conv = f"{prefix}.{len(conv) - 1}", conv[-1]
        if _is_unit(conv, bn, act):
            yield prefix, PrunableLayer(conv=conv, bn=bn, output=act)


def _is_unit(conv: object, bn: object, act: object) -> bool:
    unit = isinstance(conv, nn.Conv3d) and isinstance(bn, nn.BatchNorm3d)
    return unit and isinstance(act, nn.ReLU)


def _residual_stream_outputs(model: nn.Module) -> set[nn.Module]:
    """Output modules of units whose channels join a residual addition (never prunable).

    In a torchvision VideoResNet that is the stem's last unit: layer1's first block adds its
    output to its own, with no projection in between.
    """
    resnet = sys.modules.get("torchvision.models.video.resnet")  # loaded where one was built
    if resnet is not None and isinstance(model, resnet.VideoResNet):
        return {model.stem[-1]}
    return set()
