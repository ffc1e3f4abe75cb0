"""Physical channel removal through torch-pruning's dependency graph (concat groups included)."""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from skr_cli.engine.modes import eval_mode
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import Plan


def remove_channels(model: nn.Module, plan: Plan, example: torch.Tensor) -> nn.Module:
    """Removes the planned output channels of every layer, in place, and returns the model.

    Each layer's convolution, its batch norm and every consumer's input channels shrink; where
    branches are concatenated the consumers' indices are mapped through the concatenation.
    Parameters are replaced, so optimisers built before this call must be rebuilt.

    Args:
        model: the network (eval mode is used while tracing).
        plan: layer name → channel indices to remove.
        example: an input batch (B, C, T, H, W) to trace the graph with.
    """
    layers = prunable_layers(model)
    unknown = sorted(set(plan) - set(layers))
    if unknown:
        raise KeyError(f"plan names layers the model does not have: {unknown}")
    with eval_mode(model):
        with torch.enable_grad():  # the graph is traced through autograd
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        for name, idxs in plan.items():
            if not idxs:
                continue
            conv = layers[name].conv
            graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=idxs).prune()
    return model
