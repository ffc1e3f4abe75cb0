"""Draws one row of frames per class of the built-in data set into a PNG, to see what skr learns.

Frames are decoded from the generated video files, so the picture shows exactly what the network
reads (codec artefacts included).

    .venv/bin/python scripts/preview_synthetic.py [--out synthetic.png] [--group 1] [--stride 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

from skr_cli.configs import config_dir
from skr_cli.data.video import decode_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("synthetic.png"))
    parser.add_argument("--group", type=int, default=1, help="scene (group) to show")
    parser.add_argument("--stride", type=int, default=2, help="show every n-th frame")
    parser.add_argument(
        "overrides", nargs="*", help="config overrides, e.g. dataset.generator.noise=0.1"
    )
    args = parser.parse_args()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=args.overrides)
    source = instantiate(cfg.dataset)
    root = source.prepare()
    rows = []
    for name in source.classes:
        video = decode_video(root / "UCF-101" / name / f"v_{name}_g{args.group:02d}_c01.avi")
        rows.append(np.concatenate(list(video[:: args.stride].numpy()), axis=1))
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST).save(args.out)
    print(f"wrote {args.out}: one row per class ({', '.join(source.classes)})")


if __name__ == "__main__":
    main()
