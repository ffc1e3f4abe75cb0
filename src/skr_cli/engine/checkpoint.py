"""Atomic writes, safe loading, and the per-epoch state that lets a killed training phase resume.

Every file a run writes goes to a temporary file beside its target, is flushed to disk and then
renamed into place: a crash mid-write leaves the previous version intact. Every file a run reads
is loaded with ``weights_only=True``: tensors and plain data only, no pickled code ever runs.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from skr_cli.engine.distributed import is_main
from skr_cli.engine.faults import fault_point


class CheckpointError(Exception):
    """A file that cannot be written (no space, read-only folder) or that is refused on loading
    (pickled code, damage); the message is one line naming the file."""


def atomic_write_bytes(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, then renames it into place.

    Only rank 0 writes in a distributed run (the other ranks return at once).

    Raises:
        CheckpointError: the folder or the file cannot be written (``cannot write <path>:
            <reason>``); ``path`` keeps its previous content.
    """
    if not is_main():
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        fault_point(f"write:{path.name}")
        os.replace(tmp, path)
    except OSError as err:
        raise CheckpointError(f"cannot write {path}: {err.strerror or err}") from err
    finally:
        if tmp is not None and Path(tmp).exists():
            Path(tmp).unlink(missing_ok=True)


def write_json(path: Path, data: Any) -> None:
    """Writes JSON atomically: readers see the old file or the whole new one, never a part."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Saves tensors and plain data (no pickled objects) atomically.

    The state is serialised in memory first and written in one plain write: torch's zip writer
    reports a short write (a full disk) as an opaque RuntimeError, a plain write as an OSError.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, lambda f: f.write(buffer.getbuffer()))


def safe_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with every failure as one line.

    Raises:
        CheckpointError: ``<path>: refused: it carries pickled code (...)`` for a file holding
            anything but tensors and plain data (nothing in it runs), or ``<path>: cannot be
            read: ...`` for a damaged or truncated file.
    """
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            raise CheckpointError(
                f"{path}: refused: it carries pickled code ({found.group(1)}); nothing in it ran "
                "(only tensors and plain data are loaded)"
            ) from err
        raise CheckpointError(
            f"{path}: refused: not a file of tensors (unsupported pickle content); nothing in it "
            "ran (only tensors and plain data are loaded)"
        ) from err
    except (RuntimeError, EOFError, ValueError) as err:
        text = str(err).strip()
        first = text.splitlines()[0].split(". ")[0] if text else type(err).__name__
        raise CheckpointError(f"{path}: cannot be read (damaged or truncated?): {first}") from err


def load_state(path: Path) -> dict[str, Any]:
    """Loads a file written by :func:`save_state`; refuses anything that carries code."""
    state = safe_load(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: cannot be read: expected a dict, found {type(state)}")
    return state


def partial_path(output: Path) -> Path:
    """Where a training phase keeps its state between epochs: beside its output, whatever folder
    that is in (``dense.pt`` → ``dense.pt.partial``)."""
    return output.with_name(output.name + ".partial")


class Stateful(Protocol):
    """An object whose state a resumed phase restores (a proximal step's counters)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class Progress:
    """Where a resumed phase starts: epochs done, optimiser steps taken, losses so far."""

    epoch: int = 0
    step: int = 0
    losses: list[float] = field(default_factory=list)


@dataclass
class PhaseCheckpoint:
    """A training phase's state after each epoch, so that a killed phase resumes from its last
    finished epoch and ends with the same weights as an uninterrupted one.

    Saved (atomically) at the end of every epoch: the model, optimiser and scheduler states, the
    epoch and step counters, the losses, every RNG (Python, NumPy, torch CPU and CUDA), the data
    order's generator, and ``carried``: lists filled while training (restored in place) and
    objects with ``state_dict``/``load_state_dict``.

    Args:
        path: the partial file (see :func:`partial_path`).
        generator: the sampler's generator (the data order and the clips' seeds).
        carried: named lists or :class:`Stateful` objects.

    Only rank 0 writes it (see :func:`atomic_write_bytes`); every rank reads it.
    """

    path: Path
    generator: torch.Generator | None = None
    carried: dict[str, Any] = field(default_factory=dict)

    def save(
        self,
        progress: Progress,
        model: nn.Module,
        optimizer: Optimizer,
        scheduler: LRScheduler,
    ) -> None:
        """Writes the state after epoch ``progress.epoch`` over the previous one."""
        state = {
            "epoch": progress.epoch,
            "step": progress.step,
            "losses": list(progress.losses),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_states(),
            "generator": self.generator.get_state() if self.generator is not None else None,
            "carried": {name: _state_of(value) for name, value in self.carried.items()},
        }
        save_state(self.path, state)

    def restore(self, model: nn.Module, optimizer: Optimizer, scheduler: LRScheduler) -> Progress:
        """Loads the saved state into the arguments and returns where to go on from; a fresh
        :class:`Progress` when nothing was saved."""
        if not self.path.exists():
            return Progress()
        state = load_state(self.path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"])
        if self.generator is not None and state["generator"] is not None:
            self.generator.set_state(state["generator"])
        for name, value in self.carried.items():
            _restore(value, state["carried"][name])
        return Progress(state["epoch"], state["step"], list(state["losses"]))

    def discard(self) -> None:
        """Deletes the partial file once the phase's output is written."""
        if is_main():
            self.path.unlink(missing_ok=True)


def rng_states() -> dict[str, Any]:
    """Every global RNG's state as tensors and plain data (loadable with ``weights_only``)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)
    states = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restores what :func:`rng_states` returned."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _state_of(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value.state_dict()


def _restore(value: Any, state: Any) -> None:
    if isinstance(value, list):
        value[:] = state
    else:
        value.load_state_dict(state)
