"""Data sources: what ``conf/dataset/*.yaml`` instantiates.

A source knows where its videos are (preparing or checking them first) and hands out map-style
clip datasets per split ("train", "val" or "test"). Every source shares the clip settings of
:class:`VideoSource`; each one only lists the (path, label) samples of its official splits, and
"val" is carved from "train" here (:func:`held_out`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from skr_cli.data import hmdb51, kinetics, ucf101
from skr_cli.data.clips import VideoClips
from skr_cli.data.synthetic import SyntheticSpec, class_names, ensure_synthetic
from skr_cli.data.transforms import eval_transform, train_transform

Samples = list[tuple[Path, int]]


@dataclass(kw_only=True)
class VideoSource:
    """Clip settings shared by every source.

    Args:
        num_classes: classes the model predicts; must match the data set's class list.
        frames: clip length T.
        fps: frame rate clips are resampled to, or None for the files' own frames.
        size: clip height and width.
        scale: training short side drawn from ``[scale[0], scale[1]] * size``.
        flip: random horizontal flips in training.
        mean: per-channel mean of [0, 1] pixels, for normalisation.
        std: per-channel standard deviation of [0, 1] pixels.
        eval_clips: uniform clips per test video; video-level accuracy averages their logits.
        decoder: ``"pyav"`` or ``"torchcodec"``.
        cache_decoded: keep decoded videos in memory (small data sets).
        num_workers: DataLoader worker processes (read by the pipeline).
        max_skip_fraction: largest share of a split that may fail to decode (read by the
            pipeline).
        val_fraction: share of the training groups held out as the "val" split (for tuning
            without touching the test split); 0: none, "train" is the official training split.
    """

    num_classes: int
    frames: int
    fps: float | None
    size: int
    scale: list[float]
    flip: bool
    mean: list[float]
    std: list[float]
    eval_clips: int
    decoder: str
    cache_decoded: bool
    num_workers: int
    max_skip_fraction: float
    val_fraction: float = 0.0
    classes: list[str] = field(default_factory=list, init=False)

    def prepare(self) -> None:
        """Checks (or builds) the files and reads the class list; raises on a bad layout."""
        raise NotImplementedError

    def samples(self, split: str) -> Samples:
        """(video path, label) pairs of ``split``."""
        raise NotImplementedError

    def split_samples(self, split: str) -> Samples:
        """(video path, label) pairs of "train", "val" or "test": "val" holds the training
        videos :func:`held_out` picks for ``val_fraction``, and "train" the rest."""
        if split == "test":
            return self.samples("test")
        train = self.samples("train")
        held = held_out([path for path, _ in train], self.val_fraction)
        return [sample for sample in train if (sample[0] in held) == (split == "val")]

    def clips(self, split: str, *, train: bool) -> VideoClips:
        """Clips of ``split``: one random clip per video if ``train``, else uniform ones."""
        if not self.classes:
            raise RuntimeError("call prepare() before clips()")
        if train:
            transform = train_transform(self.size, self.scale, self.flip, self.mean, self.std)
        else:
            transform = eval_transform(self.size, self.mean, self.std)
        return VideoClips(
            self.split_samples(split),
            frames=self.frames,
            fps=self.fps,
            eval_clips=None if train else self.eval_clips,
            transform=transform,
            decoder=self.decoder,
            cache_decoded=self.cache_decoded,
        )

    def _check_classes(self, name: str, listed_in: str) -> None:
        if len(self.classes) != self.num_classes:
            raise ValueError(
                f"{name}: {listed_in} lists {len(self.classes)} classes but "
                f"dataset.num_classes={self.num_classes}; set dataset.num_classes="
                f"{len(self.classes)}"
            )


# UCF101's naming: v_<Class>_gGG_cCC, where a group GG is one scene (same actors, background)
GROUP = re.compile(r"_g(\d+)_c\d+$")


def held_out(paths: list[Path], fraction: float) -> set[Path]:
    """The training videos of the "val" split: ``fraction`` of the groups, drawn once with a
    fixed seed (the same for every run seed, so a study tunes on one split).

    A group is a scene where file names carry one (UCF101's ``_gGG_``, also the built-in set's):
    every video of the group goes to the same side, as the official splits do, so validation
    never sees a scene it trained on. Elsewhere each video is its own group.
    """
    if fraction <= 0:
        return set()
    groups: dict[str, list[Path]] = {}
    for path in paths:
        match = GROUP.search(path.stem)
        groups.setdefault(match.group(1) if match else str(path), []).append(path)
    names = sorted(groups)
    count = min(len(names) - 1, max(1, round(fraction * len(names))))
    chosen = random.Random(0).sample(names, count)
    return {path for name in chosen for path in groups[name]}


def _require(path: Path, what: str, name: str, layout: str) -> None:
    """Stops with one line naming the missing path and the expected layout."""
    if not path.exists():
        raise FileNotFoundError(f"{name}: {what} {path} not found; expected {layout}")


def _folder(value: str | None, key: str, name: str, layout: str) -> Path:
    if not value:
        raise FileNotFoundError(f"{name}: {key} is not set; expected {layout}")
    path = Path(value).expanduser()
    _require(path, key, name, layout)
    return path


@dataclass(kw_only=True)
class SyntheticSource(VideoSource):
    """The built-in motion clips (generated once into ``cache_dir``), read as UCF101 split 1.

    Args:
        cache_dir: where generated data sets are kept, one folder per generator setting.
        generator: the remaining :class:`SyntheticSpec` fields (groups, noise, seed, ...).
    """

    cache_dir: str
    generator: dict
    root: Path | None = field(default=None, init=False)

    def prepare(self) -> None:
        """Generates the videos unless a cached copy exists."""
        self.classes = class_names(self.num_classes)
        spec = SyntheticSpec(num_classes=self.num_classes, **self.generator)
        self.root = ensure_synthetic(self.cache_dir, spec)

    def samples(self, split: str) -> Samples:
        lists = self.root / "ucfTrainTestlist"
        return ucf101.ucf101_samples(self.root / "UCF-101", lists, split, fold=1)[0]


@dataclass(kw_only=True)
class Ucf101Source(VideoSource):
    """UCF101 in its official layout (see :mod:`skr_cli.data.ucf101`).

    Args:
        root: the ``UCF-101`` folder (one folder per class).
        splits: the ``ucfTrainTestlist`` folder.
        fold: the official split, 1–3.
    """

    root: str | None
    splits: str | None
    fold: int

    def prepare(self) -> None:
        root = _folder(self.root, "dataset.root", "ucf101", ucf101.LAYOUT)
        splits = _folder(self.splits, "dataset.splits", "ucf101", ucf101.LAYOUT)
        _require(splits / "classInd.txt", "split file", "ucf101", ucf101.LAYOUT)
        for split in ("train", "test"):
            path = ucf101.split_file(splits, split, self.fold)
            _require(path, "split file", "ucf101", ucf101.LAYOUT)
        self.classes = ucf101.read_class_index(splits / "classInd.txt")
        self._check_classes("ucf101", "classInd.txt")
        self._paths = (root, splits)

    def samples(self, split: str) -> Samples:
        return ucf101.ucf101_samples(*self._paths, split, self.fold)[0]


@dataclass(kw_only=True)
class Hmdb51Source(VideoSource):
    """HMDB51 in its official layout (see :mod:`skr_cli.data.hmdb51`).

    Args:
        root: the folder holding one folder of ``.avi`` files per class.
        splits: the ``testTrainMulti_7030_splits`` folder.
        fold: the official split, 1–3.
    """

    root: str | None
    splits: str | None
    fold: int

    def prepare(self) -> None:
        root = _folder(self.root, "dataset.root", "hmdb51", hmdb51.LAYOUT)
        splits = _folder(self.splits, "dataset.splits", "hmdb51", hmdb51.LAYOUT)
        files = hmdb51.split_files(splits, self.fold)
        if not files:
            pattern = f"<class>_test_split{self.fold}.txt"
            raise FileNotFoundError(
                f"hmdb51: no {pattern} in dataset.splits={splits}; expected {hmdb51.LAYOUT}"
            )
        self.classes = list(files)
        self._check_classes("hmdb51", f"dataset.splits (fold {self.fold})")
        self._paths = (root, splits)

    def samples(self, split: str) -> Samples:
        return hmdb51.hmdb51_samples(*self._paths, split, self.fold)[0]


@dataclass(kw_only=True)
class KineticsSource(VideoSource):
    """Kinetics (400, 600 or 700 by its CSVs) in the downloader's layout (see
    :mod:`skr_cli.data.kinetics`); the test split is Kinetics' validation set.

    Args:
        root: the folder holding ``train/`` and ``val/``, one folder per label in each.
        splits: the folder holding ``train.csv`` and ``validate.csv``.
    """

    root: str | None
    splits: str | None

    def prepare(self) -> None:
        root = _folder(self.root, "dataset.root", "kinetics", kinetics.LAYOUT)
        splits = _folder(self.splits, "dataset.splits", "kinetics", kinetics.LAYOUT)
        for split in ("train", "test"):
            _require(kinetics.annotation_file(splits, split), "file", "kinetics", kinetics.LAYOUT)
        rows = kinetics.read_annotations(kinetics.annotation_file(splits, "train"))
        self.classes = kinetics.class_names(rows)
        self._check_classes("kinetics", "train.csv")
        self._paths = (root, splits)

    def samples(self, split: str) -> Samples:
        return kinetics.kinetics_samples(*self._paths, split)[0]
