"""The deployment form: batch norm folded into the convolutions, optionally compiled; the same
outputs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from skr_cli.engine.deploy import compiled, deployed
from skr_cli.heuristics import RandomScores
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import select_local
from skr_cli.pruning.remove import remove_channels
from tests.test_backbones import BACKBONES, CLIP, tiny


def batch_norms(model: nn.Module) -> int:
    return sum(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


@pytest.mark.parametrize("name", BACKBONES)
def test_deployed_gives_the_same_outputs(name: str) -> None:
    model = tiny(name)
    with torch.no_grad():
        torch.testing.assert_close(deployed(model)(CLIP), model(CLIP), rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", BACKBONES)
def test_deployed_folds_every_batch_norm(name: str) -> None:
    model = tiny(name)
    folded = deployed(model)
    # every batch norm of these backbones follows a convolution: none is left in the copy
    assert batch_norms(folded) == 0 and batch_norms(model) > 0


def tiny_and_pruned() -> tuple[nn.Module, nn.Module]:
    """A tiny I3D and a copy with half of every prunable layer's channels removed."""
    model = tiny("i3d")
    plan = select_local(RandomScores(seed=0).score(model, prunable_layers(model), []), 0.5)
    return model, remove_channels(copy.deepcopy(model), plan, CLIP[:1])


def test_a_pruned_model_deploys_alike() -> None:
    _, pruned = tiny_and_pruned()
    with torch.no_grad():
        torch.testing.assert_close(deployed(pruned)(CLIP), pruned(CLIP), rtol=0, atol=1e-4)
    assert batch_norms(deployed(pruned)) == 0


@pytest.mark.slow
def test_the_compiled_deployed_form_gives_the_same_outputs() -> None:
    for network in tiny_and_pruned():
        fast = compiled(deployed(network))
        with torch.no_grad():
            torch.testing.assert_close(fast(CLIP), network.eval()(CLIP), rtol=0, atol=1e-4)
            torch.testing.assert_close(fast(CLIP[:1]), network(CLIP[:1]), rtol=0, atol=1e-4)
