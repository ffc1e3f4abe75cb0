"""Each channel's contribution to the SVD entropy of its layer's activations.

The leave-one-out "contribution to the entropy" of Varshavsky et al. (2006), used for feature
selection by Banerjee & Pal (2014, "Feature selection with SVD entropy"), with channels as the
features and the B·T·H·W positions of calibration activations as the samples.
"""

from __future__ import annotations

import math
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
from skr_cli.heuristics.calibration import accumulate_outputs
from skr_cli.pruning.layers import PrunableLayer


def gram(output: torch.Tensor) -> torch.Tensor:
    """A·Aᵀ of the activation matrix A (C, B·T·H·W) of one output (B, C, T, H, W) → (C, C)."""
    matrix = output.transpose(0, 1).flatten(1)  # (C, B·T·H·W)
    return matrix @ matrix.T


def normalised_entropy(squared_singular: torch.Tensor, rank_bound: int) -> float:
    """SVD entropy −Σ v log v / log N with v = s² / Σ s², for N = ``rank_bound`` values.

    Args:
        squared_singular: the squared singular values s² of a matrix (any number, ≥ 0).
        rank_bound: N, the number of singular values of the matrix (min of its two sizes).

    Returns:
        A number in [0, 1]; 0 when N ≤ 1 or the matrix is zero (no spread to measure).
    """
    total = squared_singular.sum()
    if rank_bound <= 1 or total <= 0:
        return 0.0
    v = squared_singular[squared_singular > 0] / total
    return float(-(v * v.log()).sum() / math.log(rank_bound))


def entropy_contributions(gram_matrix: torch.Tensor, positions: int) -> torch.Tensor:
    """E(A) − E(A without row c) for every row c of A, from the Gram matrix A·Aᵀ (C, C) → (C,).

    The eigenvalues of A·Aᵀ are A's squared singular values, so leaving a row of A out is leaving
    a row and a column of A·Aᵀ out: no pass over the activations is needed per channel.

    Args:
        gram_matrix: A·Aᵀ for the activation matrix A (C, positions), float64.
        positions: the number of columns of A (bounds the rank together with C).
    """
    channels = gram_matrix.shape[0]

    def entropy(matrix: torch.Tensor) -> float:
        squared = torch.linalg.eigvalsh(matrix).clamp(min=0) if matrix.numel() else matrix
        return normalised_entropy(squared.flatten(), min(matrix.shape[0], positions))

    whole = entropy(gram_matrix)
    contributions = torch.empty(channels, dtype=torch.float64)
    for c in range(channels):
        keep = torch.arange(channels) != c
        contributions[c] = whole - entropy(gram_matrix[keep][:, keep])
    return contributions


@register_heuristic("svd_entropy")
class SVDEntropy(Heuristic):
    """Contribution of each channel to the SVD entropy of its layer's post-ReLU activations.

    A is the layer's activation matrix (C channels × every B·T·H·W position of the calibration
    batches); its normalised SVD entropy measures how evenly its energy spreads over independent
    directions. A channel's score is E(A) − E(A without that channel): a channel whose removal
    leaves the entropy unchanged or higher (a dead, duplicated or redundant channel) scores low
    and is removed first. A·Aᵀ is accumulated by hooks over all positions, so nothing is sampled
    and only a (C, C) sum per layer is held in memory.
    """

    needs_data = True

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        batches = require_batches(self.name, batches)
        grams, positions = accumulate_outputs(self.name, model, layers, batches, gram)
        scores = {name: entropy_contributions(grams[name], positions[name]) for name in layers}
        return checked(self.name, layers, scores)
