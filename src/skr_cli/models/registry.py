"""The model registry: one entry per ``conf/model/<name>.yaml``, naming the builder it calls."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

# registry key (= config file stem) → builder; variants such as ``i3d_tiny`` share a builder and
# differ only in the arguments their yaml passes.
MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(*names: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Function decorator: adds a builder to ``MODELS`` under each of ``names``."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        for name in names:
            if name in MODELS:
                raise ValueError(f"model {name!r} registered twice")
            MODELS[name] = builder
        return builder

    return add
