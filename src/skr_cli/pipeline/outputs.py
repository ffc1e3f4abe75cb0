"""The run directory: where each phase's output lies, JSON outputs read back on a rerun instead
of computed again, and the key that keeps a rerun from resuming another config's run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from skr_cli.engine.checkpoint import write_json
from skr_cli.engine.distributed import barrier
from skr_cli.errors import UserError
from skr_cli.pipeline.runcontext import RunContext


def phase_output(ctx: RunContext, name: str) -> Path:
    return ctx.out_dir / name


def resumed(ctx: RunContext, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The JSON output ``name`` of a phase: read back when an earlier attempt wrote it, else
    computed and written (atomically) before it is returned."""
    path = phase_output(ctx, name)
    if path.exists():
        result = json.loads(path.read_text())
    else:
        result = compute()
        write_json(path, result)
    barrier()  # under torchrun: the other ranks see the file before anyone goes on
    return result


# Config keys added after finished runs were recorded, with the value that behaves as before the
# key existed: at that value a key is left out of the run key, so that a run folder finished
# before it was added is still found finished (and resumed) rather than refused as another config.
KEYS_ADDED_LATER: dict[tuple[str, ...], Any] = {
    ("relocation", "span_positions"): 4096,
    ("relocation", "distill", "finetune"): False,
    ("eval", "compile"): False,
}


def check_run_dir(cfg: DictConfig, out_dir: Path) -> None:
    """Refuses to resume into a folder that holds the outputs of a different config."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("logger", None)
    resolved.pop("progress", None)
    for (*parents, key), unchanged in KEYS_ADDED_LATER.items():
        node = resolved
        for parent in parents:
            node = node.get(parent, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and node.get(key, unchanged) == unchanged:
            node.pop(key, None)
    key = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()
    path = out_dir / "run_key.json"
    if path.exists() and json.loads(path.read_text())["key"] != key:
        raise UserError(f"{out_dir} holds a run of another config; choose a new hydra.run.dir")
    write_json(path, {"key": key})
