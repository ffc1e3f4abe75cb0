"""Where the config tree lives: shipped inside the package when installed, at the repo root in a
source checkout."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    """The folder holding ``config.yaml`` and one folder per config group."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if (candidate / "config.yaml").exists():
            return str(candidate)
    raise FileNotFoundError("skr's conf/ folder is missing from this installation")
