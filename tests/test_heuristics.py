"""Every heuristic on Conv3d/BatchNorm3d layers, inside Inception concatenation groups and on a
toy network where the scores are computed by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from skr_cli.heuristics import (
    FPGM,
    HEURISTICS,
    L1,
    L2,
    APoZ,
    BNScale,
    Heuristic,
    MeanActivation,
    RandomScores,
    SVDEntropy,
    Taylor,
    TaylorWeight,
)
from skr_cli.models.i3d import InceptionI3d, Unit3D
from skr_cli.pruning.layers import PrunableLayer, prunable_layers

Batches = list[tuple[torch.Tensor, torch.Tensor]]
DATA_DRIVEN = sorted(name for name, cls in HEURISTICS.items() if cls.needs_data)
EPS = 1e-3  # Unit3D's batch-norm epsilon


class Toy(nn.Module):
    """Two 1x1x1 conv-BN-ReLU units and a linear head; ``spare`` is a unit no input reaches."""

    def __init__(self, spare: bool = False) -> None:
        super().__init__()
        self.a = Unit3D(3, 5)
        self.b = Unit3D(5, 4)
        self.head = nn.Linear(4, 2)
        self.spare = Unit3D(3, 2) if spare else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.b(self.a(x)).mean(dim=(2, 3, 4)))


def randomised_toy(spare: bool = False) -> Toy:
    """A toy in train mode whose batch norms have non-trivial statistics and affine terms."""
    torch.manual_seed(0)
    toy = Toy(spare)
    with torch.no_grad():
        for bn in (toy.a.bn, toy.b.bn):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return toy.train()


def unit(module: Unit3D, x: torch.Tensor, **replace: torch.Tensor) -> torch.Tensor:
    """A 1x1x1 Unit3D in eval mode, written out: ReLU(γ (conv(x) − μ) / √(σ² + ε) + β)."""
    bn = module.bn
    weight = replace.get("weight", module.conv3d.weight)
    gamma, beta = replace.get("gamma", bn.weight), replace.get("beta", bn.bias)
    z = F.conv3d(x, weight)
    shape = (1, -1, 1, 1, 1)
    normed = (z - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + EPS)
    return F.relu(gamma.view(shape) * normed + beta.view(shape))


def toy_loss(toy: Toy, a_out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(toy.head(unit(toy.b, a_out).mean(dim=(2, 3, 4))), labels)


def toy_batches() -> Batches:
    generator = torch.Generator().manual_seed(1)
    return [
        (torch.randn(2, 3, 4, 6, 6, generator=generator), torch.tensor([0, 1])) for _ in range(3)
    ]


@pytest.fixture
def i3d_tiny() -> InceptionI3d:
    torch.manual_seed(0)
    model = InceptionI3d(num_classes=4, width=0.0625, dropout=0.0, in_channels=3)
    with torch.no_grad():  # trained-looking batch norms, so that no heuristic sees a flat layer
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


def i3d_batches() -> Batches:
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(2, 3, 4, 32, 32, generator=generator), torch.tensor([0, 3])) for _ in range(2)
    ]


@pytest.fixture
def build(make_cfg) -> Callable[[str], Heuristic]:
    """Builds a registered heuristic from its yaml, as ``skr-run heuristic=<name>`` would."""
    return lambda name: instantiate(make_cfg(f"heuristic={name}").heuristic)


@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_scores_are_finite_for_every_layer(build, i3d_tiny: InceptionI3d, name: str) -> None:
    layers = prunable_layers(i3d_tiny)
    assert {"Mixed_3b.b0", "Mixed_4e.b1b", "Mixed_5c.b3b"} <= set(layers)  # concat groups
    scores = build(name).score(i3d_tiny, layers, i3d_batches())
    assert set(scores) == set(layers)
    for layer_name, layer in layers.items():
        assert scores[layer_name].shape == (layer.channels,), layer_name
        assert torch.isfinite(scores[layer_name]).all(), layer_name


@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_scoring_leaves_the_model_as_it_was(build, i3d_tiny: InceptionI3d, name: str) -> None:
    i3d_tiny.train()
    layers = prunable_layers(i3d_tiny)
    before = {k: v.clone() for k, v in i3d_tiny.state_dict().items()}
    build(name).score(i3d_tiny, layers, i3d_batches())
    assert i3d_tiny.training
    assert all(torch.equal(before[k], v) for k, v in i3d_tiny.state_dict().items())
    assert all(p.grad is None for p in i3d_tiny.parameters())
    assert all(not layer.output._forward_hooks for layer in layers.values())


def test_filter_norms_equal_hand_computed_norms() -> None:
    toy = randomised_toy()
    with torch.no_grad():
        toy.a.conv3d.weight[1] = 0
        toy.a.conv3d.weight[1, :2] = torch.tensor([3.0, -4.0]).view(2, 1, 1, 1)
    layers = prunable_layers(toy)
    l1, l2 = L1().score(toy, layers, [])["a"], L2().score(toy, layers, [])["a"]
    assert (l1[1].item(), l2[1].item()) == (7.0, 5.0)
    weight = toy.b.conv3d.weight.detach()
    torch.testing.assert_close(L1().score(toy, layers, [])["b"], weight.abs().sum(dim=(1, 2, 3, 4)))
    torch.testing.assert_close(
        L2().score(toy, layers, [])["b"], weight.pow(2).sum(dim=(1, 2, 3, 4)).sqrt()
    )


def test_bn_scale_is_the_absolute_gamma() -> None:
    toy = randomised_toy()
    with torch.no_grad():
        toy.a.bn.weight[2] = -0.25
    scores = BNScale().score(toy, prunable_layers(toy), [])
    assert scores["a"][2] == 0.25
    torch.testing.assert_close(scores["b"], toy.b.bn.weight.detach().abs())


def test_bn_scale_names_a_layer_without_batch_norm() -> None:
    toy = randomised_toy()
    layers = {"a": PrunableLayer(conv=toy.a.conv3d, bn=None, output=toy.a)}
    with pytest.raises(RuntimeError, match="bn_scale: layer a "):
        BNScale().score(toy, layers, [])


def test_fpgm_sums_the_distances_to_the_other_filters() -> None:
    conv = nn.Conv3d(2, 3, 1, bias=False)
    with torch.no_grad():  # filters (0, 0), (3, 4), (6, 8): pairwise distances 5, 10, 5
        conv.weight.copy_(torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]).view(3, 2, 1, 1, 1))
    layers = {"conv": PrunableLayer(conv=conv, bn=None, output=conv)}
    scores = FPGM().score(conv, layers, [])["conv"]
    torch.testing.assert_close(scores, torch.tensor([15.0, 10.0, 15.0]))


def test_taylor_equals_a_hand_computation() -> None:
    toy, batches = randomised_toy(), toy_batches()
    total, clips = torch.zeros(5), 0
    for x, labels in batches:
        a_out = unit(toy.a, x).detach().requires_grad_()
        (grad,) = torch.autograd.grad(toy_loss(toy, a_out, labels), a_out)
        total += (a_out * grad).mean(dim=(2, 3, 4)).abs().sum(dim=0).detach()
        clips += len(labels)
    expected = total / clips / (total / clips).norm()
    scores = Taylor().score(toy, prunable_layers(toy), batches)["a"]
    torch.testing.assert_close(scores, expected)


@pytest.mark.parametrize("parameters", ["weight", "bn"])
def test_taylor_weight_equals_a_hand_computation(parameters: str) -> None:
    toy, batches = randomised_toy(), toy_batches()
    names = ["weight"] if parameters == "weight" else ["gamma", "beta"]
    originals = (
        [toy.a.conv3d.weight] if parameters == "weight" else [toy.a.bn.weight, toy.a.bn.bias]
    )
    expected = torch.zeros(5, dtype=torch.float64)
    for x, labels in batches:
        leaves = [p.detach().clone().requires_grad_() for p in originals]
        a_out = unit(toy.a, x, **dict(zip(names, leaves, strict=True)))
        grads = torch.autograd.grad(toy_loss(toy, a_out, labels), leaves)
        group = sum((p * g).reshape(5, -1).sum(dim=1) for p, g in zip(leaves, grads, strict=True))
        expected += group.detach().double() ** 2
    scores = TaylorWeight(parameters).score(toy, prunable_layers(toy), batches)["a"]
    # values are ~1e-6: compare relatively, with no absolute slack
    torch.testing.assert_close(scores, (expected / len(batches)).float(), rtol=1e-4, atol=0)


def signed_toy() -> tuple[Toy, Batches]:
    """Layer a's channels: 0 = ReLU(x₀), 1 = ReLU(−x₀), 2–4 = 0 (up to the BN's 1/√(1 + ε)).

    Batch 1 holds 64 positive and 64 negative x₀ values, batch 2 only positive ones.
    """
    toy = Toy()
    with torch.no_grad():
        toy.a.conv3d.weight.zero_()
        toy.a.conv3d.weight[0, 0] = 1.0
        toy.a.conv3d.weight[1, 0] = -1.0
    first = torch.zeros(2, 3, 4, 4, 4)
    first[:, 0] = (torch.arange(128.0) - 63.5).view(2, 4, 4, 4)
    second = torch.zeros(2, 3, 4, 4, 4)
    second[:, 0] = torch.linspace(0.5, 2.0, 128).view(2, 4, 4, 4)
    return toy, [(first, torch.tensor([0, 1])), (second, torch.tensor([1, 0]))]


def test_apoz_equals_a_hand_computation() -> None:
    toy, batches = signed_toy()
    # zeros: channel 0 → 64 of 256, channel 1 → 64 + 128 of 256, channels 2–4 → all
    scores = APoZ().score(toy, prunable_layers(toy), batches)["a"]
    torch.testing.assert_close(scores, torch.tensor([0.75, 0.25, 0.0, 0.0, 0.0]))


def test_mean_activation_equals_a_hand_computation() -> None:
    toy, batches = signed_toy()
    x0 = torch.cat([x[:, 0].flatten() for x, _ in batches])  # 256 positions
    scale = 1 / math.sqrt(1 + EPS)
    expected = torch.tensor(
        [x0.clamp(min=0).mean() * scale, (-x0).clamp(min=0).mean() * scale, 0.0, 0.0, 0.0]
    )
    scores = MeanActivation().score(toy, prunable_layers(toy), batches)["a"]
    torch.testing.assert_close(scores, expected)


def svd_entropy_by_hand(matrix: np.ndarray) -> float:
    singular = np.linalg.svd(matrix, compute_uv=False)
    v = singular**2 / (singular**2).sum()
    v = v[v > 0]
    return float(-(v * np.log(v)).sum() / np.log(min(matrix.shape)))


def test_svd_entropy_equals_leave_one_out_svds() -> None:
    toy, batches = randomised_toy(), toy_batches()
    with torch.no_grad():
        activations = [unit(toy.a, x).transpose(0, 1).flatten(1) for x, _ in batches]
    matrix = torch.cat(activations, dim=1).double().numpy()  # (5, positions)
    whole = svd_entropy_by_hand(matrix)
    expected = [whole - svd_entropy_by_hand(np.delete(matrix, c, axis=0)) for c in range(5)]
    scores = SVDEntropy().score(toy, prunable_layers(toy), batches)["a"]
    torch.testing.assert_close(
        scores, torch.tensor(expected, dtype=torch.float32), atol=1e-7, rtol=1e-4
    )


def test_svd_entropy_scores_a_dead_channel_lowest() -> None:
    toy = randomised_toy()
    with torch.no_grad():  # channel 3 of layer a outputs ReLU(0) = 0 everywhere
        toy.a.bn.weight[3] = 0
        toy.a.bn.bias[3] = 0
    scores = SVDEntropy().score(toy, prunable_layers(toy), toy_batches())["a"]
    assert scores.argmin() == 3 and scores[3] < 0


def test_random_is_seeded_and_leaves_the_global_rng_alone(i3d_tiny: InceptionI3d) -> None:
    layers = prunable_layers(i3d_tiny)
    state = torch.get_rng_state()
    first = RandomScores(seed=3).score(i3d_tiny, layers, [])
    assert torch.equal(torch.get_rng_state(), state)
    again = RandomScores(seed=3).score(i3d_tiny, layers, [])
    other = RandomScores(seed=4).score(i3d_tiny, layers, [])
    assert all(torch.equal(first[n], again[n]) for n in layers)
    assert any(not torch.equal(first[n], other[n]) for n in layers)


def test_taylor_is_l2_normalised_per_layer(i3d_tiny: InceptionI3d) -> None:
    scores = Taylor().score(i3d_tiny, prunable_layers(i3d_tiny), i3d_batches())
    norms = torch.stack([s.norm() for s in scores.values() if s.norm() > 0])
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_taylor_gives_zero_to_a_silent_channel(i3d_tiny: InceptionI3d) -> None:
    layers = prunable_layers(i3d_tiny)
    with torch.no_grad():  # channel 1 of this unit outputs ReLU(0) = 0 everywhere
        layers["Mixed_4b.b0"].bn.weight[1] = 0
        layers["Mixed_4b.b0"].bn.bias[1] = 0
    scores = Taylor().score(i3d_tiny, layers, i3d_batches())["Mixed_4b.b0"]
    assert scores[1] == 0 and scores.sum() > 0


@pytest.mark.parametrize("name", DATA_DRIVEN)
def test_data_driven_heuristics_need_batches(build, name: str) -> None:
    toy = randomised_toy()
    with pytest.raises(ValueError, match="prune.calib_batches"):
        build(name).score(toy, prunable_layers(toy), [])


@pytest.mark.parametrize("name", DATA_DRIVEN)
def test_a_layer_no_data_reaches_is_named(build, name: str) -> None:
    toy = randomised_toy(spare=True)
    layers = prunable_layers(toy)
    with pytest.raises(RuntimeError, match=f"{name}: no .* reaches layer spare"):
        build(name).score(toy, layers, toy_batches())
    assert all(not layer.output._forward_hooks for layer in layers.values())
    assert toy.training


def test_non_finite_scores_name_the_layer() -> None:
    toy = randomised_toy()
    with torch.no_grad():
        toy.b.conv3d.weight[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="l2: layer b has non-finite scores"):
        L2().score(toy, prunable_layers(toy), [])


def test_taylor_weight_rejects_unknown_parameters() -> None:
    with pytest.raises(ValueError, match="heuristic.parameters=filter is not allowed: weight | bn"):
        TaylorWeight("filter")
