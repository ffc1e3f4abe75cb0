"""Running calibration batches through a model without changing it: hooks, modes, accumulators."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from skr_cli.engine.distributed import all_reduce_sum, share
from skr_cli.engine.modes import eval_mode, removing
from skr_cli.heuristics.base import CalibBatch
from skr_cli.pruning.layers import PrunableLayer

# A forward hook's signature: (module, inputs, output) -> None.
Hook = Callable[[nn.Module, tuple, torch.Tensor], None]
# Reduces one layer output (B, C, T, H, W) to a sum over its B·T·H·W positions (any shape).
Statistic = Callable[[torch.Tensor], torch.Tensor]


@contextmanager
def scoring_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside (batch-norm statistics stay frozen); on exit the former train/eval mode
    comes back and every gradient is cleared (set to None)."""
    with eval_mode(model):
        try:
            yield
        finally:
            model.zero_grad(set_to_none=True)


@contextmanager
def output_hooks(
    layers: dict[str, PrunableLayer], make_hook: Callable[[str], Hook]
) -> Iterator[None]:
    """A forward hook ``make_hook(name)`` on every ``layer.output`` inside; all removed on exit."""
    with removing(layer.output.register_forward_hook(make_hook(n)) for n, layer in layers.items()):
        yield


def accumulate_outputs(
    heuristic: str,
    model: nn.Module,
    layers: dict[str, PrunableLayer],
    batches: list[CalibBatch],
    statistic: Statistic,
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Sums ``statistic`` of every layer's activation over all batches, with no gradient.

    Only the running sums are kept, never the activations of earlier batches. Under torchrun
    each rank runs its share of every batch and the sums and counts are all-reduced: every rank
    returns what one process returns on the whole batches.

    Args:
        heuristic: the registry key, for error messages.
        model: the network; scored in eval mode and left as it was.
        layers: the prunable layers; their ``output`` module gives the activation (B, C, T, H, W).
        batches: calibration batches of clips (B, C, T, H, W) and labels (B,).
        statistic: maps one activation (B, C, T, H, W) to its sum over positions.

    Returns:
        For every layer, the float64 sum of ``statistic`` and the number of positions
        (B·T·H·W summed over batches) it was taken over.

    Raises:
        RuntimeError: naming a layer that no batch reached.
    """
    sums: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(layers, 0)

    def make_hook(name: str) -> Hook:
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            value = statistic(output.detach().double())
            sums[name] = sums[name] + value if name in sums else value
            counts[name] += output[:, 0].numel()

        return hook

    with scoring_mode(model), output_hooks(layers, make_hook), torch.no_grad():
        for clips, _labels in batches:
            model(share(clips))
    sums = {name: all_reduce_sum(total) for name, total in sums.items()}
    reached = all_reduce_sum(torch.tensor([counts[name] for name in layers], dtype=torch.long))
    counts = dict(zip(layers, reached.tolist(), strict=True))
    for name, count in counts.items():
        if count == 0:
            raise RuntimeError(f"{heuristic}: no activation reaches layer {name}")
    return sums, counts
