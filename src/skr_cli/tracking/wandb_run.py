"""Weights & Biases logging: offline by default (the run lands in the output folder)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import wandb

MODES = ("offline", "online", "disabled")


@contextmanager
def wandb_run(
    *,
    mode: str,
    project: str,
    group: str | None,
    name: str,
    tags: list[str],
    config: dict[str, Any],
    out_dir: Path,
) -> Iterator[Any]:
    """Starts a wandb run that is always finished, with a non-zero exit code on error.

    In offline mode the run is written under ``out_dir/wandb`` for a later ``wandb sync``.
    """
    run = wandb.init(
        mode=mode,
        project=project,
        group=group,
        name=name,
        tags=tags,
        config=config,
        dir=str(out_dir),
        settings=wandb.Settings(console="off", quiet=True),
    )
    exit_code = 1
    try:
        yield run
        exit_code = 0
    finally:
        run.finish(exit_code=exit_code)
