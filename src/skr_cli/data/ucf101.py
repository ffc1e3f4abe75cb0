"""UCF101's official layout: ``UCF-101/<Class>/v_<Class>_gGG_cCC.avi`` and ``ucfTrainTestlist/``
with ``classInd.txt``, ``trainlist0F.txt`` and ``testlist0F.txt`` for folds F = 1, 2, 3."""

from __future__ import annotations

from pathlib import Path

from skr_cli.data.layout import find

LAYOUT = (
    "dataset.root=.../UCF-101 holding <Class>/v_<Class>_gGG_cCC.avi and "
    "dataset.splits=.../ucfTrainTestlist holding classInd.txt, trainlist0F.txt, testlist0F.txt"
)


def read_class_index(path: Path) -> list[str]:
    """Class names in label order from ``classInd.txt`` ("1 ApplyEyeMakeup"; label = index − 1)."""
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            index, name = line.split()
            entries.append((int(index) - 1, name))
    names = [name for _, name in sorted(entries)]
    if [i for i, _ in sorted(entries)] != list(range(len(names))):
        raise ValueError(f"{path}: class indices are not 1..{len(names)}")
    return names


def split_file(splits: Path, split: str, fold: int) -> Path:
    """``trainlist0F.txt`` or ``testlist0F.txt``."""
    return splits / f"{split}list{fold:02d}.txt"


def read_split(splits: Path, split: str, fold: int, classes: list[str]) -> list[tuple[str, int]]:
    """(relative path, label) pairs of ``trainlist0F.txt`` or ``testlist0F.txt``.

    Train lines carry the 1-based label ("Class/v_Class_g08_c01.avi 1"); test lines carry only
    the path, whose folder names the class (matched without regard to case).
    """
    path = split_file(splits, split, fold)
    label_of = {name.lower(): i for i, name in enumerate(classes)}
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        relative = fields[0]
        folder = relative.split("/")[0].lower()
        label = int(fields[1]) - 1 if len(fields) > 1 else label_of.get(folder, -1)
        if not 0 <= label < len(classes):
            raise ValueError(f"{path}:{number}: {relative!r} names no class of classInd.txt")
        samples.append((relative, label))
    return samples


def ucf101_samples(
    root: Path, splits: Path, split: str, fold: int
) -> tuple[list[tuple[Path, int]], list[str]]:
    """Video paths with labels for one split and fold, and the class names."""
    classes = read_class_index(splits / "classInd.txt")
    pairs = read_split(splits, split, fold, classes)
    return [(find(root, relative), label) for relative, label in pairs], classes
