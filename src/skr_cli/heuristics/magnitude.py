"""Data-free magnitude heuristics: filter norms (Li et al. 2016) and BN scales (Liu et al. 2017).

A small norm or scale means a channel passes little on: low score = remove first.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from skr_cli.heuristics.base import CalibBatch, Heuristic, checked, register_heuristic
from skr_cli.pruning.layers import PrunableLayer


def filter_norms(weight: torch.Tensor, p: int) -> torch.Tensor:
    """The L``p`` norm of every output filter of a conv weight (C, C_in, kT, kH, kW) → (C,)."""
    return torch.linalg.vector_norm(weight.detach().flatten(1), ord=p, dim=1)


class _FilterNorm(Heuristic):
    p: int

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        scores = {name: filter_norms(layer.conv.weight, self.p) for name, layer in layers.items()}
        return checked(self.name, layers, scores)


@register_heuristic("l1")
class L1(_FilterNorm):
    """Sum of absolute weights of each output filter (C_in · kT · kH · kW values)."""

    p = 1


@register_heuristic("l2")
class L2(_FilterNorm):
    """Euclidean norm of each output filter's weights (C_in · kT · kH · kW values)."""

    p = 2


@register_heuristic("bn_scale")
class BNScale(Heuristic):
    """|γ| of the batch norm after each convolution (network slimming, Liu et al. 2017).

    A channel's output after normalisation is γ · x̂ + β: a small |γ| leaves it almost constant.

    Raises:
        RuntimeError: naming a layer without an affine batch norm.
    """

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        scores = {}
        for name, layer in layers.items():
            if layer.bn is None or layer.bn.weight is None:
                raise RuntimeError(
                    f"bn_scale: layer {name} has no affine batch norm to read γ from"
                )
            scores[name] = layer.bn.weight.detach().abs()
        return checked(self.name, layers, scores)
