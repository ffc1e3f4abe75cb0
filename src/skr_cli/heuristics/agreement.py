"""How much heuristics agree: Kendall τ-b between their scores, Jaccard overlap of their plans.

Everything returned is plain Python (lists, dicts, floats, None) and can go to ``json.dump``.
A value that is undefined (τ of a layer with fewer than two channels or with constant scores) is
``None``, and means over layers skip it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import torch

from skr_cli.pruning.plan import Plan

# A symmetric matrix over heuristics, in the order of ``agreement(...)["heuristics"]``.
Matrix = list[list[float | None]]
T = TypeVar("T")


def kendall_tau(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Kendall τ-b (ties accounted for) between two heuristics' scores of one layer.

    Args:
        a: scores (C,) of one heuristic.
        b: scores (C,) of the other, for the same channels.

    Returns:
        τ-b in [-1, 1], or None when it is undefined: fewer than two channels, or one of the two
        gives every channel the same score.
    """
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"scores of shapes {tuple(a.shape)} and {tuple(b.shape)} do not pair up")
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("Kendall τ of non-finite scores")
    if len(a) < 2 or bool((a == a[0]).all()) or bool((b == b[0]).all()):
        return None
    from scipy.stats import kendalltau  # here: scipy.stats costs a second at start-up

    tau = kendalltau(a.numpy(), b.numpy(), variant="b").statistic
    return float(tau)


def jaccard(a: Collection[int], b: Collection[int]) -> float:
    """|A ∩ B| / |A ∪ B| of two sets of removed channel indices; 1.0 when both are empty."""
    union = set(a) | set(b)
    return len(set(a) & set(b)) / len(union) if union else 1.0


def plan_jaccard(plan_a: Plan, plan_b: Plan) -> dict[str, float]:
    """Per layer, the Jaccard overlap of the channels two removal plans remove.

    Raises:
        ValueError: the plans do not cover the same layers.
    """
    if set(plan_a) != set(plan_b):
        raise ValueError(f"plans cover other layers: {sorted(set(plan_a) ^ set(plan_b))}")
    return {layer: jaccard(plan_a[layer], plan_b[layer]) for layer in plan_a}


def pairwise(values: Mapping[str, T], measure: Callable[[T, T], float | None]) -> Matrix:
    """The symmetric matrix of ``measure`` over every pair of heuristics' values (diagonal too).

    Args:
        values: heuristic name → its value for one layer (scores or removed indices).
        measure: the agreement of two values.
    """
    names = list(values)
    matrix: Matrix = [[None] * len(names) for _ in names]
    for i, first in enumerate(names):
        for j in range(i, len(names)):
            matrix[i][j] = matrix[j][i] = measure(values[first], values[names[j]])
    return matrix


def mean_over_layers(per_layer: Mapping[str, Matrix]) -> Matrix:
    """Entry-wise mean of per-layer matrices, skipping None; None where no layer is defined."""
    matrices = list(per_layer.values())
    size = len(matrices[0])

    def mean(i: int, j: int) -> float | None:
        values = [m[i][j] for m in matrices if m[i][j] is not None]
        return sum(values) / len(values) if values else None

    return [[mean(i, j) for j in range(size)] for i in range(size)]


def _layers(what: str, tables: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The layer names every heuristic's table shares; raises if one covers other layers."""
    tables_list = list(tables.items())
    layers = list(tables_list[0][1])
    for name, table in tables_list[1:]:
        if set(table) != set(layers):
            raise ValueError(
                f"{what} of {name} cover other layers than those of {tables_list[0][0]}"
            )
    return layers


def agreement(
    scores: Mapping[str, Mapping[str, torch.Tensor]], plans: Mapping[str, Plan]
) -> dict[str, Any]:
    """τ-b of the scores and Jaccard of the plans, for every pair of heuristics and every layer.

    Args:
        scores: heuristic name → layer name → scores (C,).
        plans: heuristic name → layer name → removed channel indices; same heuristics and layers.

    Returns:
        ``{"heuristics": [...], "layers": [...], "kendall_tau": {"per_layer": {layer: M},
        "mean": M}, "jaccard": {"per_layer": {layer: M}, "mean": M}}``, where each M is a
        symmetric list of lists over ``heuristics`` and ``mean`` averages the layers equally.

    Raises:
        ValueError: no heuristic, other heuristics in ``scores`` than in ``plans``, or tables
            that cover other layers.
    """
    names = list(scores)
    if not names or set(names) != set(plans):
        raise ValueError(f"scores of {sorted(scores)} and plans of {sorted(plans)} do not pair up")
    layers = _layers("scores", scores)
    if set(_layers("plans", plans)) != set(layers):
        raise ValueError("the plans cover other layers than the scores")
    tau = {layer: pairwise({n: scores[n][layer] for n in names}, kendall_tau) for layer in layers}
    overlap = {layer: pairwise({n: plans[n][layer] for n in names}, jaccard) for layer in layers}
    return {
        "heuristics": names,
        "layers": layers,
        "kendall_tau": {"per_layer": tau, "mean": mean_over_layers(tau)},
        "jaccard": {"per_layer": overlap, "mean": mean_over_layers(overlap)},
    }
