"""Data sources: what ``conf/dataset/*.yaml`` instantiates.

A source knows where its videos are (preparing them first if needed) and hands out map-style
clip datasets per split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from skr_cli.data.clips import VideoClips
from skr_cli.data.synthetic import SyntheticSpec, class_names, ensure_synthetic
from skr_cli.data.ucf101 import ucf101_samples


@dataclass
class SyntheticSource:
    """The built-in motion clips (generated once into ``cache_dir``), read as UCF101 split 1.

    Args:
        cache_dir: where generated data sets are kept, one folder per generator setting.
        num_classes: how many motion classes (2–10).
        frames: clip length T.
        size: clip height and width.
        eval_clips: clips per test video.
        cache_decoded: keep decoded videos in memory.
        num_workers: DataLoader worker processes.
        generator: the remaining :class:`SyntheticSpec` fields (groups, noise, seed, ...).
    """

    cache_dir: str
    num_classes: int
    frames: int
    size: int
    eval_clips: int
    cache_decoded: bool
    num_workers: int
    generator: dict
    root: Path | None = field(default=None, init=False)

    @property
    def classes(self) -> list[str]:
        return class_names(self.num_classes)

    def prepare(self) -> Path:
        """Generates the videos unless a cached copy exists; returns the data set's root."""
        spec = SyntheticSpec(num_classes=self.num_classes, **self.generator)
        self.root = ensure_synthetic(self.cache_dir, spec)
        return self.root

    def clips(self, split: str, *, train: bool) -> VideoClips:
        """Clips of ``split`` ("train" or "test"): random ones if ``train``, else uniform ones."""
        if self.root is None:
            raise RuntimeError("call prepare() before clips()")
        samples, _ = ucf101_samples(
            self.root / "UCF-101", self.root / "ucfTrainTestlist", split, fold=1
        )
        return VideoClips(
            samples,
            frames=self.frames,
            size=self.size,
            eval_clips=None if train else self.eval_clips,
            cache_decoded=self.cache_decoded,
        )
