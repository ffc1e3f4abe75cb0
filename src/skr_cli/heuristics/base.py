"""The heuristic interface and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import ClassVar

import torch
from torch import nn

from skr_cli.pruning.layers import PrunableLayer

# A calibration batch: clips (B, C, T, H, W) and labels (B,).
CalibBatch = tuple[torch.Tensor, torch.Tensor]

HEURISTICS: dict[str, type[Heuristic]] = {}


def register_heuristic(name: str) -> Callable[[type[Heuristic]], type[Heuristic]]:
    """Class decorator: adds a heuristic to ``HEURISTICS`` under ``name`` (= its yaml's stem)."""

    def add(cls: type[Heuristic]) -> type[Heuristic]:
        if name in HEURISTICS:
            raise ValueError(f"heuristic {name!r} registered twice")
        cls.name = name
        HEURISTICS[name] = cls
        return cls

    return add


class Heuristic(ABC):
    """Scores every channel of every prunable layer; a low score marks a channel to remove."""

    name: ClassVar[str]
    # Whether scoring needs calibration batches (activations or gradients).
    needs_data: ClassVar[bool] = False

    @abstractmethod
    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        """Returns, for every layer name, a float tensor (C,) with one score per output channel.

        Raises if a layer cannot be scored: a heuristic never skips a layer silently.
        """
