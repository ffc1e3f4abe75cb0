"""A map-style dataset of clips cut from encoded video files, and its collate function."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from skr_cli.data.video import VideoDecodeError, decode_video

Batch = tuple[torch.Tensor, torch.Tensor, list[str]]


class VideoClips(Dataset):
    """Clips of ``frames`` frames, ``size`` x ``size`` pixels, from (path, label) samples.

    Training mode (``eval_clips=None``) returns one random clip per video with a random crop;
    evaluation mode returns ``eval_clips`` clips spread uniformly over the video, centre-cropped.
    A video that cannot be decoded yields ``None`` (see :func:`collate_clips`).

    Args:
        samples: (video path, label) pairs.
        frames: clip length T.
        size: output height and width; the short side is resized to it first.
        eval_clips: clips per video in evaluation mode, or None for training mode.
        cache_decoded: keep decoded videos in memory (worth it for small data sets).
    """

    def __init__(
        self,
        samples: list[tuple[Path, int]],
        *,
        frames: int,
        size: int,
        eval_clips: int | None,
        cache_decoded: bool,
    ) -> None:
        self.samples, self.frames, self.size = samples, frames, size
        self.eval_clips, self.cache_decoded = eval_clips, cache_decoded
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def _video(self, index: int) -> torch.Tensor:
        if index in self._cache:
            return self._cache[index]
        video = decode_video(self.samples[index][0])
        if self.cache_decoded:
            self._cache[index] = video
        return video

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | tuple[None, str]:
        try:
            video = self._video(index)  # (T, H, W, 3) uint8
        except VideoDecodeError:
            return None, str(self.samples[index][0])
        label = self.samples[index][1]
        if self.eval_clips is None:
            start = int(torch.randint(0, max(len(video) - self.frames, 0) + 1, ()))
            return self._transform(video, start, train=True), label
        last = max(len(video) - self.frames, 0)
        starts = torch.linspace(0, last, self.eval_clips).round().long().tolist()
        return torch.stack([self._transform(video, s, train=False) for s in starts]), label

    def _transform(self, video: torch.Tensor, start: int, train: bool) -> torch.Tensor:
        """Cuts frames [start, start+T) (looping short videos), resizes, crops, scales to [-1, 1].

        Returns:
            float tensor (3, T, size, size).
        """
        index = (start + torch.arange(self.frames)) % len(video)
        clip = video[index].permute(0, 3, 1, 2).float()  # (T, 3, H, W)
        height, width = clip.shape[-2:]
        if min(height, width) != self.size:
            scale = self.size / min(height, width)
            new = (max(self.size, round(height * scale)), max(self.size, round(width * scale)))
            clip = F.interpolate(clip, size=new, mode="bilinear", antialias=True)
        top, left = self._crop_origin(clip.shape[-2:], train)
        clip = clip[..., top : top + self.size, left : left + self.size]
        return (clip / 127.5 - 1.0).permute(1, 0, 2, 3).contiguous()

    def _crop_origin(self, shape: torch.Size, train: bool) -> tuple[int, int]:
        spare_h, spare_w = shape[0] - self.size, shape[1] - self.size
        if not train:
            return spare_h // 2, spare_w // 2
        return int(torch.randint(0, spare_h + 1, ())), int(torch.randint(0, spare_w + 1, ()))


def collate_clips(items: list[tuple[torch.Tensor, int] | tuple[None, str]]) -> Batch:
    """Stacks decodable items; returns (clips, labels, paths of the videos that failed)."""
    good = [(clip, label) for clip, label in items if clip is not None]
    failed = [path for clip, path in items if clip is None]
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), failed
    clips, labels = zip(*good, strict=True)
    return torch.stack(clips), torch.tensor(labels), failed
