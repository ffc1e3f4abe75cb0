"""R(plan): what the planned channels still pass on, the quantity the relocation phase drives to 0.

Every target is a sum over the planned channels, so that each channel's term has the same scale
whatever the layer's width:

- ``bn``: ‖γ_S‖² + ‖β_S‖², the planned channels' batch-norm scale and shift (with both at 0
  the post-ReLU activation is exactly 0, so removal is lossless);
- ``weights``: the squared norm of the planned channels' own filters and of their outgoing
  weights in every consumer (each branch reading an Inception concatenation, the classifier);
- ``activation``: the planned channels' mean squared activation over batch, time and space
  (read by a forward hook on the layer's output module while the phase trains);
- ``all``: the sum of the three.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from skr_cli.pruning.layers import PrunableLayer
from skr_cli.pruning.plan import Plan
from skr_cli.relocation.consumers import Consumer

TARGETS = ("bn", "weights", "activation", "all")


class Penalty:
    """R(plan) for one target; call it after the forward pass of the step it penalises."""

    def __init__(
        self,
        layers: dict[str, PrunableLayer],
        plan: Plan,
        consumers: dict[str, list[Consumer]],
        target: str,
    ) -> None:
        """
        Args:
            layers: the model's prunable layers by name.
            plan: layer name → indices of its planned channels.
            consumers: layer name → the layers reading its planned channels (``weights``).
            target: one of ``TARGETS``.

        Raises:
            ValueError: on an unknown target, or ``bn`` on a layer with no batch norm.
        """
        if target not in TARGETS:
            raise ValueError(f"relocation.target={target}: one of {' | '.join(TARGETS)}")
        self.target = target
        self.planned = {
            name: (layers[name], torch.tensor(idx)) for name, idx in plan.items() if idx
        }
        self.consumers = consumers
        self.activations: list[torch.Tensor] = []  # filled by the hooks during a forward pass
        if target in ("bn", "all"):
            missing = [name for name, (layer, _) in self.planned.items() if layer.bn is None]
            if missing:
                raise ValueError(f"relocation.target={target}: {missing[0]} has no batch norm")

    def __call__(self, *, parameters: bool = True) -> torch.Tensor:
        """R of the current parameters and of the last forward pass (``activation``).

        Args:
            parameters: include the parameter terms (``bn``, ``weights``); False leaves only the
                activation term, for when the parameter terms are applied by ``prox``.
        """
        terms = [self.parameter_terms()] if parameters and self.target != "activation" else []
        if self.target in ("activation", "all") and self.activations:
            terms.append(torch.stack(self.activations).sum())
        self.activations = []
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def parameter_terms(self) -> torch.Tensor:
        """The terms of R that depend on parameters only (``bn``, ``weights``)."""
        terms = []
        if self.target in ("bn", "all"):
            terms.append(self.bn())
        if self.target in ("weights", "all"):
            terms.append(self.weights())
        return torch.stack(terms).sum() if terms else torch.zeros(())

    @torch.no_grad()
    def prox(self, step: float) -> None:
        """The proximal step of ``step``·(parameter terms of R): every planned entry they
        penalise is divided by 1 + 2·step (the exact minimiser of step·‖p‖² + ½‖p − p₀‖²)."""
        factor = 1.0 / (1.0 + 2.0 * step)
        if self.target in ("bn", "all"):
            for layer, idx in self.planned.values():
                for param in (layer.bn.weight, layer.bn.bias):
                    param[idx] = param[idx] * factor
        if self.target in ("weights", "all"):
            for name, (layer, idx) in self.planned.items():
                layer.conv.weight[idx] = layer.conv.weight[idx] * factor
                for consumer in self.consumers.get(name, []):
                    cols = list(consumer.inputs)
                    consumer.module.weight[:, cols] = consumer.module.weight[:, cols] * factor

    def bn(self) -> torch.Tensor:
        """Σ ‖γ_S‖² + ‖β_S‖² over the planned layers."""
        terms = []
        for layer, idx in self.planned.values():
            bn = layer.bn
            terms += [bn.weight[idx].square().sum(), bn.bias[idx].square().sum()]
        return torch.stack(terms).sum()

    def weights(self) -> torch.Tensor:
        """Σ of the squared planned filters and of the consumers' weights that read them."""
        terms = [layer.conv.weight[idx].square().sum() for layer, idx in self.planned.values()]
        for name in self.planned:
            for consumer in self.consumers.get(name, []):
                read = consumer.module.weight[:, list(consumer.inputs)]  # (O, |S|, ...)
                terms.append(read.square().sum())
        return torch.stack(terms).sum()

    @contextmanager
    def hooks(self) -> Iterator[None]:
        """Records the planned channels' mean squared activation on every forward pass with
        gradients enabled, while the context is open (``activation`` and ``all`` only)."""
        if self.target not in ("activation", "all"):
            yield
            return
        handles = [
            layer.output.register_forward_hook(self._recorder(idx))
            for layer, idx in self.planned.values()
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            self.activations = []

    def _recorder(self, idx: torch.Tensor) -> Callable[[nn.Module, tuple, torch.Tensor], None]:
        """A forward hook adding the channels ``idx``'s term to ``activations``."""

        def record(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            if torch.is_grad_enabled():
                # output (B, C, T, H, W) → per planned channel mean over B, T, H, W, summed
                dims = [0, *range(2, output.dim())]
                self.activations.append(output[:, idx].square().mean(dim=dims).sum())

        return record
