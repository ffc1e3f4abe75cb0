"""Finding listed files on disk when a list and the disk disagree on letter case."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=4096)
def listing(folder: Path) -> dict[str, str]:
    """Lower-cased name -> actual name of every entry of ``folder`` (empty if it is missing)."""
    if not folder.is_dir():
        return {}
    return {entry.name.lower(): entry.name for entry in folder.iterdir()}


def find(root: Path, relative: str) -> Path:
    """``root / relative``, matching each part case-insensitively when the exact path is missing.

    Official lists do not always spell names the way the archives do (UCF101's folder
    ``HandstandPushups`` holds ``v_HandStandPushups_*`` files). A file found nowhere keeps the
    listed spelling: reading it fails later, and the run skips and counts it.
    """
    exact = root / relative
    if exact.exists():
        return exact
    path = root
    for part in Path(relative).parts:
        path = path / listing(path).get(part.lower(), part)
    return path
