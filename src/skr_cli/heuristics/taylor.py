"""First-order Taylor expansion of the loss on activations (Molchanov et al., 2016)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from skr_cli.heuristics.base import CalibBatch, Heuristic, register_heuristic
from skr_cli.pruning.layers import PrunableLayer


@register_heuristic("taylor")
class Taylor(Heuristic):
    """|mean over T, H, W of activation × gradient|, averaged over clips, L2-normalised per layer.

    The activation is the channel's output after normalisation and ReLU (what removal zeroes);
    the gradient is that of the cross-entropy loss on calibration batches. The model is scored in
    eval mode (batch-norm statistics and weights are left untouched).
    """

    needs_data = True

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        sums = {name: torch.zeros(layer.channels) for name, layer in layers.items()}
        activations: dict[str, torch.Tensor] = {}

        def keep(name: str):
            def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
                output.retain_grad()
                activations[name] = output

            return hook

        handles = [layer.output.register_forward_hook(keep(n)) for n, layer in layers.items()]
        was_training = model.training
        model.eval()
        clips = 0
        try:
            for inputs, labels in batches:
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(inputs), labels).backward()
                for name, act in activations.items():
                    if act.grad is None:
                        raise RuntimeError(f"taylor: no gradient reaches layer {name}")
                    # (B, C, T, H, W) → per-clip first-order change of the loss, (B, C)
                    contribution = (act.detach() * act.grad).mean(dim=(2, 3, 4)).abs()
                    sums[name] += contribution.sum(dim=0)
                clips += len(labels)
                activations.clear()
        finally:
            for handle in handles:
                handle.remove()
            model.zero_grad(set_to_none=True)
            model.train(was_training)
        if clips == 0:
            raise ValueError("taylor needs at least one calibration batch (prune.calib_batches)")
        return {name: _l2_normalised(total / clips) for name, total in sums.items()}


def _l2_normalised(scores: torch.Tensor) -> torch.Tensor:
    norm = scores.norm()
    return scores / norm if norm > 0 else scores
