"""The heuristic interface, its registry, and the check every heuristic's scores pass."""

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


def checked(
    heuristic: str, layers: dict[str, PrunableLayer], scores: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Returns ``scores`` as float32 (C,) tensors in ``layers``' order, or raises naming the layer.

    Args:
        heuristic: the registry key, for the message.
        layers: the layers that had to be scored.
        scores: layer name → scores (C,).

    Raises:
        RuntimeError: a layer has no score, a score of the wrong length, or a non-finite score.
    """
    out = {}
    for name, layer in layers.items():
        if name not in scores:
            raise RuntimeError(f"{heuristic}: layer {name} was not scored")
        values = scores[name].detach().float().cpu()
        if values.shape != (layer.channels,):
            raise RuntimeError(
                f"{heuristic}: layer {name} has {layer.channels} channels but scores of shape "
                f"{tuple(values.shape)}"
            )
        if not torch.isfinite(values).all():
            raise RuntimeError(f"{heuristic}: layer {name} has non-finite scores")
        out[name] = values
    return out


def require_batches(heuristic: str, batches: Iterable[CalibBatch]) -> list[CalibBatch]:
    """The calibration batches as a list; raises ValueError if there are none."""
    batches = list(batches)
    if not batches:
        raise ValueError(f"{heuristic} needs at least one calibration batch (prune.calib_batches)")
    return batches
