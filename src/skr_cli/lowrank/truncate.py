"""Truncation: each chosen Conv3d becomes a thin Conv3d followed by a 1×1×1 Conv3d.

A conv with weight matrix W (m = C_out, n = C_in·kT·kH·kW) and SVD W = U S Vᵀ is replaced by
Conv3d(C_in → r, same kernel, stride, padding and dilation, no bias) with weight S_r^½ V_rᵀ and
Conv3d(r → C_out, 1×1×1) with weight U_r S_r^½ and the original bias, which computes the rank-r
approximation of W exactly. It saves parameters and MACs only where r·(m + n) < m·n.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from skr_cli.engine.modes import eval_mode, removing
from skr_cli.lowrank.layers import as_matrix
from skr_cli.lowrank.stats import energy_rank


def choose_rank(s: torch.Tensor, *, energy: float, rank_fraction: float | None) -> int:
    """The kept rank: ⌈rank_fraction·k⌉ when set, else the smallest holding ``energy`` of Σσ².

    Args:
        s: singular values (k,), descending.
        energy: share of Σσ² to keep, in (0, 1].
        rank_fraction: share of the full rank k to keep, in (0, 1], or None.
    """
    if rank_fraction is not None:
        return max(1, math.ceil(rank_fraction * len(s)))
    return max(1, energy_rank(s, energy))


def saves(m: int, n: int, rank: int) -> bool:
    """Whether two factors of rank ``rank`` hold fewer weights than the (m, n) matrix."""
    return rank * (m + n) < m * n


@torch.no_grad()
def factorise_conv(conv: nn.Conv3d, rank: int) -> nn.Sequential:
    """The rank-``rank`` factorisation of ``conv`` (groups = 1) as two convs in a Sequential.

    Input and output shapes are those of ``conv``: (B, C_in, T, H, W) → (B, C_out, T', H', W').
    At full rank it computes the same function up to rounding.
    """
    u, s, vh = torch.linalg.svd(as_matrix(conv), full_matrices=False)
    root = s[:rank].sqrt()
    first = nn.Conv3d(
        conv.in_channels,
        rank,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=False,
        padding_mode=conv.padding_mode,
    )
    second = nn.Conv3d(rank, conv.out_channels, 1, bias=conv.bias is not None)
    first.weight.copy_((root[:, None] * vh[:rank]).view_as(first.weight))
    second.weight.copy_((u[:, :rank] * root).view_as(second.weight))
    if conv.bias is not None:
        second.bias.copy_(conv.bias)
    return nn.Sequential(first, second).to(conv.weight.device, conv.weight.dtype)


def factorise(model: nn.Module, ranks: dict[str, int]) -> nn.Module:
    """Replaces each named Conv3d of ``model`` by its factorisation, in place; returns ``model``."""
    for name, rank in ranks.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, factorise_conv(getattr(parent, child), rank))
    return model


@torch.no_grad()
def output_positions(
    model: nn.Module, convs: dict[str, nn.Conv3d], clip: torch.Tensor
) -> dict[str, int]:
    """Output positions T'·H'·W' of each conv for one forward pass on ``clip`` (1, C, T, H, W)."""
    positions: dict[str, int] = {}
    hooks = [
        conv.register_forward_hook(
            lambda _m, _i, out, name=name: positions.__setitem__(name, out[0, 0].numel())
        )
        for name, conv in convs.items()
    ]
    with removing(hooks), eval_mode(model):
        model(clip)
    return positions


def truncation_plan(
    convs: dict[str, nn.Conv3d],
    spectra: dict[str, torch.Tensor],
    positions: dict[str, int],
    *,
    energy: float,
    rank_fraction: float | None,
) -> dict[str, dict[str, Any]]:
    """Per layer: shape, full and kept rank, whether it is factorised, weights and MACs before and
    after, the share of Σσ² kept and the output filters that are entirely zero.

    Args:
        convs: the chosen layers, by name.
        spectra: their singular values (k,), descending.
        positions: their output positions T'·H'·W' at batch 1 (MACs per clip).
        energy: share of Σσ² to keep, in (0, 1].
        rank_fraction: share of the full rank to keep instead of ``energy``, or None.
    """
    plan = {}
    for name, conv in convs.items():
        m, n = as_matrix(conv).shape
        s = spectra[name]
        rank = choose_rank(s, energy=energy, rank_fraction=rank_fraction)
        factorised = saves(m, n, rank)
        weights = rank * (m + n) if factorised else m * n
        squares = s.double() ** 2
        plan[name] = {
            "shape": [m, n],
            "full_rank": len(s),
            "rank": rank,
            "factorised": factorised,
            "weights_before": m * n,
            "weights_after": weights,
            "macs_before": positions[name] * m * n,
            "macs_after": positions[name] * weights,
            "energy_kept": float(squares[:rank].sum() / squares.sum().clamp_min(1e-30)),
            "zero_filters": int((as_matrix(conv).abs().sum(dim=1) == 0).sum()),
        }
    return plan
