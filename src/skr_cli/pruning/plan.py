"""Selection: from channel scores to the plan of channels to remove."""

from __future__ import annotations

import math

import torch

# layer name → sorted indices of the output channels to remove
Plan = dict[str, list[int]]


def select_local(scores: dict[str, torch.Tensor], ratio: float) -> Plan:
    """Removes the ``floor(ratio · C)`` lowest-scoring channels of every layer (at least one stays).

    Ties are broken by channel index, so a plan is a pure function of the scores.
    """
    plan: Plan = {}
    for name, layer_scores in scores.items():
        channels = layer_scores.numel()
        count = min(math.floor(ratio * channels), channels - 1)
        order = torch.argsort(layer_scores, stable=True)
        plan[name] = sorted(order[:count].tolist())
    return plan
