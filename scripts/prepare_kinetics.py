"""Arranges Kinetics clips into the layout ``dataset=kinetics400`` reads, and checks it.

This script does not download (it cannot from here). Fetch Kinetics-400 yourself, e.g. with the
CVDF mirror's script (https://github.com/cvdfoundation/kinetics-dataset: ``k400_downloader.sh``
then ``k400_extractor.sh``), which leaves flat folders of ``{youtube_id}_{start:06d}_{end:06d}.mp4``
clips (``train/``, ``val/``) and ``annotations/{train,val}.csv``. This script moves every listed
clip into ``<out>/<split>/<label>/`` (``--copy`` to copy instead), copies the CSVs to
``<out>/annotations/`` (``val.csv`` is also read as ``validate.csv``), then checks:

    .venv/bin/python scripts/prepare_kinetics.py --clips k400 --annotations k400/annotations \\
        --out DATA/kinetics400
    .venv/bin/python scripts/prepare_kinetics.py --out DATA/kinetics400 --check-only

and train with ``skr-run dataset=kinetics400 dataset.root=DATA/kinetics400
dataset.splits=DATA/kinetics400/annotations``. Clips that vanished from YouTube are reported as
missing; ``dataset.max_skip_fraction`` says how many a run tolerates.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from prepare_common import check_samples
from skr_cli.data.kinetics import annotation_file, class_names, kinetics_samples, read_annotations

SPLITS = {"train": ("train", "train.csv"), "test": ("val", "validate.csv")}


def arrange(clips: Path, annotations: Path, out: Path, copy: bool) -> None:
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for split, (folder, csv_name) in SPLITS.items():
        source = annotation_file(annotations, split)
        if not source.is_file():
            sys.exit(f"{source} is missing (see --help)")
        shutil.copyfile(source, out / "annotations" / csv_name)
        moved = 0
        for row in read_annotations(source):
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            name = f"{row['youtube_id']}_{start:06d}_{end:06d}.mp4"
            found = clips / folder / name
            if found.is_file():
                target = out / folder / row["label"] / name
                target.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copyfile if copy else shutil.move)(found, target)
                moved += 1
        print(f"{split}: arranged {moved} clips into {out / folder}/<label>/")


def check(out: Path, decode: int) -> int:
    notes = out / "annotations"
    if not annotation_file(notes, "train").is_file():
        sys.exit(f"{notes}/train.csv is missing: arrange the clips first (see --help)")
    classes = class_names(read_annotations(annotation_file(notes, "train")))
    print(f"{len(classes)} labels in train.csv (Kinetics-400 has 400)")
    problems = 0
    for split in ("train", "test"):
        samples, _ = kinetics_samples(out, notes, split)
        problems += check_samples(split, samples, decode)
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=Path, help="folder holding train/ and val/ clip folders")
    parser.add_argument("--annotations", type=Path, help="folder holding train.csv and val.csv")
    parser.add_argument("--out", type=Path, required=True, help="where the layout goes")
    parser.add_argument("--copy", action="store_true", help="copy clips instead of moving them")
    parser.add_argument("--check-only", action="store_true", help="check, do not arrange")
    parser.add_argument("--decode", type=int, default=50, help="videos per split to decode")
    args = parser.parse_args()
    if not args.check_only:
        if args.clips is None or args.annotations is None:
            parser.error("--clips and --annotations are required unless --check-only")
        arrange(args.clips, args.annotations, args.out, args.copy)
    sys.exit(1 if check(args.out, args.decode) else 0)


if __name__ == "__main__":
    main()
