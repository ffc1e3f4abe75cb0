"""Clip transforms on (T, C, H, W) uint8 frames, one random draw for every frame of a clip.

Training: random short-side scale, random crop, optional horizontal flip. Evaluation: short-side
scale, centre crop. Both then scale to [0, 1] and normalise per channel (one multiply-add, see
:class:`_ToClip`). Resizing runs on uint8 frames (the fast antialiased path of
``torch.nn.functional.interpolate``) before the conversion to float; it stays in torch because
swscale's resize costs more CPU time (measured with ``scripts/bench_data.py``'s files).

The steps are torchvision's v2 ``RandomResize``, ``RandomCrop``, ``RandomHorizontalFlip``,
``Resize`` and ``CenterCrop`` written out in torch: the same random draws in the same order and
the same kernels, so the same pixels (a test compares them with torchvision's). Importing
torchvision costs a process a few tenths of a second, and a second or two more where nothing else
has loaded ``torch._dynamo`` (which it imports), for five small functions.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from functools import cache, partial

import numpy as np
import torch
import torch.nn.functional as F

# uint8 frames (T, H, W, 3) -> float clip (3, T, size, size)
ClipTransform = Callable[[torch.Tensor], torch.Tensor]
# uint8 frames (T, 3, H, W) -> uint8 frames (T, 3, h, w)
Step = Callable[[torch.Tensor], torch.Tensor]


@cache
def _native_uint8_resize() -> bool:
    """Whether torch resizes uint8 frames bilinearly in its own kernel on this CPU."""
    capability = torch.backends.cpu.get_cpu_capability()
    return capability in ("AVX2", "AVX512") or platform.machine() in ("aarch64", "arm64")


def resize_short_side(frames: torch.Tensor, short: int) -> torch.Tensor:
    """Bilinear, antialiased resize of (T, C, H, W) uint8 frames so that the shorter side is
    ``short`` (the longer one rounded down), as torchvision's ``v2.functional.resize``: on uint8
    directly where the CPU runs torch's native uint8 kernel (AVX2, AVX-512, ARM), else through
    float32, rounded back."""
    height, width = frames.shape[-2:]
    if width <= height:
        size = [int(short * height / width), short]
    else:
        size = [short, int(short * width / height)]
    if size == [height, width]:
        return frames
    image = frames.reshape(-1, *frames.shape[-3:])
    if image.is_contiguous(memory_format=torch.channels_last) and image.shape[0] == 1:
        # torch may allocate a one-image channels-last input's output as contiguous: restride
        # it as torchvision does, so the output keeps the layout (and the same kernel runs)
        strides = list(image.stride())
        if image.numel() != strides[0]:
            strides[0] = image.numel()
            image = image.as_strided(image.shape, strides)
    cast = frames.device.type != "cpu" or not _native_uint8_resize()
    if cast:
        image = image.to(torch.float32)
    image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
    if cast:
        image = image.round_().to(torch.uint8)
    return image.reshape(*frames.shape[:-2], *size)


def center_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """The centre ``size`` × ``size`` of frames at least that large (torchvision's rounding)."""
    height, width = frames.shape[-2:]
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return frames[..., top : top + size, left : left + size]


def random_resize(frames: torch.Tensor, low: int, high: int) -> torch.Tensor:
    """Short side to a size drawn uniformly from ``[low, high)`` (``v2.RandomResize``)."""
    return resize_short_side(frames, int(torch.randint(low, high, ())))


def random_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """A ``size`` × ``size`` crop at a random place (``v2.RandomCrop``: the top row, then the
    left column, each drawn only where there is room to move)."""
    height, width = frames.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"crop size {size} is larger than the frames ({height}×{width})")
    top = int(torch.randint(0, height - size + 1, size=())) if height > size else 0
    left = int(torch.randint(0, width - size + 1, size=())) if width > size else 0
    return frames[..., top : top + size, left : left + size]


def random_flip(frames: torch.Tensor) -> torch.Tensor:
    """Left-right flip with probability 0.5 (``v2.RandomHorizontalFlip``)."""
    return frames if torch.rand(1) >= 0.5 else frames.flip(-1)


class _ToClip:
    """uint8 frames (T, H, W, 3) -> float clip (3, T, H, W): the steps on (T, 3, H, W) uint8, then
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

    def __init__(self, steps: list[Step], mean: Sequence[float], std: Sequence[float]) -> None:
        self.steps = steps
        spread = torch.tensor(std, dtype=torch.float32)
        self.scales = (1 / (255 * spread)).tolist()  # float32 values, one per channel
        self.shifts = list((-torch.tensor(mean, dtype=torch.float32) / spread).unbind())  # 0-dim

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        clip = frames.permute(0, 3, 1, 2)  # (T, 3, H, W)
        for step in self.steps:
            clip = step(clip)
        clip = clip.permute(1, 0, 2, 3)  # (3, T, size, size)
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
    steps: list[Step] = [
        partial(random_resize, low=low, high=high + 1),
        partial(random_crop, size=size),
    ]
    if flip:
        steps.append(random_flip)
    return _ToClip(steps, mean, std)


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> ClipTransform:
    """Short side to ``size``, centre ``size`` crop, normalisation (see :func:`train_transform`)."""
    steps = [partial(resize_short_side, short=size), partial(center_crop, size=size)]
    return _ToClip(steps, mean, std)
