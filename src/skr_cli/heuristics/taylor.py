"""First-order Taylor expansions of the loss: on activations (Molchanov et al. 2016) and on
parameters (Molchanov et al. 2019). Gradients are those of the cross-entropy on calibration
batches, with the model in eval mode; the model's weights and statistics are left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from skr_cli.engine.distributed import all_reduce_mean, all_reduce_sum, share
from skr_cli.heuristics.base import (
    CalibBatch,
    Heuristic,
    checked,
    register_heuristic,
    require_batches,
)
from skr_cli.heuristics.calibration import Hook, output_hooks, scoring_mode
from skr_cli.pruning.layers import PrunableLayer


def loss_backward(model: nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> None:
    """Fresh gradients of the mean cross-entropy of one batch, clips (B, C, T, H, W)."""
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(clips), labels).backward()


def activation_terms(name: str, activation: torch.Tensor | None) -> torch.Tensor:
    """|mean over T, H, W of activation × its gradient| per clip: (B, C, T, H, W) → (B, C)."""
    if activation is None or activation.grad is None:
        raise RuntimeError(f"taylor: no gradient reaches layer {name}")
    return (activation.detach() * activation.grad).mean(dim=(2, 3, 4)).abs()


def parameter_terms(name: str, parameters: list[torch.Tensor]) -> torch.Tensor:
    """Σ over each output channel's parameters of w · ∂L/∂w: tensors (C, ...) → (C,)."""
    total = 0
    for parameter in parameters:
        if parameter.grad is None:
            raise RuntimeError(f"taylor_weight: no gradient reaches layer {name}")
        total = total + (parameter.detach() * parameter.grad).reshape(len(parameter), -1).sum(dim=1)
    return total


def zeros(layers: dict[str, PrunableLayer]) -> dict[str, torch.Tensor]:
    """A float64 accumulator (C,) per layer, on the layer's device (no transfer per batch)."""
    return {
        name: torch.zeros(layer.channels, dtype=torch.float64, device=layer.conv.weight.device)
        for name, layer in layers.items()
    }


def retaining(activations: dict[str, torch.Tensor]) -> Callable[[str], Hook]:
    """Hooks that keep each layer's latest output in ``activations``, its gradient retained."""

    def make_hook(name: str) -> Hook:
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            if output.requires_grad:
                output.retain_grad()
            activations[name] = output

        return hook

    return make_hook


def l2_normalised(scores: torch.Tensor) -> torch.Tensor:
    """Scores (C,) divided by their L2 norm (left as they are when all are zero)."""
    norm = scores.norm()
    return scores / norm if norm > 0 else scores


@register_heuristic("taylor")
class Taylor(Heuristic):
    """|mean over T, H, W of activation × gradient|, averaged over clips, L2-normalised per layer.

    The activation is the channel's output after normalisation and ReLU (what removal zeroes);
    the gradient is that of the cross-entropy loss on calibration batches. A channel whose removal
    changes the loss little to first order scores low and is removed first.
    """

    needs_data = True

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        batches = require_batches(self.name, batches)
        sums, clips = zeros(layers), 0
        activations: dict[str, torch.Tensor] = {}
        with scoring_mode(model), output_hooks(layers, retaining(activations)):
            for inputs, labels in batches:  # under torchrun: this rank's share of each batch
                activations.clear()
                loss_backward(model, share(inputs), share(labels))
                for name in layers:
                    sums[name] += activation_terms(name, activations.get(name)).sum(dim=0)
                clips += len(share(labels))
        sums = {name: all_reduce_sum(total) for name, total in sums.items()}
        clips = int(all_reduce_sum(torch.tensor(clips)))
        return checked(self.name, layers, {n: l2_normalised(s / clips) for n, s in sums.items()})


@register_heuristic("taylor_weight")
class TaylorWeight(Heuristic):
    """(Σ over a channel's parameters of w · ∂L/∂w)², averaged over calibration batches.

    The group form of Molchanov et al. (2019, "Importance Estimation for Neural Network
    Pruning"): the squared first-order change of the loss when the whole group is removed, with
    the gradient of each batch's mean loss, averaged over batches. A low score = remove first.

    Args:
        parameters: which parameters form a channel's group. ``weight``: its conv filter
            (C_in · kT · kH · kW weights). ``bn``: its batch norm's γ and β, the paper's
            "Taylor-FO-BN" variant, equal to the gate after the normalisation, γ·∂L/∂γ + β·∂L/∂β.
    """

    needs_data = True
    PARAMETERS = ("weight", "bn")

    def __init__(self, parameters: str) -> None:
        if parameters not in self.PARAMETERS:
            raise ValueError(
                f"heuristic.parameters={parameters} is not allowed: {' | '.join(self.PARAMETERS)}"
            )
        self.parameters = parameters

    def group(self, name: str, layer: PrunableLayer) -> list[torch.Tensor]:
        """The parameters of the layer's channels, each of shape (C, ...)."""
        if self.parameters == "weight":
            return [layer.conv.weight]
        if layer.bn is None or layer.bn.weight is None:
            raise RuntimeError(f"taylor_weight: layer {name} has no affine batch norm")
        return [layer.bn.weight, layer.bn.bias]

    def score(
        self,
        model: nn.Module,
        layers: dict[str, PrunableLayer],
        batches: Iterable[CalibBatch],
    ) -> dict[str, torch.Tensor]:
        batches = require_batches(self.name, batches)
        groups = {name: self.group(name, layer) for name, layer in layers.items()}
        sums = zeros(layers)
        with scoring_mode(model):
            for clips, labels in batches:
                loss_backward(model, share(clips), share(labels))
                for name, group in groups.items():  # the whole batch's term, then squared
                    sums[name] += all_reduce_mean(parameter_terms(name, group).double()) ** 2
        return checked(self.name, layers, {n: s / len(batches) for n, s in sums.items()})
