"""Rewrites the absolute paths in finished runs' small files as paths relative to the project,
so that the run folders kept under ``benchmarks/`` say nothing about where they ran:

    python scripts/relative_paths.py benchmarks/calibration/runs

Hydra writes its working directory, config source and output folder into ``.hydra/hydra.yaml``
and ``multirun.yaml``; those become ``.``-relative. A ``dense_cache.path`` written before it was
recorded inside the cache folder becomes ``dense/<key>/dense.pt``. Files are rewritten in place,
only where something changes; running it twice changes nothing the second time.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("hydra.yaml", "multirun.yaml", "metrics.json", "timings.json")
OLD_CACHE_PATH = re.compile(r'"path": "[^"]*/(dense/[0-9a-f]+/dense\.pt)"')


def relative(text: str, root: str) -> str:
    """``text`` with ``root`` (an absolute folder) written as ``.``."""
    text = OLD_CACHE_PATH.sub(r'"path": "\1"', text)
    return re.sub(re.escape(root) + r"(?=/|\b|$)", ".", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    changed = 0
    for folder in args.folders:
        for path in sorted(p for p in folder.rglob("*") if p.name in NAMES and p.is_file()):
            text = path.read_text()
            new = relative(text, str(ROOT))
            if new != text:
                path.write_text(new)
                changed += 1
    print(f"relative_paths: {changed} files rewritten")


if __name__ == "__main__":
    main()
