"""Which Conv3d layers the low-rank regulariser and the truncation act on."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatch

import torch
from torch import nn

DEFAULT = "default"


def _default_names(model: nn.Module) -> list[str]:
    """Every ungrouped Conv3d but the stem (the first conv) and the classifier.

    The classifier is the model's last Conv3d or Linear in registration order, excluded when it is
    a Conv3d (a Linear head is no Conv3d anyway).
    """
    ordered = [
        (name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv3d | nn.Linear)
    ]
    convs = [name for name, m in ordered if isinstance(m, nn.Conv3d)]
    excluded = set(convs[:1])
    if ordered and isinstance(ordered[-1][1], nn.Conv3d):
        excluded.add(ordered[-1][0])
    modules = dict(ordered)
    return [n for n in convs if n not in excluded and modules[n].groups == 1]


def select_convs(model: nn.Module, layers: str | Sequence[str]) -> dict[str, nn.Conv3d]:
    """The chosen Conv3d layers of ``model``, by module name, in registration order.

    Args:
        model: any network with Conv3d layers.
        layers: ``"default"`` (every Conv3d but the stem and the classifier, grouped convs left
            out) or module-name patterns (fnmatch), e.g. ``["Mixed_5*.conv3d"]``.

    Raises:
        ValueError: a pattern matches no Conv3d, matches a grouped Conv3d (its weight is not one
            matrix), or no layer is chosen at all.
    """
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv3d)}
    if isinstance(layers, str):
        if layers != DEFAULT:
            raise ValueError(f"lowrank.layers={layers}: use 'default' or a list of name patterns")
        names = _default_names(model)
    else:
        names = []
        for pattern in layers:
            matched = [n for n in convs if fnmatch(n, pattern)]
            if not matched:
                raise ValueError(
                    f"lowrank.layers: '{pattern}' matches no Conv3d of {type(model).__name__} "
                    f"(e.g. {', '.join(list(convs)[:3])})"
                )
            grouped = [n for n in matched if convs[n].groups != 1]
            if grouped:
                raise ValueError(f"lowrank.layers: grouped Conv3d cannot be used: {grouped[0]}")
            names += [n for n in matched if n not in names]
        names.sort(key=list(convs).index)
    if not names:
        raise ValueError(f"lowrank.layers: {type(model).__name__} has no Conv3d to regularise")
    return {n: convs[n] for n in names}


def as_matrix(conv: nn.Conv3d) -> torch.Tensor:
    """The conv's weight as a matrix (C_out, C_in·kT·kH·kW): one row per output filter."""
    return conv.weight.reshape(conv.out_channels, -1)
