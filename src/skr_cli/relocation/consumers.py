"""Who reads a layer's channels: the consumers found through torch-pruning's dependency graph."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from skr_cli.engine.modes import eval_mode
from skr_cli.pruning.layers import PrunableLayer
from skr_cli.pruning.plan import Plan

# Layers whose input channels compensation and the ``weights`` penalty know how to edit.
SUPPORTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class Consumer:
    """A layer that reads planned channels as some of its input channels.

    Attributes:
        name: its module name.
        module: a convolution (groups = 1) or a linear layer.
        inputs: the planned channels' indices among its input channels, one per planned
            channel of the producer, in the plan's order (concatenations already mapped).
    """

    name: str
    module: nn.Module
    inputs: tuple[int, ...]


def find_consumers(
    model: nn.Module, layers: dict[str, PrunableLayer], plan: Plan, example: torch.Tensor
) -> dict[str, list[Consumer]]:
    """Every consumer of the planned channels of each layer of ``plan``, in module order.

    Args:
        model: the network, before removal.
        layers: its prunable layers by name (``prunable_layers(model)``).
        plan: layer name → indices of the channels that will be removed.
        example: an input batch (B, C, T, H, W) to trace the graph with.

    Raises:
        ValueError: when a planned channel reaches a layer type other than a convolution with
            groups = 1 or a linear layer, or another layer's output channels (a residual sum).
    """
    names = {module: name for name, module in model.named_modules()}
    order = {module: i for i, module in enumerate(model.modules())}
    with eval_mode(model), torch.enable_grad():  # the graph is traced through autograd
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    found: dict[str, list[Consumer]] = {}
    for layer_name, idxs in plan.items():
        if not idxs:
            continue
        layer = layers[layer_name]
        group = graph.get_pruning_group(layer.conv, tp.prune_conv_out_channels, idxs=list(idxs))
        found[layer_name] = []
        for dep, mapped in group:
            module = dep.target.module
            if graph.is_out_channel_pruning_fn(dep.handler):
                _check_own(layer_name, layer, module, names)
                continue
            if not isinstance(module, SUPPORTED) or getattr(module, "groups", 1) != 1:
                raise ValueError(
                    f"the channels of {layer_name} reach {names.get(module, module)} "
                    f"({type(module).__name__}), which relocation does not support: only "
                    "convolutions with groups=1 and linear layers can be compensated"
                )
            found[layer_name].append(Consumer(names[module], module, tuple(map(int, mapped))))
        found[layer_name].sort(key=lambda consumer: order[consumer.module])
    return found


def _check_own(
    layer_name: str, layer: PrunableLayer, module: nn.Module, names: dict[nn.Module, str]
) -> None:
    """An output-channel entry of a layer's group must be the layer itself, its batch norm or a
    parameter-free op (activation, pooling, concatenation, padding)."""
    if module is layer.conv or module is layer.bn or type(module).__module__.startswith("torch_"):
        return
    if next(module.parameters(recurse=False), None) is None:
        return
    raise ValueError(
        f"the channels of {layer_name} are tied to the output channels of "
        f"{names.get(module, module)} ({type(module).__name__}), which relocation does not support"
    )
