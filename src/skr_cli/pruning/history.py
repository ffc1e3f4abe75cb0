"""Pruned models that reload: the dense architecture plus the removal plans, replayed in order.

A pruned network's ``state_dict`` does not fit the class it was built from (every pruned layer
is thinner), so a pruned checkpoint carries its pruning history: the plans of every step and the
clip shape the graph was traced with. Rebuilding the dense model and replaying the plans gives
the pruned architecture back, and the weights then load unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from skr_cli.pruning.count import count_macs
from skr_cli.pruning.plan import Plan
from skr_cli.pruning.remove import remove_channels


def apply_plans(model: nn.Module, plans: list[Plan], example: torch.Tensor) -> nn.Module:
    """Removes the channels of each plan in turn (each indexes the model left by the previous)."""
    for plan in plans:
        remove_channels(model, plan, example)
    return model


def macs_after(model: nn.Module, plan: Plan, example: torch.Tensor) -> int:
    """MACs of a copy of ``model`` with ``plan`` removed (``model`` is left untouched)."""
    return count_macs(remove_channels(copy.deepcopy(model), plan, example), example)


def pruning_history(plans: list[Plan], clip: list[int]) -> dict[str, Any]:
    """What a pruned checkpoint holds beside the weights: the plans, in the order they were
    applied, and the clip shape (C, T, H, W) the graph is traced with to replay them."""
    return {"plans": plans, "clip": list(clip)}


def pruned_checkpoint(model: nn.Module, plans: list[Plan], clip: list[int]) -> dict[str, Any]:
    """A pruned checkpoint: the weights and their :func:`pruning_history`."""
    return {"model": model.state_dict()} | pruning_history(plans, clip)


def load_pruned(dense: nn.Module, checkpoint: dict[str, Any]) -> nn.Module:
    """Turns a freshly built dense model into the pruned one a checkpoint describes, in place.

    Args:
        dense: the unpruned architecture the checkpoint's run started from (any weights).
        checkpoint: a dict from :func:`pruned_checkpoint`, e.g. ``load_state("final.pt")``.

    Returns:
        ``dense``, pruned by the recorded plans and holding the checkpoint's weights.
    """
    missing = {"model", "plans", "clip"} - set(checkpoint)
    if missing:
        raise KeyError(f"not a pruned checkpoint: it lacks {sorted(missing)}")
    example = torch.zeros(1, *checkpoint["clip"])
    apply_plans(dense, checkpoint["plans"], example)
    dense.load_state_dict(checkpoint["model"])
    return dense
