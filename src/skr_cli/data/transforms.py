"""Clip transforms built from torchvision's v2 transforms (which treat (T, C, H, W) as a batch of
images and apply one random draw to every frame of a clip).

Training: random short-side scale, random crop, optional horizontal flip. Evaluation: short-side
scale, centre crop. Both then scale to [0, 1] and normalise per channel. Resizing runs on uint8
frames (torchvision's fast antialiased path) before the conversion to float.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

# uint8 frames (T, H, W, 3) -> float clip (3, T, size, size)
ClipTransform = Callable[[torch.Tensor], torch.Tensor]


class _ToClip:
    """Wraps a v2 pipeline over (T, 3, H, W) into uint8 (T, H, W, 3) -> float (3, T, H, W)."""

    def __init__(self, steps: list[v2.Transform]) -> None:
        self.pipeline = v2.Compose(steps)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        clip = self.pipeline(frames.permute(0, 3, 1, 2))  # (T, 3, size, size) float
        return clip.permute(1, 0, 2, 3).contiguous()


def _normalise(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def train_transform(
    size: int,
    scale: Sequence[float],
    flip: bool,
    mean: Sequence[float],
    std: Sequence[float],
) -> ClipTransform:
    """Random short side in ``[scale[0], scale[1]] * size``, random ``size`` crop, flip.

    Args:
        size: output height and width.
        scale: (low, high) range of the short side, as multiples of ``size`` (low >= 1).
        flip: flip horizontally with probability 0.5 (off where direction is the label).
        mean: per-channel mean of [0, 1] pixels.
        std: per-channel standard deviation of [0, 1] pixels.
    """
    low, high = round(scale[0] * size), round(scale[1] * size)
    steps: list[v2.Transform] = [
        v2.RandomResize(low, high + 1, antialias=True),
        v2.RandomCrop(size),
    ]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return _ToClip(steps + _normalise(mean, std))


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> ClipTransform:
    """Short side to ``size``, centre ``size`` crop, normalisation (see :func:`train_transform`)."""
    steps = [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return _ToClip(steps + _normalise(mean, std))
