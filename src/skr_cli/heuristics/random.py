"""Random scores: the baseline every heuristic must beat."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from skr_cli.heuristics.base import CalibBatch, Heuristic, register_heuristic
from skr_cli.pruning.layers import PrunableLayer


@register_heuristic("random")
class RandomScores(Heuristic):
    """Uniform random scores from a generator of its own, so the global RNG is left untouched.

    Args:
        seed: seeds the generator (the run's seed by default, see ``conf/heuristic/random.yaml``).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed)
        # Sorted names: the draw for a layer does not depend on the order the model lists layers.
        return {
            name: torch.rand(layers[name].channels, generator=generator) for name in sorted(layers)
        }
