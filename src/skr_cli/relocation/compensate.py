"""Least-squares compensation at removal: fold what the removed channels carry into the consumers.

For each consumer (a convolution or linear layer reading planned channels, found through the
dependency graph, so every branch behind an Inception concatenation and the classifier), its
input X (N positions, I channels) is recorded on calibration batches in eval mode. With K its
kept and R its removed input channels, the ridge fit

    M = argmin ‖X_R − X_K M‖² + ρ·s·‖M‖²,   s = trace(X_Kᵀ X_K) / |K|   (ρ = ``ridge``)

is folded into the consumer's weights, W[:, K] += W[:, R] · Mᵀ (per kernel position), so that
Σ_R W_r * x_r ≈ Σ_K W_k' * x_k. Fitting each consumer on its own input makes the fold exact
whenever the removed inputs are linear combinations of the kept ones, and the best linear
substitute where a max-pool sits between the layer and the consumer.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from skr_cli.engine.modes import eval_mode, removing
from skr_cli.relocation.consumers import Consumer


@torch.no_grad()
def compensate(
    model: nn.Module,
    consumers: dict[str, list[Consumer]],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    ridge: float,
) -> dict[str, float]:
    """Folds the ridge fit of every consumer's removed inputs into its kept ones, in place.

    The removed channels stay in the model (their weights untouched): remove them afterwards.

    Args:
        model: the network before removal.
        consumers: layer name → its consumers (``find_consumers``) for the planned channels.
        batches: calibration (clips (B, C, T, H, W), labels (B,)).
        ridge: ρ > 0, relative to the mean diagonal of X_Kᵀ X_K.

    Returns:
        Consumer name → relative residual ‖X_R − X_K M‖² / ‖X_R‖² of its fit (0: exact).
    """
    removed: dict[nn.Module, set[int]] = {}
    names: dict[nn.Module, str] = {}
    for layer_consumers in consumers.values():
        for consumer in layer_consumers:
            removed.setdefault(consumer.module, set()).update(consumer.inputs)
            names[consumer.module] = consumer.name
    grams = input_grams(model, list(removed), batches)
    residuals = {}
    for module, gram in grams.items():
        cut = sorted(removed[module])
        kept = [i for i in range(gram.shape[0]) if i not in removed[module]]
        if not kept:
            continue
        fit, residual = ridge_fit(gram, kept, cut, ridge)
        fold(module, fit.to(module.weight.dtype), kept, cut)
        residuals[names[module]] = residual
    return residuals


def ridge_fit(
    gram: torch.Tensor, kept: list[int], cut: list[int], ridge: float
) -> tuple[torch.Tensor, float]:
    """M (|K|, |R|) minimising ‖X_R − X_K M‖² + ρ·s·‖M‖² from the Gram matrix Xᵀ X (I, I).

    Returns M and the relative residual of the fit on the recorded inputs.
    """
    fit, error, energy = column_residuals(gram, kept, cut, ridge)
    total = energy.sum().item()
    return fit, max(error.sum().item(), 0.0) / total if total > 0 else 0.0


def column_residuals(
    gram: torch.Tensor, kept: list[int], cut: list[int], ridge: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ridge fit M (|K|, |R|) from the Gram matrix Xᵀ X (I, I), with the squared residual
    ‖x_r − X_K m_r‖² (|R|,) and the energy ‖x_r‖² (|R|,) of every removed column r."""
    g_kk, g_kr = gram[kept][:, kept], gram[kept][:, cut]  # (K, K), (K, R)
    fit = ridge_solve(g_kk, g_kr, ridge)  # (K, R)
    energy = gram[cut, cut]  # the diagonal of G_RR
    # ‖x_r − X_K m_r‖² = G_rr − 2 m_rᵀ G_Kr + m_rᵀ G_KK m_r
    error = energy - 2 * (fit * g_kr).sum(0) + (fit * (g_kk @ fit)).sum(0)
    return fit, error.clamp_min(0.0), energy


def ridge_solve(g_kk: torch.Tensor, g_kr: torch.Tensor, ridge: float) -> torch.Tensor:
    """M = (G_KK + ρ·s·I)⁻¹ G_KR (|K|, |R|), s the mean diagonal of G_KK (ρ = ``ridge`` > 0, so
    the system is positive definite: solved without the check that reads a flag back from an
    accelerator)."""
    system = g_kk.clone()
    diagonal = system.diagonal()
    diagonal += diagonal.mean().clamp_min_(1e-30).mul_(ridge)
    return torch.linalg.solve_ex(system, g_kr)[0]


def fold(module: nn.Module, fit: torch.Tensor, kept: list[int], cut: list[int]) -> None:
    """W[:, K] += W[:, R] · Mᵀ on the input-channel axis (1) of a conv or linear weight."""
    weight = module.weight  # (O, I, ...) for both
    moved = torch.einsum("or...,kr->ok...", weight[:, cut], fit)  # (O, K, ...)
    weight[:, kept] += moved


def input_grams(
    model: nn.Module,
    modules: list[nn.Module],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> dict[nn.Module, torch.Tensor]:
    """Σ Xᵀ X (float64, (I, I)) of each module's input over every position of the batches."""
    grams: dict[nn.Module, torch.Tensor] = {}

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0]
        # channels last, then one row per position: conv (B, I, ...) / linear (..., I)
        rows = x.movedim(1, -1) if not isinstance(module, nn.Linear) else x
        rows = rows.reshape(-1, rows.shape[-1])
        rows = rows.double()
        gram = rows.T @ rows
        grams[module] = grams[module] + gram if module in grams else gram

    hooks = [module.register_forward_pre_hook(record) for module in modules]
    with removing(hooks), eval_mode(model):
        for clips, _labels in batches:
            model(clips)
    if len(grams) < len(modules):
        raise ValueError("compensation: a consumer saw no input on the calibration batches")
    return grams
