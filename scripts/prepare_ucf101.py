"""Unpacks UCF101's official archives into the layout ``dataset=ucf101`` reads, and checks it.

This script does not download (it cannot from here): fetch the two archives from the dataset's
page (https://www.crcv.ucf.edu/data/UCF101.php) yourself:

    UCF101.rar                                   (6.5 GB: UCF-101/<Class>/v_<Class>_gGG_cCC.avi)
    UCF101TrainTestSplits-RecognitionTask.zip    (ucfTrainTestlist/: classInd.txt, train/testlist0F)

then run

    .venv/bin/python scripts/prepare_ucf101.py --archives DIR --out DATA/ucf101
    .venv/bin/python scripts/prepare_ucf101.py --out DATA/ucf101 --check-only

and train with ``skr-run dataset=ucf101 dataset.root=DATA/ucf101/UCF-101
dataset.splits=DATA/ucf101/ucfTrainTestlist dataset.fold=1``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prepare_common import check_samples, unpack, unpack_and_check
from skr_cli.data.ucf101 import read_class_index, split_file, ucf101_samples

ARCHIVES = ("UCF101.rar", "UCF101TrainTestSplits-RecognitionTask.zip")


def check(out: Path, decode: int) -> int:
    root, lists = out / "UCF-101", out / "ucfTrainTestlist"
    for path in (root, lists / "classInd.txt"):
        if not path.exists():
            sys.exit(f"{path} is missing: unpack the archives first (see --help)")
    classes = read_class_index(lists / "classInd.txt")
    print(f"{len(classes)} classes in classInd.txt (UCF101 has 101)")
    problems = 0 if len(classes) == 101 else 1
    for fold in (1, 2, 3):
        for split in ("train", "test"):
            if not split_file(lists, split, fold).is_file():
                print(f"fold {fold} {split}: {split_file(lists, split, fold).name} is missing")
                problems += 1
                continue
            samples, _ = ucf101_samples(root, lists, split, fold)
            problems += check_samples(f"fold {fold} {split}", samples, decode if fold == 1 else 0)
    return problems


def unpack_all(archives: Path, out: Path) -> None:
    for name in ARCHIVES:
        unpack(archives / name, out)


def main() -> None:
    unpack_and_check(__doc__, unpack_all, check)


if __name__ == "__main__":
    main()
