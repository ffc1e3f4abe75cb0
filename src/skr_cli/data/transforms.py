"""Clip transforms built from torchvision's v2 transforms (which treat (T, C, H, W) as a batch of
images and apply one random draw to every frame of a clip).

Training: random short-side scale, random crop, optional horizontal flip. Evaluation: short-side
scale, centre crop. Both then scale to [0, 1] and normalise per channel (one multiply-add, see
:class:`_ToClip`). Resizing runs on uint8 frames (torchvision's fast antialiased path) before the
conversion to float; it stays in torch because swscale's resize costs more CPU time than
torchvision's uint8 one (measured with ``scripts/bench_data.py``'s files).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torchvision.transforms import v2

# uint8 frames (T, H, W, 3) -> float clip (3, T, size, size)
ClipTransform = Callable[[torch.Tensor], torch.Tensor]


class _ToClip:
    """uint8 frames (T, H, W, 3) -> float clip (3, T, H, W): v2 steps on (T, 3, H, W) uint8, then
    scaling to [0, 1] and per-channel normalisation.

    The last two are ``v2.ToDtype(scale=True)`` and ``v2.Normalize`` folded into one fused
    multiply-add per value, ``x / (255 std) - mean / std`` rounded once, equal to torchvision's
    pair up to float rounding (1e-6). The resized frames keep the decoder's interleaved RGB
    layout, so the channels are first separated on uint8 (numpy's strided copy, faster than
    torch's), converted to float, and each channel is then scaled in place by a vectorised
    ``torch.add(shift, x, alpha=scale)``: 5 % less CPU time per clip than one ``addcmul`` over
    the interleaved uint8 clip (which broadcasts two tensors and so runs element by element),
    with the very same values.
    """

    def __init__(
        self, steps: list[v2.Transform], mean: Sequence[float], std: Sequence[float]
    ) -> None:
        self.pipeline = v2.Compose(steps)
        spread = torch.tensor(std, dtype=torch.float32)
        self.scales = (1 / (255 * spread)).tolist()  # float32 values, one per channel
        self.shifts = list((-torch.tensor(mean, dtype=torch.float32) / spread).unbind())  # 0-dim

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        clip = self.pipeline(frames.permute(0, 3, 1, 2)).permute(1, 0, 2, 3)  # (3, T, size, size)
        planar = torch.from_numpy(np.ascontiguousarray(clip.numpy())).float()  # contiguous
        for channel, (scale, shift) in enumerate(zip(self.scales, self.shifts, strict=True)):
            torch.add(shift, planar[channel], alpha=scale, out=planar[channel])  # fused, in place
        return planar


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
    return _ToClip(steps, mean, std)


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> ClipTransform:
    """Short side to ``size``, centre ``size`` crop, normalisation (see :func:`train_transform`)."""
    steps = [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return _ToClip(steps, mean, std)
