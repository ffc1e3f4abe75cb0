"""Agreement between heuristics across a sweep, from the runs' saved ``plan.json`` files.

Runs that pruned the same dense model (the same ``dense_cache.key``, or else the same dataset,
model, seed, low-rank weight and pretraining settings) scored the same network, so their
first-round scores can be compared: Kendall τ-b per layer, averaged over layers, then over dense
models. The Jaccard overlap of their removal plans also needs the same prune ratio (and prune
settings). A pair of heuristics that never shares a dense model is left undefined (None).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from skr_cli.heuristics.agreement import jaccard, kendall_tau
from skr_cli.report.cells import Cell, format_value
from skr_cli.report.collect import Run

# Extra cell keys (prefixes) that change the dense model in the fallback identity.
DENSE_SETTINGS = ("dataset.", "model.", "train.", "lowrank.")
Layers = dict[str, dict[str, Any]]  # layer → {"channels", "scores", "removed"}


@dataclass
class Matrix:
    """A heuristic × heuristic mean over dense models, and how many dense models each entry has."""

    mean: list[list[float | None]]
    dense_models: list[list[int]]

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "dense_models": self.dense_models}


@dataclass
class Agreement:
    """Kendall τ of the scores, and per prune setting the Jaccard overlap of the plans."""

    heuristics: list[str]
    kendall_tau: Matrix
    jaccard: dict[str, Matrix]  # label of the prune setting ("prune.ratio=0.5") → matrix
    unreadable: list[str]  # plan.json files that could not be read

    def as_dict(self) -> dict[str, Any]:
        return {
            "heuristics": self.heuristics,
            "kendall_tau": self.kendall_tau.as_dict(),
            "jaccard": {label: m.as_dict() for label, m in self.jaccard.items()},
            "unreadable_plans": self.unreadable,
        }


def first_round(path: Path) -> Layers | None:
    """The first round of a run's plan.json, or None when it is missing or malformed."""
    try:
        plan = json.loads((path / "plan.json").read_text())
        layers = plan["rounds"][0]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError):
        return None
    ok = isinstance(layers, dict) and all(
        isinstance(v, dict) and "scores" in v and "removed" in v for v in layers.values()
    )
    return layers if ok else None


def dense_identity(run: Run, cell: Cell) -> tuple:
    """What names the dense model a run pruned."""
    if run.dense_key is not None:
        return ("dense_cache", run.dense_key)
    settings = tuple((k, repr(v)) for k, v in cell.key.extras if k.startswith(DENSE_SETTINGS))
    key = cell.key
    return (key.dataset, key.model, run.seed, key.lowrank_weight, settings)


def prune_setting(cell: Cell) -> str:
    """The label of a cell's prune ratio and other prune settings."""
    extras = [(k, v) for k, v in cell.key.extras if k.startswith("prune.")]
    parts = [("prune.ratio", cell.key.prune_ratio), *extras]
    return " ".join(f"{k}={format_value(v)}" for k, v in parts)


def sweep_agreement(cells: Sequence[Cell]) -> Agreement | None:
    """τ and Jaccard matrices over the heuristics of the sweep; None with fewer than two."""
    names = sorted({h for cell in cells for h in cell.heuristics})
    if len(names) < 2:
        return None
    # dense model → heuristic → plan (τ); (dense model, prune setting) → heuristic → plan (J)
    by_dense: dict[tuple, dict[str, Layers]] = defaultdict(dict)
    by_setting: dict[str, dict[tuple, dict[str, Layers]]] = defaultdict(lambda: defaultdict(dict))
    unreadable = []
    for cell in cells:
        for (heuristic, _), run in sorted(cell.runs.items()):
            dense = dense_identity(run, cell)
            setting = prune_setting(cell)
            if heuristic in by_dense[dense] and heuristic in by_setting[setting][dense]:
                continue  # one plan per heuristic and dense model is enough
            layers = first_round(run.path)
            if layers is None:
                unreadable.append(str(run.path / "plan.json"))
                continue
            by_dense[dense].setdefault(heuristic, layers)
            by_setting[setting][dense].setdefault(heuristic, layers)
    tau = _matrix(names, by_dense.values(), _mean_tau)
    overlap = {
        setting: _matrix(names, groups.values(), _mean_jaccard)
        for setting, groups in sorted(by_setting.items())
    }
    return Agreement(names, tau, overlap, unreadable)


def _matrix(
    names: list[str],
    groups: Any,
    measure: Callable[[Layers, Layers], float | None],
) -> Matrix:
    """Mean of ``measure`` over the groups (dense models) where both heuristics have a plan."""
    sums = [[0.0] * len(names) for _ in names]
    counts = [[0] * len(names) for _ in names]
    for plans in groups:
        for i, first in enumerate(names):
            for j, second in enumerate(names):
                if first in plans and second in plans:
                    value = measure(plans[first], plans[second])
                    if value is not None:
                        sums[i][j] += value
                        counts[i][j] += 1
    mean = [
        [sums[i][j] / counts[i][j] if counts[i][j] else None for j in range(len(names))]
        for i in range(len(names))
    ]
    return Matrix(mean, counts)


def _mean_tau(a: Layers, b: Layers) -> float | None:
    """Kendall τ-b of two plans' scores, averaged over the layers both score alike."""
    values = []
    for layer in a.keys() & b.keys():
        first, second = a[layer]["scores"], b[layer]["scores"]
        if len(first) != len(second):
            continue  # not the same channels (e.g. a factorised layer)
        tau = kendall_tau(torch.tensor(first), torch.tensor(second))
        if tau is not None:
            values.append(tau)
    return sum(values) / len(values) if values else None


def _mean_jaccard(a: Layers, b: Layers) -> float | None:
    """Jaccard overlap of two plans' removed channels, averaged over their shared layers."""
    values = [jaccard(a[layer]["removed"], b[layer]["removed"]) for layer in a.keys() & b.keys()]
    return sum(values) / len(values) if values else None
