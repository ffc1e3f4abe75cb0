"""Model size and compute: parameters and multiply-accumulates."""

from __future__ import annotations

import torch
from torch import nn

from skr_cli.engine.modes import eval_mode, removing

# How MACs are counted (written into metrics.json beside the numbers).
MAC_CONVENTION = (
    "multiply-accumulates (MACs, not FLOPs) of the convolution and linear layers in one forward "
    "pass at batch 1 over one clip of frames x height x width; normalisation, activations, "
    "pooling and biases are not counted"
)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel = module.weight[0].numel()  # (C_in / groups) · kT · kH · kW
        return output.numel() * kernel
    return output.numel() * module.in_features  # nn.Linear


def count_macs(model: nn.Module, clip: torch.Tensor) -> int:
    """MACs of one forward pass on ``clip`` (1, C, T, H, W)."""
    total = 0

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += _layer_macs(module, output)

    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    with removing(hooks), eval_mode(model), torch.no_grad():
        model(clip)
    return total
