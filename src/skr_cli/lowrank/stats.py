"""Spectra of layer matrices: rank at an energy, SVD entropy, effective rank, and a plot."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from skr_cli.lowrank.layers import as_matrix


@torch.no_grad()
def singular_values(convs: dict[str, nn.Conv3d]) -> dict[str, torch.Tensor]:
    """Singular values (descending, shape (min(C_out, n),)) of each conv's weight matrix, on CPU."""
    return {name: torch.linalg.svdvals(as_matrix(conv)).cpu() for name, conv in convs.items()}


def energy_rank(s: torch.Tensor, energy: float) -> int:
    """The smallest rank whose singular values hold ``energy`` of Σσ² (0 for a zero matrix).

    Args:
        s: singular values in descending order, shape (k,).
        energy: the share of Σσ² to keep, in (0, 1].
    """
    squares = s.double() ** 2
    cumulative = squares.cumsum(0)
    total = float(cumulative[-1]) if len(s) else 0.0
    if total == 0.0:
        return 0
    return min(int((cumulative < energy * total).sum()) + 1, len(s))


def svd_entropy(s: torch.Tensor) -> float:
    """Shannon entropy (nats) of the normalised singular values p = σ / Σσ (0 for a zero matrix)."""
    total = float(s.sum())
    if total == 0.0:
        return 0.0
    p = s.double() / total
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def effective_rank(s: torch.Tensor) -> float:
    """exp(SVD entropy) (Roy & Vetterli, 2007): a real-valued rank between 1 and len(s)."""
    return math.exp(svd_entropy(s)) if float(s.sum()) > 0 else 0.0


def spectrum_charts(spectra: dict[str, torch.Tensor], energy: float, prefix: str) -> dict:
    """Per-layer rank at ``energy``, effective rank and SVD entropy, keyed for a chart logger."""
    charts = {}
    for name, s in spectra.items():
        charts[f"{prefix}/{name}/energy_rank"] = energy_rank(s, energy)
        charts[f"{prefix}/{name}/effective_rank"] = effective_rank(s)
        charts[f"{prefix}/{name}/svd_entropy"] = svd_entropy(s)
    return charts


def plot_spectra(
    spectra: dict[str, torch.Tensor], ranks: dict[str, int], energy: float, path: Path, title: str
) -> None:
    """Writes a PNG: σ_i / σ_1 per layer (log scale) and the cumulative share of Σσ² against the
    relative rank i / min(C_out, n), with each layer's kept rank marked and ``energy`` drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # here: a second at start-up
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    for name, s in spectra.items():
        if float(s[0]) == 0.0:
            continue
        index = torch.arange(0, len(s) + 1)  # rank 0 holds no energy
        share = torch.cat([torch.zeros(1, dtype=torch.float64), (s.double() ** 2).cumsum(0)])
        share = share / share[-1]
        (line,) = left.semilogy(index[1:], (s / s[0]).clamp_min(1e-8), lw=0.8, alpha=0.7)
        right.plot(index / len(s), share, lw=0.8, alpha=0.7, color=line.get_color())
        rank = ranks.get(name, 0)
        if rank:
            right.plot(rank / len(s), share[rank], "o", ms=2.5, color=line.get_color())
    left.set(xlabel="index i", ylabel="σ_i / σ_1", title="singular values per layer")
    right.axhline(energy, color="black", ls="--", lw=0.8, label=f"energy {energy}")
    right.set(xlabel="i / min(C_out, n)", ylabel="share of Σσ²", title="kept rank (dots)")
    right.legend(loc="lower right")
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
