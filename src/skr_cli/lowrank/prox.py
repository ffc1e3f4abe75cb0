"""Proximal steps: nuclear-norm singular-value soft-thresholding and (sparse) group lasso.

Compression-aware training (Alvarez & Salzmann, NIPS 2017) adds τ·Σ_l ‖W_l‖_* to the loss, with
W_l a layer's weight reshaped to (C_out, C_in·kT·kH·kW), and minimises it by proximal SGD: after
each optimiser step with learning rate η, the proximity operator of η·τ‖·‖_* shrinks every
singular value, σ ← max(σ − η·τ, 0). The optional group lasso on output filters adds
λ·Σ_rows ((1 − α)·√n·‖w‖₂ + α·‖w‖₁) (α = 0: group lasso; α > 0: sparse group lasso), whose prox
soft-thresholds the entries by η·λ·α, then shrinks each row's norm by η·λ·(1 − α)·√n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.optim import Optimizer

from skr_cli.lowrank.layers import as_matrix

SpectraCallback = Callable[[dict[str, torch.Tensor]], None]


def svd_soft_threshold(matrices: torch.Tensor, threshold: float) -> tuple[torch.Tensor, ...]:
    """Prox of ``threshold``·‖·‖_* on a batch of matrices: σ ← max(σ − threshold, 0).

    Args:
        matrices: (B, m, n), all on one device.
        threshold: the shrinkage of every singular value, ≥ 0.

    Returns:
        The thresholded matrices (B, m, n) and their singular values (B, min(m, n)), descending.
    """
    u, s, vh = torch.linalg.svd(matrices, full_matrices=False)  # (B,m,k) (B,k) (B,k,n)
    s = (s - threshold).clamp_min(0)
    return u @ (s.unsqueeze(-1) * vh), s


def sparse_group_shrink(matrix: torch.Tensor, threshold: float, l1_ratio: float) -> torch.Tensor:
    """Prox of ``threshold``·Σ_rows ((1 − α)·√n·‖w‖₂ + α·‖w‖₁), α = ``l1_ratio``.

    Args:
        matrix: (C_out, n), one row per output filter.
        threshold: η·λ, ≥ 0.
        l1_ratio: α in [0, 1].

    Returns:
        The shrunk matrix (C_out, n); rows whose norm falls below the group threshold become 0.
    """
    if l1_ratio > 0:
        matrix = matrix.sign() * (matrix.abs() - threshold * l1_ratio).clamp_min(0)
    group = threshold * (1 - l1_ratio) * math.sqrt(matrix.shape[1])
    norms = matrix.norm(dim=1, keepdim=True)  # (C_out, 1)
    return matrix * (1 - group / norms.clamp_min(1e-12)).clamp_min(0)


@contextmanager
def one_cpu_thread(convs: dict[str, nn.Conv3d]) -> Iterator[None]:
    """Runs the block on one CPU thread when the weights are on the CPU: the layers' matrices
    are small, so LAPACK's threading only adds synchronisation (and, on a busy machine, waits)."""
    on_cpu = all(conv.weight.device.type == "cpu" for conv in convs.values())
    threads = torch.get_num_threads()
    if on_cpu:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class ProximalStep:
    """The ``after_step`` callback of the training loop: applies the proximal operators.

    Every ``every`` optimiser steps it applies them once with the learning rates of those steps
    summed (Σ η, read from the optimiser's first parameter group after each step), so amortising
    the SVDs keeps the total shrinkage of ``every`` = 1. Group shrinkage runs before the
    singular-value thresholding. The SVDs of all chosen layers of one shape run as one batched
    call, on the device the weights are on.
    """

    def __init__(
        self,
        convs: dict[str, nn.Conv3d],
        *,
        weight: float,
        group_weight: float,
        l1_ratio: float,
        every: int,
        on_spectra: SpectraCallback | None = None,
    ) -> None:
        """
        Args:
            convs: the regularised layers, by name.
            weight: τ of the nuclear norm (0: none).
            group_weight: λ of the (sparse) group lasso on output filters (0: none).
            l1_ratio: α, the share of λ on the entry-wise L1 term.
            every: apply the proximal step every this many optimiser steps.
            on_spectra: receives the singular values (k,) of every layer after each application.
        """
        self.convs, self.weight, self.group_weight = convs, weight, group_weight
        self.l1_ratio, self.every, self.on_spectra = l1_ratio, every, on_spectra
        self.calls, self.lr_sum = 0, 0.0

    def __call__(self, step: int, optimizer: Optimizer) -> None:
        self.lr_sum += optimizer.param_groups[0]["lr"]
        self.calls += 1
        if self.calls % self.every == 0:
            self.apply(self.lr_sum)
            self.lr_sum = 0.0

    def state_dict(self) -> dict[str, float]:
        """The counters a resumed phase restores (steps since the last application, their lr)."""
        return {"calls": self.calls, "lr_sum": self.lr_sum}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.calls, self.lr_sum = int(state["calls"]), float(state["lr_sum"])

    @torch.no_grad()
    def apply(self, lr: float) -> dict[str, torch.Tensor]:
        """One proximal step with step size ``lr``; returns each layer's singular values (k,)."""
        if self.group_weight > 0:
            for conv in self.convs.values():
                shrunk = sparse_group_shrink(as_matrix(conv), lr * self.group_weight, self.l1_ratio)
                conv.weight.copy_(shrunk.view_as(conv.weight))
        spectra = self._threshold(lr * self.weight)
        if self.on_spectra is not None:
            self.on_spectra(spectra)
        return spectra

    def _threshold(self, threshold: float) -> dict[str, torch.Tensor]:
        if threshold == 0 and self.on_spectra is None:
            return {}
        with one_cpu_thread(self.convs):
            return self._threshold_by_shape(threshold)

    def _threshold_by_shape(self, threshold: float) -> dict[str, torch.Tensor]:
        by_shape: dict[tuple[int, ...], list[str]] = {}
        for name, conv in self.convs.items():
            by_shape.setdefault(tuple(as_matrix(conv).shape), []).append(name)
        spectra = {}
        for names in by_shape.values():
            stacked = torch.stack([as_matrix(self.convs[n]) for n in names])  # (B, m, n)
            if threshold > 0:
                stacked, s = svd_soft_threshold(stacked, threshold)
                for name, matrix in zip(names, stacked, strict=True):
                    self.convs[name].weight.copy_(matrix.view_as(self.convs[name].weight))
            else:  # group lasso alone: the spectra are still reported
                s = torch.linalg.svdvals(stacked)
            spectra |= {name: values.cpu() for name, values in zip(names, s, strict=True)}
        return spectra
