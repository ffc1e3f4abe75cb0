"""Shared by the ``prepare_*.py`` scripts: unpacking archives and checking a prepared layout."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from skr_cli.data.video import VideoDecodeError, read_frames

RAR_TOOLS = (["unrar", "x", "-o+", "-inul"], ["7z", "x", "-y", "-bd"], ["bsdtar", "-xf"])


def unpack(archive: Path, into: Path) -> None:
    """Extracts a .zip / .tar(.gz) with Python, a .rar with unrar, 7z or bsdtar."""
    if not archive.is_file():
        sys.exit(f"{archive}: no such archive (download it first; see --help)")
    into.mkdir(parents=True, exist_ok=True)
    print(f"unpacking {archive.name} into {into}")
    if archive.suffix.lower() != ".rar":
        shutil.unpack_archive(str(archive), str(into))
        return
    for tool in RAR_TOOLS:
        if shutil.which(tool[0]):
            target = [f"-o{into}"] if tool[0] == "7z" else ["-C", str(into)]
            command = tool + [str(archive)] + (target if tool[0] != "unrar" else [f"{into}/"])
            subprocess.run(command, check=True)
            return
    sys.exit("no RAR extractor found: install unrar, 7z (p7zip) or bsdtar (libarchive-tools)")


def check_samples(name: str, samples: list[tuple[Path, int]], decode: int) -> int:
    """Prints how many listed videos exist and how many of the first ``decode`` decode; returns
    the number of problems."""
    missing = [path for path, _ in samples if not path.is_file()]
    broken = []
    for path, _ in [s for s in samples if s[0].is_file()][:decode]:
        try:
            read_frames(path, lambda info: [0, info.frames // 2, info.frames - 1], "pyav")
        except VideoDecodeError as err:
            broken.append(str(err))
    print(
        f"{name}: {len(samples)} listed, {len(missing)} missing, {len(broken)} of the first "
        f"{min(decode, len(samples) - len(missing))} do not decode"
    )
    for problem in [str(p) for p in missing[:5]] + broken[:5]:
        print(f"  {problem}")
    return len(missing) + len(broken)


def unpack_and_check(
    doc: str, unpack_all: Callable[[Path, Path], None], check: Callable[[Path, int], int]
) -> None:
    """The command line of an archive-based preparation script: unpack the archives found in
    ``--archives`` into ``--out`` (unless ``--check-only``), then check the layout; exits 1 if
    the check found problems."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archives", type=Path, help="folder holding the downloaded archives")
    parser.add_argument("--out", type=Path, required=True, help="where the layout goes")
    parser.add_argument("--check-only", action="store_true", help="check, do not unpack")
    parser.add_argument("--decode", type=int, default=50, help="videos per split to decode")
    args = parser.parse_args()
    if not args.check_only:
        if args.archives is None:
            parser.error("--archives is required unless --check-only")
        unpack_all(args.archives, args.out)
    sys.exit(1 if check(args.out, args.decode) else 0)
