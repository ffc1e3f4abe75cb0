"""Weight-magnitude heuristics (Li et al., 2016, "Pruning Filters for Efficient ConvNets")."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from skr_cli.heuristics.base import CalibBatch, Heuristic, register_heuristic
from skr_cli.pruning.layers import PrunableLayer


@register_heuristic("l1")
class L1(Heuristic):
    """Sum of absolute weights of each output filter (C_in · kT · kH · kW values)."""

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        return {
            name: layer.conv.weight.detach().abs().flatten(1).sum(dim=1)
            for name, layer in layers.items()
        }
