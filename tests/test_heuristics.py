"""l1, random and taylor on Conv3d layers inside Inception concatenation groups."""

from __future__ import annotations

import pytest
import torch

from skr_cli.heuristics import L1, RandomScores, Taylor
from skr_cli.models.i3d import InceptionI3d
from skr_cli.pruning.layers import prunable_layers


@pytest.fixture
def model() -> InceptionI3d:
    torch.manual_seed(0)
    return InceptionI3d(num_classes=4, width=0.125, dropout=0.0, in_channels=3)


def batches(count: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(3, 3, 4, 32, 32, generator=generator), torch.tensor([0, 1, 2]))
        for _ in range(count)
    ]


def test_every_heuristic_scores_every_channel(model: InceptionI3d) -> None:
    layers = prunable_layers(model)
    for heuristic in (L1(), RandomScores(seed=0), Taylor()):
        scores = heuristic.score(model, layers, batches())
        assert set(scores) == set(layers)
        assert all(scores[n].shape == (layers[n].channels,) for n in layers)


def test_l1_is_the_filter_weight_norm(model: InceptionI3d) -> None:
    layers = prunable_layers(model)
    conv = layers["Mixed_3b.b1b"].conv
    with torch.no_grad():
        conv.weight[2] = 0
    scores = L1().score(model, layers, [])["Mixed_3b.b1b"]
    assert scores[2] == 0
    assert torch.isclose(scores[0], conv.weight[0].abs().sum())


def test_random_is_seeded_and_leaves_the_global_rng_alone(model: InceptionI3d) -> None:
    layers = prunable_layers(model)
    state = torch.get_rng_state()
    first = RandomScores(seed=3).score(model, layers, [])
    assert torch.equal(torch.get_rng_state(), state)
    again = RandomScores(seed=3).score(model, layers, [])
    other = RandomScores(seed=4).score(model, layers, [])
    assert all(torch.equal(first[n], again[n]) for n in layers)
    assert any(not torch.equal(first[n], other[n]) for n in layers)


def test_taylor_is_l2_normalised_per_layer(model: InceptionI3d) -> None:
    scores = Taylor().score(model, prunable_layers(model), batches())
    norms = torch.stack([s.norm() for s in scores.values() if s.norm() > 0])
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_taylor_gives_zero_to_a_silent_channel(model: InceptionI3d) -> None:
    layers = prunable_layers(model)
    with torch.no_grad():  # channel 1 of this unit outputs ReLU(0) = 0 everywhere
        layers["Mixed_4b.b0"].bn.weight[1] = 0
        layers["Mixed_4b.b0"].bn.bias[1] = 0
    scores = Taylor().score(model, layers, batches())["Mixed_4b.b0"]
    assert scores[1] == 0 and scores.sum() > 0


def test_taylor_leaves_the_model_untouched(model: InceptionI3d) -> None:
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Taylor().score(model, prunable_layers(model), batches())
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_taylor_without_batches_raises(model: InceptionI3d) -> None:
    with pytest.raises(ValueError, match="calib_batches"):
        Taylor().score(model, prunable_layers(model), [])
