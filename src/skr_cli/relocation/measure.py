"""How complete relocation was: the planned channels' energy left, and the loss jump at removal."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from skr_cli.engine.modes import eval_mode
from skr_cli.pruning.layers import PrunableLayer
from skr_cli.pruning.plan import Plan


@torch.no_grad()
def energy_share(layers: dict[str, PrunableLayer], plan: Plan) -> dict[str, float]:
    """The planned channels' share of each layer's batch-norm scale, ‖γ_S‖ / ‖γ‖.

    Args:
        layers: the model's prunable layers by name (those without batch norm are skipped).
        plan: layer name → indices of its planned channels.

    Returns:
        ``{"layers": {name: share}, "mean": mean over layers, "total": ‖γ_S‖ / ‖γ‖ over every
        planned layer at once}``; shares are 0 where nothing is planned.
    """
    shares, planned_sq, all_sq = {}, 0.0, 0.0
    for name, idx in plan.items():
        bn = layers[name].bn
        if bn is None or not idx:
            continue
        gamma = bn.weight.detach().double()
        part, whole = gamma[list(idx)].square().sum().item(), gamma.square().sum().item()
        shares[name] = (part / whole) ** 0.5 if whole > 0 else 0.0
        planned_sq, all_sq = planned_sq + part, all_sq + whole
    mean = sum(shares.values()) / len(shares) if shares else 0.0
    total = (planned_sq / all_sq) ** 0.5 if all_sq > 0 else 0.0
    return {"layers": shares, "mean": mean, "total": total}


@torch.no_grad()
def calibration_loss(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> float:
    """Mean cross-entropy of ``model`` in eval mode over fixed batches of (clips (B, C, T, H, W),
    labels (B,)): measured right before and right after a removal, its difference is the loss
    jump at removal."""
    total, count = 0.0, 0
    with eval_mode(model):
        for clips, labels in batches:
            total += F.cross_entropy(model(clips), labels, reduction="sum").item()
            count += len(labels)
    if count == 0:
        raise ValueError("the loss at removal needs at least one calibration clip")
    return total / count
