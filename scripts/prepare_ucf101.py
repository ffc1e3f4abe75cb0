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

import argparse
import sys
from pathlib import Path

from prepare_common import check_samples, unpack
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archives", type=Path, help="folder holding the downloaded archives")
    parser.add_argument("--out", type=Path, required=True, help="where the layout goes")
    parser.add_argument("--check-only", action="store_true", help="check, do not unpack")
    parser.add_argument("--decode", type=int, default=50, help="videos per split to decode")
    args = parser.parse_args()
    if not args.check_only:
        if args.archives is None:
            parser.error("--archives is required unless --check-only")
        for name in ARCHIVES:
            unpack(args.archives / name, args.out)
    sys.exit(1 if check(args.out, args.decode) else 0)


if __name__ == "__main__":
    main()
