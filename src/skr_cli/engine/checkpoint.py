"""Atomic writes and safe loading of phase outputs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, then renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Writes JSON atomically: readers see the old file or the whole new one, never a part."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Saves tensors and plain data (no pickled objects) atomically."""
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def load_state(path: Path) -> dict[str, Any]:
    """Loads a file written by :func:`save_state`; refuses anything that carries code."""
    return torch.load(path, map_location="cpu", weights_only=True)
