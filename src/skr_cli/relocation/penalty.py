"""R(plan): what the planned channels still pass on, the quantity the relocation phase drives to 0.

Every target but ``span`` is a sum over the planned channels, so that each channel's term has
the same scale whatever the layer's width (``span`` sums one scale-free share per layer):

- ``bn``: ‖γ_S‖² + ‖β_S‖², the planned channels' batch-norm scale and shift (with both at 0
  the post-ReLU activation is exactly 0, so removal is lossless);
- ``weights``: the squared norm of the planned channels' own filters and of their outgoing
  weights in every consumer (each branch reading an Inception concatenation, the classifier);
- ``activation``: the planned channels' mean squared activation over batch, time and space
  (read by a forward hook on the layer's output module while the phase trains);
- ``all``: the sum of the three;
- ``span``: per planned layer, the share of its channels' activations at a consumer that the
  kept channels' activations leave unexplained by least squares (``span.py``): 0 makes
  compensation at removal exact; summed over the planned layers.

``target`` is one of these names or a list of them, whose terms are summed (each once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from skr_cli.choices import TARGETS
from skr_cli.pruning.layers import PrunableLayer
from skr_cli.pruning.plan import Plan
from skr_cli.relocation.consumers import Consumer
from skr_cli.relocation.span import SpanPenalty

ALL = ("bn", "weights", "activation")  # what ``all`` stands for
PARAMETER_TERMS = ("bn", "weights")  # the terms that depend on parameters only


def target_terms(target: str | Sequence[str]) -> frozenset[str]:
    """The terms a ``relocation.target`` sums: a name of ``TARGETS`` or a non-empty list of them
    (``all`` stands for bn, weights and activation).

    Raises:
        ValueError: on an unknown name or an empty list.
    """
    names = [target] if isinstance(target, str) else list(target)
    if not names or any(name not in TARGETS for name in names):
        allowed = " | ".join(TARGETS)
        raise ValueError(f"relocation.target={target}: {allowed}, or a non-empty list of them")
    return frozenset(term for name in names for term in (ALL if name == "all" else (name,)))


class Penalty:
    """R(plan) for a target; call it after the forward pass of the step it penalises."""

    def __init__(
        self,
        layers: dict[str, PrunableLayer],
        plan: Plan,
        consumers: dict[str, list[Consumer]],
        target: str | Sequence[str],
        span: SpanPenalty | None = None,
    ) -> None:
        """
        Args:
            layers: the model's prunable layers by name.
            plan: layer name → indices of its planned channels.
            consumers: layer name → the layers reading its planned channels (``weights``).
            target: a name of ``TARGETS`` or a list of them.
            span: the ``span`` term (built from the same consumers), when the target has it.

        Raises:
            ValueError: on an unknown target, ``bn`` on a layer with no batch norm, or a
                ``span`` term missing from a target with it (or given to one without).
        """
        self.terms = target_terms(target)
        if ("span" in self.terms) != (span is not None):
            raise ValueError(f"relocation.target={target}: a span term goes with span only")
        self.span = span
        self.planned = {
            name: (layers[name], torch.tensor(idx)) for name, idx in plan.items() if idx
        }
        self.consumers = consumers
        self.activations: list[torch.Tensor] = []  # filled by the hooks during a forward pass
        if "bn" in self.terms:
            missing = [name for name, (layer, _) in self.planned.items() if layer.bn is None]
            if missing:
                raise ValueError(f"relocation.target={target}: {missing[0]} has no batch norm")

    def __call__(self, *, parameters: bool = True) -> torch.Tensor:
        """R of the current parameters and of the last forward pass (``activation``, ``span``).

        Args:
            parameters: include the parameter terms (``bn``, ``weights``); False leaves only the
                data terms, for when the parameter terms are applied by ``prox``.
        """
        in_params = parameters and not self.terms.isdisjoint(PARAMETER_TERMS)
        terms = [self.parameter_terms()] if in_params else []
        if "activation" in self.terms and self.activations:
            terms.append(torch.stack(self.activations).sum())
        self.activations = []
        spanned = self.span.take() if self.span is not None else None
        if spanned is not None:
            terms.append(spanned)
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def parameter_terms(self) -> torch.Tensor:
        """The terms of R that depend on parameters only (``bn``, ``weights``)."""
        terms = []
        if "bn" in self.terms:
            terms.append(self.bn())
        if "weights" in self.terms:
            terms.append(self.weights())
        return torch.stack(terms).sum() if terms else torch.zeros(())

    @torch.no_grad()
    def prox(self, step: float) -> None:
        """The proximal step of ``step``·(parameter terms of R): every planned entry they
        penalise is divided by 1 + 2·step (the exact minimiser of step·‖p‖² + ½‖p − p₀‖²)."""
        factor = 1.0 / (1.0 + 2.0 * step)
        if "bn" in self.terms:
            for layer, idx in self.planned.values():
                for param in (layer.bn.weight, layer.bn.bias):
                    param[idx] = param[idx] * factor
        if "weights" in self.terms:
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
        """Records the data terms on every forward pass with gradients enabled, while the
        context is open: the planned channels' mean squared activation (``activation``) and
        their residual shares (``span``)."""
        with ExitStack() as stack:
            if self.span is not None:
                stack.enter_context(self.span.hooks())
            if "activation" in self.terms:
                stack.enter_context(self._activation_hooks())
            yield

    @contextmanager
    def _activation_hooks(self) -> Iterator[None]:
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
