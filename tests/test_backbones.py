"""Every backbone: the registry and the configs agree, the published architectures are built,
the prunable layers follow the dependency graph, removal is exact, MACs agree with an independent
counter, and each model runs ``skr-run … debug=smoke`` end to end."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch_pruning as tp
import torchvision.models.video as tv
from hydra.utils import get_method
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from skr_cli.models import MODELS
from skr_cli.pruning.count import count_macs, count_params
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import select_local
from skr_cli.pruning.remove import remove_channels
from tests.conftest import CONF

BACKBONES = ["i3d", "i3d_r50", "r3d_18", "r2plus1d_18", "s3d"]
CLIP = torch.randn(2, 3, 8, 32, 32)  # (B, C, T, H, W): the smoke runs' clip size


def tiny(name: str, num_classes: int = 5, width: float = 0.125, **floor: int) -> nn.Module:
    """A backbone at 1/8 width with batch norms that are not the identity, in eval mode."""
    torch.manual_seed(0)
    extra = {
        "i3d": {"dropout": 0.0, "in_channels": 3},
        "i3d_r50": {"dropout": 0.0},
        "s3d": {"dropout": 0.0},
    }.get(name, {})
    model = MODELS[name](num_classes=num_classes, width=width, weights=None, **extra, **floor)
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm3d)):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


def test_registry_matches_model_configs() -> None:
    stems = {p.stem for p in (CONF / "model").glob("*.yaml")}
    assert stems == set(MODELS)
    for stem in stems:
        target = (CONF / "model" / f"{stem}.yaml").read_text().split("_target_:")[1].split()[0]
        assert get_method(target) is MODELS[stem], stem


@pytest.mark.parametrize(
    ("name", "reference"),
    [("r3d_18", tv.r3d_18), ("r2plus1d_18", tv.r2plus1d_18), ("s3d", tv.s3d)],
)
def test_width_one_is_torchvisions_model(name: str, reference) -> None:
    extra = {"dropout": 0.2} if name == "s3d" else {}
    ours = MODELS[name](num_classes=400, width=1.0, weights=None, **extra).state_dict()
    theirs = reference(num_classes=400).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.filterwarnings("ignore::FutureWarning")  # fvcore, imported by pytorchvideo
def test_width_one_is_pytorchvideos_i3d_r50() -> None:
    from pytorchvideo.models.hub.resnet import i3d_r50

    ours = MODELS["i3d_r50"](num_classes=400, width=1.0, dropout=0.5, weights=None)
    theirs = i3d_r50(pretrained=False).state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.items()
    }
    assert count_params(ours) == 28_043_472


@pytest.mark.parametrize("name", BACKBONES)
def test_prunable_layers_are_the_groups_free_of_residual_additions(name: str) -> None:
    """A body convolution (no bias: classifiers aside) is listed exactly when its torch-pruning
    group holds no other convolution's output channels."""
    model = tiny(name)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=CLIP[:1])
    free = set()
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv3d) and m.bias is None):
        group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[0])
        outputs = {
            dep.target.module for dep, _ in group if dep.handler == tp.prune_conv_out_channels
        }
        if outputs == {conv}:
            free.add(conv)
    assert {layer.conv for layer in prunable_layers(model).values()} == free


@pytest.mark.parametrize("name", BACKBONES)
def test_removing_half_the_channels_equals_silencing_them(name: str) -> None:
    """Removal gives exactly the output of zeroing the planned channels' activations (their BN
    scale and shift), and a network with fewer parameters and MACs."""
    model = tiny(name)
    generator = torch.Generator().manual_seed(1)
    layers = prunable_layers(model)
    scores = {n: torch.rand(layer.channels, generator=generator) for n, layer in layers.items()}
    plan = select_local(scores, 0.5)
    silenced = copy.deepcopy(model)
    with torch.no_grad():
        for layer_name, layer in prunable_layers(silenced).items():
            layer.bn.weight[plan[layer_name]] = 0
            layer.bn.bias[plan[layer_name]] = 0
        expected = silenced(CLIP)
        pruned = remove_channels(copy.deepcopy(model), plan, CLIP[:1])
        torch.testing.assert_close(pruned(CLIP), expected, rtol=1e-4, atol=1e-5)
    after = {n: layer.channels for n, layer in prunable_layers(pruned).items()}
    assert after == {n: layer.channels - len(plan[n]) for n, layer in layers.items()}
    assert count_params(pruned) < count_params(model)
    assert count_macs(pruned, CLIP[:1]) < count_macs(model, CLIP[:1])


@pytest.mark.parametrize("name", BACKBONES)
def test_macs_agree_with_torch_flop_counter(name: str) -> None:
    model = tiny(name)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(CLIP[:1])
    independent = counter.get_total_flops() / 2  # one multiply-accumulate = two FLOPs
    assert count_macs(model, CLIP[:1]) == pytest.approx(independent, rel=0.01)


@pytest.mark.parametrize("width", [1 / 16, 1 / 8, 1 / 4])
@pytest.mark.parametrize("name", BACKBONES)
def test_min_channels_floors_every_prunable_layer(name: str, width: float) -> None:
    plain = prunable_layers(tiny(name, width=width))
    floored_model = tiny(name, width=width, min_channels=8)
    floored = prunable_layers(floored_model)
    assert set(floored) == set(plain)  # the same layers stay prunable
    assert min(layer.channels for layer in floored.values()) >= 8
    derived = name in ("i3d_r50", "r2plus1d_18")  # widths computed from the floored ones
    for layer_name, layer in plain.items():  # wide layers keep their width
        if layer.channels >= 8 and not derived:
            assert floored[layer_name].channels == layer.channels, layer_name
    plan = {n: list(range(layer.channels // 2)) for n, layer in floored.items()}
    with torch.no_grad():
        pruned = remove_channels(floored_model, plan, CLIP[:1])
        assert pruned(CLIP).shape == (2, 5)
    assert min(layer.channels for layer in prunable_layers(pruned).values()) >= 4


def test_r2plus1d_mid_channels_are_prunable() -> None:
    layers = prunable_layers(tiny("r2plus1d_18"))
    assert "stem.0" in layers and "stem.3" not in layers  # the stem's output is residual
    assert {"layer1.0.conv1.0.0", "layer1.0.conv1.0.3", "layer1.0.conv2.0.0"} <= set(layers)
    assert "layer1.0.conv2.0.3" not in layers  # the block's output joins the residual stream


@pytest.mark.slow
@pytest.mark.parametrize("name", ["i3d_r50", "r3d_18", "r2plus1d_18", "s3d"])
def test_backbone_runs_end_to_end(skr_run, tmp_path: Path, name: str) -> None:
    result = skr_run("debug=smoke", "logger.mode=disabled", f"model={name}")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["model"] == name
    assert metrics["final"]["params"] < metrics["dense"]["params"]
    assert metrics["final"]["macs"] < metrics["dense"]["macs"]
    assert metrics["channels"]["after"] < metrics["channels"]["before"]
