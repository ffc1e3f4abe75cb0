"""Kinetics' layout: annotation CSVs (``label,youtube_id,time_start,time_end,split[,is_cc]``)
and clips in ``<root>/<split folder>/<label>/``, named ``{youtube_id}_{start:06d}_{end:06d}.mp4``
(as the official downloader writes them) or ``{youtube_id}.mp4``."""

from __future__ import annotations

import csv
from pathlib import Path

from skr_cli.data.layout import find, listing

LAYOUT = (
    "dataset.root=.../kinetics400 holding train/<label>/<youtube_id>_<start>_<end>.mp4 and "
    "val/<label>/...; dataset.splits=.../annotations holding train.csv and validate.csv"
)
CSV_NAMES = {"train": ("train.csv",), "test": ("validate.csv", "val.csv")}
FOLDERS = {"train": ("train",), "test": ("val", "validate", "validation")}
SUFFIXES = (".mp4", ".webm", ".mkv")


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    return folder / names[0]


def annotation_file(splits: Path, split: str) -> Path:
    """The CSV of ``split`` ("train" or "test", which is Kinetics' validation set)."""
    return _first_existing(splits, CSV_NAMES[split])


def read_annotations(path: Path) -> list[dict[str, str]]:
    """Rows of an annotation CSV; checks the header names the columns skr reads."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
        columns = set(rows[0]) if rows else set()
    missing = {"label", "youtube_id", "time_start", "time_end"} - columns
    if missing:
        raise ValueError(f"{path}: no column {', '.join(sorted(missing))} in the header")
    return rows


def class_names(rows: list[dict[str, str]]) -> list[str]:
    """Sorted distinct labels: the label order, the same on every machine."""
    return sorted({row["label"] for row in rows})


def clip_path(folder: Path, row: dict[str, str]) -> Path:
    """A row's clip in its split folder: label folder with spaces or underscores, full or bare
    name, any of the usual containers; the official name when none is on disk."""
    label = row["label"]
    label_dir = folder / label
    if not label_dir.is_dir():
        label_dir = find(folder, label.replace(" ", "_"))
    start, end = int(float(row["time_start"])), int(float(row["time_end"]))
    stems = (f"{row['youtube_id']}_{start:06d}_{end:06d}", row["youtube_id"])
    present = listing(label_dir)  # one directory read per label, not a stat per candidate
    for stem in stems:
        for suffix in SUFFIXES:
            if f"{stem}{suffix}".lower() in present:
                return label_dir / present[f"{stem}{suffix}".lower()]
    return label_dir / f"{stems[0]}.mp4"


def kinetics_samples(
    root: Path, splits: Path, split: str
) -> tuple[list[tuple[Path, int]], list[str]]:
    """Video paths with labels for ``split``, and the class names (from the train CSV)."""
    classes = class_names(read_annotations(annotation_file(splits, "train")))
    label_of = {name: i for i, name in enumerate(classes)}
    folder = _first_existing(root, FOLDERS[split])
    rows = read_annotations(annotation_file(splits, split))
    unknown = sorted({row["label"] for row in rows} - set(label_of))
    if unknown:
        raise ValueError(
            f"{annotation_file(splits, split)}: labels not in train.csv: {unknown[:3]}"
        )
    return [(clip_path(folder, row), label_of[row["label"]]) for row in rows], classes
