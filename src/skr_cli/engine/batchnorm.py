"""Re-estimating batch-norm statistics after channel removal, with no gradient step."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

Calibration = Iterable[tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Calibration) -> int:
    """Replaces every batch norm's running mean and variance by their plain average over
    ``batches`` of clips (B, C, T, H, W); weights and biases are untouched.

    Removal leaves the surviving layers' statistics describing inputs that no longer exist;
    recomputing them separates "the heuristic removed what mattered" from "the statistics are
    stale". Returns the number of clips seen; the model is left in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    seen = 0
    try:
        for clips, _labels in batches:
            model(clips)
            seen += len(clips)
    finally:
        for norm, momentum in zip(norms, saved, strict=True):
            norm.momentum = momentum
        model.eval()
    if seen == 0:
        raise ValueError("batch-norm recalibration needs at least one batch")
    return seen
