"""Compression-aware training: a nuclear-norm proximal step during training, truncated-SVD
factorisation after it, and the spectra that show how low the layers' ranks went."""

from skr_cli.lowrank.layers import DEFAULT, as_matrix, select_convs
from skr_cli.lowrank.prox import ProximalStep, sparse_group_shrink, svd_soft_threshold
from skr_cli.lowrank.stats import (
    effective_rank,
    energy_rank,
    plot_spectra,
    singular_values,
    spectrum_charts,
    svd_entropy,
)
from skr_cli.lowrank.truncate import (
    choose_rank,
    factorise,
    factorise_conv,
    output_positions,
    saves,
    truncation_plan,
)

__all__ = [
    "DEFAULT",
    "ProximalStep",
    "as_matrix",
    "choose_rank",
    "effective_rank",
    "energy_rank",
    "factorise",
    "factorise_conv",
    "output_positions",
    "plot_spectra",
    "saves",
    "select_convs",
    "singular_values",
    "sparse_group_shrink",
    "spectrum_charts",
    "svd_entropy",
    "svd_soft_threshold",
    "truncation_plan",
]
