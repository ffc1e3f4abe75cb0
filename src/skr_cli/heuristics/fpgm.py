"""Filter pruning via the geometric median (He et al. 2019, "FPGM")."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from skr_cli.heuristics.base import CalibBatch, Heuristic, checked, register_heuristic
from skr_cli.pruning.layers import PrunableLayer


def distance_sums(weight: torch.Tensor) -> torch.Tensor:
    """Σ_j ‖F_i − F_j‖₂ for every filter F_i of a conv weight (C, C_in, kT, kH, kW) → (C,).

    The filter minimising this sum is the layer's geometric median among its filters.
    """
    filters = weight.detach().flatten(1).double()  # (C, C_in·kT·kH·kW)
    return torch.cdist(filters, filters).sum(dim=1)


@register_heuristic("fpgm")
class FPGM(Heuristic):
    """Sum of Euclidean distances from each filter to all filters of its layer (data-free).

    He et al. replace the filters nearest the geometric median, since the others can represent
    them; the usual form scores a filter by its summed distance to the others. Low score (near
    the median, redundant) = remove first.
    """

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        scores = {name: distance_sums(layer.conv.weight) for name, layer in layers.items()}
        return checked(self.name, layers, scores)
