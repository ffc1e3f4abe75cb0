"""UCF101's official layout: ``UCF-101/<Class>/<file>.avi`` and ``ucfTrainTestlist/``."""

from __future__ import annotations

from pathlib import Path


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


def read_split(splits: Path, split: str, fold: int, classes: list[str]) -> list[tuple[str, int]]:
    """(relative path, label) pairs of ``trainlistNN.txt`` or ``testlistNN.txt``.

    Train lines carry the 1-based label; test lines carry only the path, whose folder names the
    class.
    """
    path = splits / f"{split}list{fold:02d}.txt"
    label_of = {name: i for i, name in enumerate(classes)}
    samples = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        relative = line.split()[0]
        samples.append((relative, label_of[relative.split("/")[0]]))
    return samples


def ucf101_samples(
    root: Path, splits: Path, split: str, fold: int
) -> tuple[list[tuple[Path, int]], list[str]]:
    """Absolute video paths with labels for one split and fold, and the class names."""
    classes = read_class_index(splits / "classInd.txt")
    pairs = read_split(splits, split, fold, classes)
    return [(root / relative, label) for relative, label in pairs], classes
