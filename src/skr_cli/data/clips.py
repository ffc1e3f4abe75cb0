"""A map-style dataset of clips cut from encoded video files, its sampler and collate function."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from skr_cli.data.transforms import ClipTransform
from skr_cli.data.video import (
    DamagedVideoError,
    VideoDecodeError,
    VideoInfo,
    check_whole,
    decode_all,
    read_frames,
)

Batch = tuple[torch.Tensor, torch.Tensor, list[str]]

# Decoded videos kept in memory by every dataset of this process that caches (cache_decoded):
# (path, decoder, size, mtime) → (frames, fps). Process-wide, so that the jobs a joblib worker
# runs one after another decode the data set once; the oldest entries go beyond the budget.
_DECODED: dict[tuple[str, str, int, int], tuple[torch.Tensor, VideoInfo]] = {}
DECODED_BUDGET_BYTES = 4 * 2**30
_decoded_bytes = 0
Item = tuple[torch.Tensor, int] | tuple[None, str]

log = logging.getLogger(__name__)


class DamagedPath(str):
    """The path of a video skipped as damaged (cut short) rather than unreadable: a ``str``, so
    that lists of the paths that failed stay lists of paths (and cross worker processes)."""


def clip_span(info: VideoInfo, *, frames: int, fps: float | None) -> float:
    """How many of the file's frames one clip of ``frames`` frames at ``fps`` spans."""
    step = 1.0 if fps is None else info.fps / fps
    return (frames - 1) * step + 1


def frame_indices(
    info: VideoInfo, *, frames: int, fps: float | None, starts: list[float] | None, draw: float
) -> list[int]:
    """Frame indices of clips of ``frames`` frames at ``fps`` (None: the file's own rate).

    Args:
        info: the file's frame count and rate.
        frames: clip length T.
        fps: the rate clips are resampled to, or None for consecutive frames.
        starts: clip starts as fractions of the room left in the video (evaluation), or None
            for one clip starting at ``draw`` (a number in [0, 1), training).
        draw: the training clip's random start, as a fraction of that room.

    Returns:
        ``len(starts) * frames`` indices (``frames`` for training); videos shorter than a clip
        loop.
    """
    step = 1.0 if fps is None else info.fps / fps
    room = max(info.frames - clip_span(info, frames=frames, fps=fps), 0.0)
    if starts is None:
        origins = [float(int(draw * (int(room) + 1)))]
    else:
        origins = [round(fraction * room) for fraction in starts]
    return [round(origin + k * step) % info.frames for origin in origins for k in range(frames)]


def take(video: torch.Tensor, indices: list[int]) -> torch.Tensor:
    """``video[indices]`` along dim 0; evenly spaced indices give a view instead of a copy."""
    steps = {b - a for a, b in pairwise(indices)}
    if len(steps) == 1 and (step := steps.pop()) > 0:
        return video[indices[0] : indices[-1] + 1 : step]
    return video[indices]


class VideoClips(Dataset):
    """Clips of ``frames`` frames from (path, label) samples, transformed.

    Training mode (``eval_clips=None``) returns one random clip per video; evaluation mode returns
    ``eval_clips`` clips spread uniformly over the video. An item is an index, or (index, seed)
    from :class:`SeededSampler`: the seed fixes the clip's start and augmentation, so a run does
    not depend on how many worker processes load it. A video that cannot be decoded yields
    ``(None, path)`` and is logged once (see :func:`collate_clips`); so does one that holds
    under half of the frames its header declares or fewer than a clip spans (the path is then a
    :class:`DamagedPath`).

    Args:
        samples: (video path, label) pairs.
        frames: clip length T.
        fps: frame rate clips are resampled to, or None for the file's own frames.
        eval_clips: clips per video in evaluation mode, or None for training mode.
        transform: uint8 frames (T, H, W, 3) -> float clip (3, T, size, size).
        decoder: ``"pyav"`` or ``"torchcodec"``.
        cache_decoded: keep every decoded frame in memory (small data sets only): each video is
            decoded once, later clips are cut from memory.
    """

    def __init__(
        self,
        samples: list[tuple[Path, int]],
        *,
        frames: int,
        fps: float | None,
        eval_clips: int | None,
        transform: ClipTransform,
        decoder: str,
        cache_decoded: bool,
    ) -> None:
        self.samples, self.frames, self.fps = samples, frames, fps
        self.eval_clips, self.transform, self.decoder = eval_clips, transform, decoder
        self.cache_decoded = cache_decoded
        self._logged: set[int] = set()

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def paths(self) -> list[str]:
        return [str(path) for path, _ in self.samples]

    def _frames(self, index: int, rng: torch.Generator) -> torch.Tensor:
        """The frames of this item's clips, (N * T, H, W, 3) uint8."""
        starts = None
        if self.eval_clips is not None:
            starts = torch.linspace(0, 1, self.eval_clips).tolist()
        draw = float(torch.rand((), generator=rng))

        path = self.samples[index][0]

        def choose(info: VideoInfo) -> list[int]:
            check_whole(path, info, clip_span(info, frames=self.frames, fps=self.fps))
            return frame_indices(info, frames=self.frames, fps=self.fps, starts=starts, draw=draw)

        if not self.cache_decoded:
            return read_frames(path, choose, self.decoder)
        video, info = decoded(path, self.decoder)
        return take(video, choose(info))

    def __getitem__(self, item: int | tuple[int, int]) -> Item:
        index, seed = item if isinstance(item, tuple) else (item, item)
        path, label = self.samples[index]
        rng = torch.Generator().manual_seed(seed)
        try:
            frames = self._frames(index, rng)
        except VideoDecodeError as err:
            damaged = isinstance(err, DamagedVideoError)
            if index not in self._logged:
                self._logged.add(index)
                kind = "a damaged video" if damaged else "a video that cannot be decoded"
                log.warning("skipping %s: %s", kind, err)
            return None, DamagedPath(path) if damaged else str(path)
        clips = frames.reshape(-1, self.frames, *frames.shape[1:])  # (N, T, H, W, 3)
        with torch.random.fork_rng(devices=[]):  # the transforms draw from the global RNG
            # The CPU generator alone: torch.manual_seed also queues a seed for every lazy
            # accelerator backend, recording a stack trace each time (same draws, more CPU).
            torch.default_generator.manual_seed(int(torch.randint(2**62, (), generator=rng)))
            out = [self.transform(clip) for clip in clips]  # N x (3, T, size, size)
        return (out[0] if self.eval_clips is None else torch.stack(out)), label


def decoded(path: Path, decoder: str) -> tuple[torch.Tensor, VideoInfo]:
    """Every frame of a video and its :class:`VideoInfo`, decoded once per process (see
    ``_DECODED``); a file rewritten since (another size or modification time) is decoded again."""
    global _decoded_bytes
    try:
        stat = Path(path).stat()
    except OSError:
        return decode_all(path, decoder)  # raises the decoder's error for a missing file
    key = (str(path), decoder, stat.st_size, stat.st_mtime_ns)
    if key not in _DECODED:
        _DECODED[key] = decode_all(path, decoder)
        _decoded_bytes += _DECODED[key][0].nbytes
        while _decoded_bytes > DECODED_BUDGET_BYTES and len(_DECODED) > 1:
            _decoded_bytes -= _DECODED.pop(next(iter(_DECODED)))[0].nbytes
    return _DECODED[key]


class SeededSampler(Sampler[tuple[int, int]]):
    """Shuffled indices, each paired with a seed for its clip, drawn in the main process.

    Args:
        size: the data set's length.
        generator: the source of the order and of the seeds (one per epoch's draw).
    """

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size, self.generator = size, generator

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.size, generator=self.generator).tolist()
        seeds = torch.randint(2**62, (self.size,), generator=self.generator).tolist()
        return iter(zip(order, seeds, strict=True))


def collate_clips(items: list[Item]) -> Batch:
    """Stacks decodable items; returns (clips, labels, paths of the videos that failed).

    Clips are (B, C, T, H, W) in training and (B, N, C, T, H, W) with N clips per video in
    evaluation.
    """
    good = [(clip, label) for clip, label in items if clip is not None]
    failed = [path for clip, path in items if clip is None]
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), failed
    clips, labels = zip(*good, strict=True)
    return torch.stack(clips), torch.tensor(labels), failed
