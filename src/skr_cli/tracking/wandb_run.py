"""Weights & Biases logging: offline by default (the run lands in the output folder).

Online mode never blocks a run longer than ``timeout`` seconds and never loses it: when
``wandb.init`` fails (no network, an unreachable server, a bad or missing key) the run is logged
offline into the output folder instead, with one warning line (upload it later with
``wandb sync``). A ``disabled`` run logs nothing and does not import wandb at all (it costs two
seconds at start-up), which is what every tracker call then reaches.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skr_cli.engine.distributed import is_main


class DisabledRun:
    """What a ``disabled`` run hands out: the calls a wandb run takes, doing nothing."""

    def __init__(self) -> None:
        self.summary: dict[str, Any] = {}

    def log(self, data: dict[str, Any]) -> None:
        """Drops ``data``."""

    def finish(self, exit_code: int = 0) -> None:
        """Nothing to finish."""


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
    timeout: float = 30.0,
) -> Iterator[Any]:
    """Starts a wandb run that is always finished, with a non-zero exit code on error.

    In offline mode the run is written under ``out_dir/wandb`` for a later ``wandb sync``.

    Args:
        mode: ``offline``, ``online`` or ``disabled``.
        project: the wandb project.
        group: the group gathering a sweep's runs, or None.
        name: the run's display name.
        tags: the run's tags.
        config: the resolved config, as plain data.
        out_dir: the run's output folder (wandb writes into ``out_dir/wandb``).
        timeout: seconds ``wandb.init`` may take in online mode before the run goes offline.
    """
    if not is_main():  # under torchrun only rank 0 logs
        mode = "disabled"
    if mode == "disabled":
        yield DisabledRun()
        return
    import wandb  # here: only a run that logs pays for the import

    options = dict(project=project, group=group, name=name, tags=tags, config=config)
    options |= dict(dir=str(out_dir))
    settings = wandb.Settings(console="off", quiet=True, init_timeout=timeout)
    try:
        run = wandb.init(mode=mode, settings=settings, **options)
    except Exception as err:  # noqa: BLE001 - whatever stops wandb, the run goes on offline
        if mode != "online":
            raise
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(
            f"skr-run: warning: wandb online failed ({reason}); logging offline into "
            f"{out_dir / 'wandb'} (upload it later with `wandb sync`)",
            file=sys.stderr,
            flush=True,
        )
        run = wandb.init(mode="offline", settings=settings, **options)
    exit_code = 1
    try:
        yield run
        exit_code = 0
    finally:
        run.finish(exit_code=exit_code)
