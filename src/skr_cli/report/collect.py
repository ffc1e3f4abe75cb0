"""Finding the runs of a sweep on disk and reading them into plain records.

A run directory is one that holds ``metrics.json`` (finished) or ``.hydra/config.yaml`` (started).
``metrics.json`` is written last and atomically, so a started run without it is unfinished or
failed; a ``metrics.json`` that does not parse or lacks a required key is listed, never fatal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# metrics.json keys every finished run must have (dotted paths).
REQUIRED = (
    "heuristic",
    "seed",
    "dataset",
    "model",
    "prune_ratio",
    "relocation_strength",
    "lowrank_weight",
    "final.top1",
)
NUMERIC = ("seed", "prune_ratio", "relocation_strength", "lowrank_weight", "final.top1")
# Settings of the relocation block of metrics.json, used when a run has no .hydra/config.yaml.
RELOCATION_SETTINGS = (
    "strength",
    "epochs",
    "schedule",
    "exp_rate",
    "target",
    "span_positions",
    "balance",
    "decoupled",
    "compensate",
    "ridge",
)
# A line of a job log that reports an error.
ERROR_LINE = re.compile(r"error|exception|traceback|killed|\bnan\b", re.IGNORECASE)
# An override that chooses a config group's option: ``relocation=skr`` (no dot in the name).
CHOICE = re.compile(r"^([a-z_]+)=([A-Za-z0-9_.-]+)$")


class ReportError(Exception):
    """A user mistake (a path that does not exist or holds no runs): one line, exit code 2."""


@dataclass(frozen=True)
class Run:
    """A finished run: its metrics, its flattened config (``{"prune.ratio": 0.5, ...}``) and the
    option chosen for each config group (``{"relocation": "skr", ...}``, where recorded)."""

    path: Path
    metrics: dict[str, Any]
    config: dict[str, Any]
    choices: dict[str, str] = field(default_factory=dict)

    @property
    def heuristic(self) -> str:
        return str(self.metrics["heuristic"])

    @property
    def seed(self) -> int:
        return int(self.metrics["seed"])

    def get(self, dotted: str) -> Any:
        """A metrics value by dotted path (``"final.top1"``), None when absent."""
        return lookup(self.metrics, dotted)

    @property
    def dense_key(self) -> str | None:
        """The key of the dense model this run pruned (``dense_cache.key``), when recorded."""
        key = self.get("dense_cache.key")
        return str(key) if key is not None else None


@dataclass(frozen=True)
class Problem:
    """A run directory that gave no usable result, and why."""

    path: Path
    kind: str  # "unfinished" (no metrics.json), "corrupt" (unreadable), "duplicate"
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "kind": self.kind, "detail": self.detail}


@dataclass
class Sweep:
    """Everything found under the paths given to ``skr-report``."""

    roots: list[Path]
    runs: list[Run] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # agreement-only runs (no pruning)


def lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    """``tree["a"]["b"]`` for ``"a.b"``; None when a level is missing or not a mapping."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists become tuples (hashable, comparable)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = tuple(_hashable(v) for v in value)
        else:
            flat[name] = value
    return flat


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    return value


def collect(paths: Iterable[Path]) -> Sweep:
    """Reads every run under ``paths``.

    Raises:
        ReportError: a path does not exist or holds no run directory, or no run finished.
    """
    roots = [Path(p) for p in paths]
    sweep = Sweep(roots=roots)
    seen: set[Path] = set()
    for root in roots:
        if not root.exists():
            raise ReportError(f"{root}: no such file or directory")
        dirs = run_dirs(root)
        if not dirs:
            raise ReportError(f"{root}: holds no runs (no metrics.json or .hydra/config.yaml)")
        for run_dir in dirs:
            if run_dir.resolve() not in seen:
                seen.add(run_dir.resolve())
                _read(run_dir, sweep)
    if not sweep.runs:
        raise ReportError(
            f"{', '.join(map(str, roots))}: no finished run "
            f"({len(sweep.problems)} unfinished, failed or unreadable)"
        )
    return sweep


def run_dirs(root: Path) -> list[Path]:
    """Run directories under ``root`` (itself included), sorted; a metrics.json file is its dir."""
    if root.is_file():
        return [root.parent] if root.name == "metrics.json" else []
    found = {p.parent for p in root.rglob("metrics.json")}
    found |= {p.parent.parent for p in root.rglob(".hydra/config.yaml")}
    return sorted(found)


def _read(run_dir: Path, sweep: Sweep) -> None:
    """Adds the run in ``run_dir`` to ``sweep.runs``, or its problem to ``sweep.problems``."""
    config, config_error = read_config(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        if config.get("agreement.only") is True and (run_dir / "agreement.json").exists():
            sweep.skipped.append(run_dir)
            return
        detail = last_error_line(run_dir) or config_error or "no metrics.json and no error logged"
        sweep.problems.append(Problem(run_dir, "unfinished", _describe(run_dir, detail)))
        return
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        sweep.problems.append(Problem(run_dir, "corrupt", f"metrics.json: {err}"))
        return
    missing = [k for k in REQUIRED if not isinstance(metrics, dict) or lookup(metrics, k) is None]
    if missing:
        detail = f"metrics.json lacks {', '.join(missing)}"
        sweep.problems.append(Problem(run_dir, "corrupt", detail))
        return
    wrong = [k for k in NUMERIC if not _is_number(lookup(metrics, k))]
    if wrong:
        detail = f"metrics.json: {', '.join(wrong)} not a number"
        sweep.problems.append(Problem(run_dir, "corrupt", detail))
        return
    if not config:  # no resolved config: the relocation block still names its settings
        block = metrics.get("relocation") or {}
        config = {f"relocation.{k}": _hashable(block[k]) for k in RELOCATION_SETTINGS if k in block}
        config.update(flatten(block.get("distill") or {}, "relocation.distill."))
    sweep.runs.append(Run(run_dir, metrics, config, read_choices(run_dir)))


def read_config(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The flattened ``.hydra/config.yaml`` (interpolations left as written), or an error."""
    path = run_dir / ".hydra" / "config.yaml"
    if not path.exists():
        return {}, None
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        return {}, f".hydra/config.yaml: {str(err).splitlines()[0]}"
    return (flatten(tree), None) if isinstance(tree, dict) else ({}, ".hydra/config.yaml: empty")


def read_choices(run_dir: Path) -> dict[str, str]:
    """Config group → chosen option: Hydra's ``runtime.choices`` in ``.hydra/hydra.yaml``, or
    else the group overrides in ``.hydra/overrides.yaml`` or in the run folder's name."""
    try:
        tree = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())
        choices = tree["hydra"]["runtime"]["choices"]
        return {str(k): str(v) for k, v in choices.items() if "/" not in str(k) and v is not None}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        pass
    try:
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        overrides = None
    if not isinstance(overrides, list):
        overrides = run_dir.name.split(",")
    return choices_from_overrides(map(str, overrides))


def choices_from_overrides(overrides: Iterable[str]) -> dict[str, str]:
    """``["relocation=skr", "prune.ratio=0.5", "seed=0"]`` → ``{"relocation": "skr", "seed":
    "0"}``: the overrides that may choose a config group's option."""
    found = (CHOICE.match(o.strip()) for o in overrides)
    return {m.group(1): m.group(2) for m in found if m}


def last_error_line(run_dir: Path) -> str | None:
    """The last line of the run's logs (``*.log``, ``*.err``) that reports an error."""
    found = None
    for log in sorted([*run_dir.glob("*.log"), *run_dir.glob("*.err")]):
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if ERROR_LINE.search(line):
                found = f"{log.name}: {line.strip()}"
    return found


def _describe(run_dir: Path, detail: str) -> str:
    """``detail`` prefixed with the run's overrides (``.hydra/overrides.yaml``), when readable."""
    try:
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return detail
    if isinstance(overrides, list) and overrides:
        return f"[{' '.join(map(str, overrides))}] {detail}"
    return detail


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
