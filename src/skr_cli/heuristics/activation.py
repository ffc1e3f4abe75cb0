"""Activation statistics after the ReLU, over N, T, H, W on calibration batches.

APoZ (Hu et al. 2016, "Network Trimming") and the mean activation (the baseline criterion of
Molchanov et al. 2016). Both are accumulated by hooks on each layer's output over every batch.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from skr_cli.heuristics.base import (
    CalibBatch,
    Heuristic,
    checked,
    register_heuristic,
    require_batches,
)
from skr_cli.heuristics.calibration import Statistic, accumulate_outputs
from skr_cli.pruning.layers import PrunableLayer


def zero_count(output: torch.Tensor) -> torch.Tensor:
    """How many of each channel's B·T·H·W values are exactly zero: (B, C, T, H, W) → (C,)."""
    return (output == 0).sum(dim=(0, 2, 3, 4)).double()


def channel_sum(output: torch.Tensor) -> torch.Tensor:
    """Each channel's sum over its B·T·H·W values: (B, C, T, H, W) → (C,)."""
    return output.sum(dim=(0, 2, 3, 4))


def channel_means(
    heuristic: str,
    model: nn.Module,
    layers: dict[str, PrunableLayer],
    batches: Iterable[CalibBatch],
    statistic: Statistic,
) -> dict[str, torch.Tensor]:
    """``statistic`` summed over all positions of all batches, divided by the positions: (C,)."""
    batches = require_batches(heuristic, batches)
    sums, counts = accumulate_outputs(heuristic, model, layers, batches, statistic)
    return {name: sums[name] / counts[name] for name in layers}


@register_heuristic("apoz")
class APoZ(Heuristic):
    """1 − APoZ: the share of a channel's post-ReLU activations that are not zero.

    APoZ (average percentage of zeros) counts exact zeros over clips, time and space of
    ``prune.calib_batches`` training batches. A channel that is mostly zero is unimportant, so the
    score is 1 − APoZ: low score = remove first.
    """

    needs_data = True

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        zeros = channel_means(self.name, model, layers, batches, zero_count)
        return checked(self.name, layers, {name: 1 - share for name, share in zeros.items()})


@register_heuristic("mean_activation")
class MeanActivation(Heuristic):
    """Mean post-ReLU activation of each channel over clips, time and space.

    A channel that is small on average passes little on: low score = remove first.
    """

    needs_data = True

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        means = channel_means(self.name, model, layers, batches, channel_sum)
        return checked(self.name, layers, means)
