"""Loading pretrained weights into a freshly built network, refusing anything that does not fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from skr_cli.engine.checkpoint import CheckpointError, safe_load

# Keys under which known checkpoint formats keep the state dict: pytorchvideo's model zoo
# (``model_state``) and skr's own phase outputs (``model``, written by engine/checkpoint.py).
WRAPPER_KEYS = ("model_state", "model")
SHOWN = 6  # keys named per kind of mismatch in an error message


class WeightsError(ValueError):
    """A checkpoint that cannot be loaded into the model; the message names the offending keys."""


def load_weights(model: nn.Module, path: str | Path, *, classifier: str) -> nn.Module:
    """Loads a checkpoint into ``model`` in place and returns it.

    Accepts a bare state dict (torchvision's files, the PyTorch I3D port's ``rgb_imagenet.pt``),
    pytorchvideo's ``{"model_state": ...}`` and skr's ``{"model": ...}``. Keys must match exactly,
    with two allowances: batch-norm ``num_batches_tracked`` counters may be absent (older files),
    and the classifier may have another number of classes, in which case the model's freshly
    initialised classifier is kept and every other weight is loaded.

    Args:
        model: the network, built with the architecture the checkpoint was saved from.
        path: the checkpoint file (loaded with ``weights_only=True``: no pickled code runs).
        classifier: the prefix of the classifier's keys, e.g. ``"logits."`` or ``"fc."``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        WeightsError: the file holds no state dict, or keys are missing, unexpected, or of
            another shape outside the classifier; the message lists them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    state = state_dict_of(_load(path), path)
    own = model.state_dict()
    reshaped = [k for k in state if k in own and state[k].shape != own[k].shape]
    new_head = [k for k in reshaped if k.startswith(classifier)]
    state = {k: v for k, v in state.items() if k not in new_head}
    problems = _mismatches(
        own, state, reshaped=sorted(set(reshaped) - set(new_head)), kept=new_head
    )
    if problems:
        raise WeightsError(f"{path} does not fit the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=False)  # only the replaced classifier is left out
    return model


def state_dict_of(checkpoint: Any, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint (a bare one or one of ``WRAPPER_KEYS``)."""
    if isinstance(checkpoint, dict):
        for key in WRAPPER_KEYS:
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not (
        isinstance(checkpoint, dict)
        and checkpoint
        and all(isinstance(v, torch.Tensor) for v in checkpoint.values())
    ):
        raise WeightsError(
            f"{path} holds no state dict (expected a dict of tensors, or one under "
            f"{' or '.join(repr(k) for k in WRAPPER_KEYS)})"
        )
    # a plain dict, without the version metadata: batch norms then accept files that predate
    # their num_batches_tracked counter
    return dict(checkpoint)


def _load(path: Path) -> Any:
    try:  # weights_only: a file that carries pickled code is refused and nothing in it runs
        return safe_load(path)
    except CheckpointError as err:
        raise WeightsError(str(err)) from err


def _mismatches(
    own: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    *,
    reshaped: list[str],
    kept: list[str],
) -> list[str]:
    """One phrase per kind of mismatch between the model's keys and the checkpoint's.

    ``reshaped`` are keys of another shape; ``kept`` are the model's keys that deliberately keep
    their fresh values (a classifier with another number of classes).
    """
    unexpected = sorted(set(state) - set(own))
    absent = set(own) - set(state) - set(kept)
    missing = sorted(k for k in absent if not k.endswith(".num_batches_tracked"))
    shapes = [f"{k} {_shape(state[k])} vs the model's {_shape(own[k])}" for k in reshaped]
    found = [("unexpected keys", unexpected), ("missing keys", missing), ("shapes differ", shapes)]
    return [f"{label}: {_listed(items)}" for label, items in found if items]


def _shape(tensor: torch.Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"


def _listed(items: list[str]) -> str:
    more = f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more
