"""The deployment form of a network: an inference copy with batch norm folded into convolutions,
optionally compiled.

Pruning shrinks the convolutions' MACs quadratically in the kept share of channels, but batch
norm, activations and copies only linearly, so at high ratios they take a growing share of the
time. In eval mode a batch norm right after a convolution is an affine map per channel, which
folds into the convolution's weight and bias (``fuse_conv_bn_eval``): one pass over the feature
map fewer, at no cost in accuracy. :func:`compiled` goes further with what PyTorch itself fuses
for inference: ``torch.compile``'s inductor with freezing, which treats the weights as constants,
folds batch norms, fuses ReLUs into oneDNN's convolutions, prepacks their weights and generates
one kernel for each run of elementwise work (padding, pooling, concatenation). Dense and pruned
networks get the same treatment, so their speed is compared in the same form.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from skr_cli.models.i3d import Unit3D

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def deployed(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` whose batch norms that follow a convolution are folded
    into it (the batch norm becomes ``nn.Identity``; an I3D ``Unit3D`` drops it).

    A convolution and a batch norm are folded where the batch norm is the child registered right
    after the convolution (or after a ``Sequential`` ending in one, such as R(2+1)D's (2+1)D
    convolution) in the same parent: the conv → BN units of every backbone of the registry.
    The copy computes the same outputs as ``model`` in eval mode (to float rounding); it is for
    inference only (training it would train no batch norm). ``model`` is left unchanged.
    """
    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        _fold_children(parent)
    return model


def _fold_children(parent: nn.Module) -> None:
    """Folds every (convolution, batch norm) pair of consecutive children of ``parent``."""
    children = list(parent.named_children())
    for (_, before), (norm_name, norm) in zip(children, children[1:], strict=False):
        holder, conv_name = _last_conv(parent, before)
        if holder is None or not isinstance(norm, _NORMS):
            continue
        conv = getattr(holder, conv_name)
        if conv.out_channels != norm.num_features:
            continue
        setattr(holder, conv_name, fuse_conv_bn_eval(conv, norm))
        if isinstance(parent, Unit3D):
            parent.bn = None  # its forward skips a missing batch norm
        else:
            setattr(parent, norm_name, nn.Identity())


def _last_conv(parent: nn.Module, child: nn.Module) -> tuple[nn.Module | None, str]:
    """The module holding the convolution whose output ``child`` returns, and its name there:
    ``child`` itself (held by ``parent``), or the last child of a ``Sequential`` ``child``."""
    if isinstance(child, _CONVS):
        name = next(name for name, module in parent.named_children() if module is child)
        return parent, name
    if isinstance(child, nn.Sequential) and len(child) and isinstance(child[-1], _CONVS):
        return child, str(len(child) - 1)
    return None, ""


def compiled(model: nn.Module) -> nn.Module:
    """``model`` compiled for inference: ``torch.compile`` (inductor) with freezing, the weights
    taken as constants at the first call. Call it under ``torch.no_grad()`` (or inference mode),
    where freezing applies, with inputs of a fixed shape per call site (each new shape compiles
    once more). The result computes ``model``'s outputs (to float rounding); ``model`` is put in
    eval mode and must not change afterwards (its frozen weights would not follow)."""
    return _Frozen(model.eval())


class _Frozen(nn.Module):
    """A compiled module whose calls (and so its compilations, which happen at a call) run with
    inductor's ``freezing`` on. Passed as ``torch.compile(..., options={"freezing": True})``
    it did not take effect (the full-width I3D compiled so ran no faster than eager; with the
    config patched around the call, 1.46x faster at batch 2 on one thread)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.compiled = torch.compile(model, dynamic=False)  # a new shape: a static compile

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        from torch._inductor import config  # loaded by torch.compile's first call anyway

        with config.patch(freezing=True):
            return self.compiled(*args)
