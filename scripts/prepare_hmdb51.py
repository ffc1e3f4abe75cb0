"""Unpacks HMDB51's official archives into the layout ``dataset=hmdb51`` reads, and checks it.

This script does not download (it cannot from here): fetch the two archives from the dataset's
page (https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/) yourself:

    hmdb51_org.rar           (2 GB: one <class>.rar per class, each holding <class>/<name>.avi)
    test_train_splits.rar    (testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt)

then run

    .venv/bin/python scripts/prepare_hmdb51.py --archives DIR --out DATA/hmdb51
    .venv/bin/python scripts/prepare_hmdb51.py --out DATA/hmdb51 --check-only

and train with ``skr-run dataset=hmdb51 dataset.root=DATA/hmdb51/videos
dataset.splits=DATA/hmdb51/testTrainMulti_7030_splits dataset.fold=1``. RAR archives need unrar,
7z or bsdtar on PATH.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from prepare_common import check_samples, unpack, unpack_and_check
from skr_cli.data.hmdb51 import hmdb51_samples, split_files


def unpack_all(archives: Path, out: Path) -> None:
    unpack(archives / "test_train_splits.rar", out)
    with tempfile.TemporaryDirectory() as tmp:
        unpack(archives / "hmdb51_org.rar", Path(tmp))
        for inner in sorted(Path(tmp).rglob("*.rar")):  # one archive per class
            unpack(inner, out / "videos")


def check(out: Path, decode: int) -> int:
    root, splits = out / "videos", out / "testTrainMulti_7030_splits"
    for path in (root, splits):
        if not path.is_dir():
            sys.exit(f"{path} is missing: unpack the archives first (see --help)")
    problems = 0
    for fold in (1, 2, 3):
        classes = list(split_files(splits, fold))
        print(f"fold {fold}: {len(classes)} classes (HMDB51 has 51)")
        problems += len(classes) != 51
        for split in ("train", "test"):
            samples, _ = hmdb51_samples(root, splits, split, fold)
            problems += check_samples(f"fold {fold} {split}", samples, decode if fold == 1 else 0)
    return problems


def main() -> None:
    unpack_and_check(__doc__, unpack_all, check)


if __name__ == "__main__":
    main()
