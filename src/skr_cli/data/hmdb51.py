"""HMDB51's official layout: ``<root>/<class>/<name>.avi`` and ``testTrainMulti_7030_splits/``
holding ``<class>_test_split{1,2,3}.txt``, one "name.avi tag" line per video (tag 1: train,
2: test, 0: unused in that fold)."""

from __future__ import annotations

import re
from pathlib import Path

from skr_cli.data.layout import find

LAYOUT = (
    "dataset.root=.../hmdb51 holding <class>/<name>.avi and "
    "dataset.splits=.../testTrainMulti_7030_splits holding <class>_test_split{1,2,3}.txt"
)
TAGS = {"train": "1", "test": "2"}


def split_files(splits: Path, fold: int) -> dict[str, Path]:
    """Class name -> its split file for ``fold``, classes in sorted order (the label order)."""
    pattern = re.compile(rf"(.+)_test_split{fold}\.txt")
    found = {}
    for path in splits.iterdir():
        match = pattern.fullmatch(path.name)
        if match:
            found[match.group(1)] = path
    return dict(sorted(found.items()))


def read_split_file(path: Path, split: str) -> list[str]:
    """Names tagged for ``split`` ("train" or "test"), tolerant of blank lines and stray spaces.

    File names may hold parentheses, ``!`` and other punctuation; the tag is the last field.
    """
    names = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        fields = line.strip().rsplit(maxsplit=1)
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise ValueError(f"{path}:{number}: expected '<name>.avi 0|1|2', got {line!r}")
        if fields[1] == TAGS[split]:
            names.append(fields[0])
    return names


def hmdb51_samples(
    root: Path, splits: Path, split: str, fold: int
) -> tuple[list[tuple[Path, int]], list[str]]:
    """Video paths with labels for one split and fold, and the class names (sorted)."""
    files = split_files(splits, fold)
    samples = [
        (find(root, f"{name}/{video}"), label)
        for label, (name, path) in enumerate(files.items())
        for video in read_split_file(path, split)
    ]
    return samples, list(files)
