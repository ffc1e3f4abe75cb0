"""Compression-aware training: proximal steps, spectra, truncation, config and an end-to-end run."""

from __future__ import annotations

import copy
import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from skr_cli.cli import validate
from skr_cli.engine.train import train
from skr_cli.lowrank import (
    ProximalStep,
    effective_rank,
    energy_rank,
    factorise,
    factorise_conv,
    output_positions,
    plot_spectra,
    select_convs,
    singular_values,
    sparse_group_shrink,
    svd_entropy,
    truncation_plan,
)
from skr_cli.models.i3d import InceptionI3d
from skr_cli.pipeline import LOWRANK_PHASES as PHASES
from skr_cli.pipeline import UserError, truncation_enabled
from skr_cli.pruning.count import count_macs, count_params
from skr_cli.tracking.metrics import comparable as without_volatile

CLIP = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))


def tiny_i3d(seed: int = 0, classes: int = 4) -> InceptionI3d:
    torch.manual_seed(seed)
    return InceptionI3d(num_classes=classes, width=0.125, dropout=0.0, in_channels=3)


def numpy_svt(weight: torch.Tensor, threshold: float) -> np.ndarray:
    """Reference prox of threshold·‖·‖_* on the (C_out, rest) matrix, reshaped back."""
    matrix = weight.detach().double().numpy().reshape(weight.shape[0], -1)
    u, s, vh = np.linalg.svd(matrix, full_matrices=False)
    return ((u * np.maximum(s - threshold, 0)) @ vh).reshape(weight.shape)


def numpy_sparse_group(matrix: np.ndarray, threshold: float, l1_ratio: float) -> np.ndarray:
    """Reference prox of threshold·Σ_rows ((1 - α)√n‖w‖₂ + α‖w‖₁), row by row."""
    out = np.sign(matrix) * np.maximum(np.abs(matrix) - threshold * l1_ratio, 0)
    group = threshold * (1 - l1_ratio) * math.sqrt(matrix.shape[1])
    for row in out:
        norm = np.linalg.norm(row)
        row *= max(0.0, 1 - group / norm) if norm > 0 else 0.0
    return out


def random_convs() -> dict[str, nn.Conv3d]:
    torch.manual_seed(1)  # two layers of one shape (one batched SVD) and one of another
    shapes = [(8, 4, (3, 3, 3)), (8, 4, (3, 3, 3)), (6, 10, (1, 1, 1))]
    return {f"c{i}": nn.Conv3d(cin, cout, k, bias=False) for i, (cout, cin, k) in enumerate(shapes)}


# ----------------------------------------------------------------------------- proximal steps


def test_proximal_step_equals_numpy_svd_soft_threshold() -> None:
    convs = random_convs()
    lr, tau = 0.1, 5.0  # threshold 0.5: between the smallest and the largest σ of each layer
    expected = {n: numpy_svt(c.weight, lr * tau) for n, c in convs.items()}
    ProximalStep(convs, weight=tau, group_weight=0.0, l1_ratio=0.0, every=1).apply(lr)
    for name, conv in convs.items():
        np.testing.assert_allclose(conv.weight.detach().numpy(), expected[name], atol=1e-5)
    ranks = [
        int(np.linalg.matrix_rank(expected[n].reshape(c.out_channels, -1), tol=1e-6))
        for n, c in convs.items()
    ]
    assert ranks == [6, 6, 4]  # some singular values were removed, not all


@pytest.mark.parametrize("l1_ratio", [0.0, 0.4])
def test_group_shrink_equals_numpy_reference(l1_ratio: float) -> None:
    matrix = torch.randn(10, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    matrix[3] *= 0.01  # a weak filter: the group threshold zeroes it entirely
    expected = numpy_sparse_group(matrix.numpy(), 0.05, l1_ratio)
    shrunk = sparse_group_shrink(matrix, 0.05, l1_ratio)
    np.testing.assert_allclose(shrunk.numpy(), expected, atol=1e-12)
    assert float(shrunk[3].abs().sum()) == 0.0


def test_proximal_step_every_k_steps_sums_the_learning_rates() -> None:
    convs = random_convs()
    before = {n: c.weight.detach().clone() for n, c in convs.items()}
    optimizer = torch.optim.SGD([p for c in convs.values() for p in c.parameters()], lr=0.0)
    step = ProximalStep(convs, weight=2.0, group_weight=0.0, l1_ratio=0.0, every=3)
    lrs = (0.03, 0.02, 0.01)
    for i, lr in enumerate(lrs, start=1):
        optimizer.param_groups[0]["lr"] = lr
        step(i, optimizer)
        if i < 3:  # nothing happens between applications
            assert all(torch.equal(c.weight, before[n]) for n, c in convs.items())
    for name, conv in convs.items():
        expected = numpy_svt(before[name], 2.0 * sum(lrs))
        np.testing.assert_allclose(conv.weight.detach().numpy(), expected, atol=1e-5)


def test_spectra_are_reported_after_each_application() -> None:
    seen: list[dict[str, torch.Tensor]] = []
    convs = random_convs()
    step = ProximalStep(
        convs, weight=0.0, group_weight=0.1, l1_ratio=0.0, every=1, on_spectra=seen.append
    )
    step.apply(0.1)
    assert len(seen) == 1 and set(seen[0]) == set(convs)
    for name, conv in convs.items():
        torch.testing.assert_close(seen[0][name], singular_values({name: conv})[name])


def train_tiny(weight: float) -> dict[str, int]:
    """Trains the tiny I3D on a fixed set of random clips; returns each layer's 90 % rank."""
    model = tiny_i3d()
    generator = torch.Generator().manual_seed(3)
    batches = [
        (torch.randn(4, 3, 8, 32, 32, generator=generator), torch.randint(0, 4, (4,)), [])
        for _ in range(4)
    ]
    convs = select_convs(model, "default")
    step = ProximalStep(convs, weight=weight, group_weight=0.0, l1_ratio=0.0, every=2)
    train(
        model,
        batches,
        epochs=3,
        make_optimizer=partial(torch.optim.AdamW, lr=0.005),
        phase="test",
        on_skipped=lambda _: None,
        progress=False,
        after_step=step,
    )
    return {name: energy_rank(s, 0.9) for name, s in singular_values(convs).items()}


def test_training_with_the_regulariser_lowers_the_rank_for_90_percent_energy() -> None:
    plain, regularised = train_tiny(0.0), train_tiny(20.0)
    assert sum(regularised.values()) < 0.8 * sum(plain.values())
    assert all(regularised[name] <= plain[name] for name in plain)


# ----------------------------------------------------------------------------------- spectra


def test_energy_rank_entropy_and_effective_rank() -> None:
    s = torch.tensor([3.0, 2.0, 1.0, 0.0])  # σ² shares 9/14, 13/14, 14/14
    assert [energy_rank(s, e) for e in (0.5, 0.9, 0.95, 1.0)] == [1, 2, 3, 3]
    assert energy_rank(torch.zeros(3), 0.9) == 0
    flat = torch.ones(5)
    assert svd_entropy(flat) == pytest.approx(math.log(5))
    assert effective_rank(flat) == pytest.approx(5.0)
    assert effective_rank(torch.tensor([1.0, 0.0, 0.0])) == pytest.approx(1.0)


def test_spectra_plot_is_written(tmp_path: Path) -> None:
    spectra = singular_values(random_convs())
    path = tmp_path / "spectra.png"
    plot_spectra(spectra, {"c0": 3}, 0.9, path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -------------------------------------------------------------------------------- truncation


def test_full_rank_truncation_reproduces_the_layer() -> None:
    torch.manual_seed(4)
    conv = nn.Conv3d(6, 10, (3, 3, 3), stride=(1, 2, 2), padding=1, dilation=(2, 1, 1))
    x = torch.randn(2, 6, 8, 16, 16)
    factorised = factorise_conv(conv, rank=10)
    assert [m.kernel_size for m in factorised] == [(3, 3, 3), (1, 1, 1)]
    assert factorised[0].bias is None and factorised[1].bias is not None
    with torch.no_grad():
        torch.testing.assert_close(factorised(x), conv(x), rtol=0, atol=1e-5)


def test_full_rank_truncation_of_every_chosen_layer_keeps_the_network() -> None:
    model = tiny_i3d().eval()
    convs = select_convs(model, "default")
    full = {name: min(conv.weight.shape[0], conv.weight[0].numel()) for name, conv in convs.items()}
    with torch.no_grad():
        expected = model(CLIP)
        torch.testing.assert_close(factorise(model, full)(CLIP), expected, rtol=1e-4, atol=1e-5)


def test_factorised_network_has_fewer_params_and_macs() -> None:
    model = tiny_i3d().eval()
    convs = select_convs(model, "default")
    plan = truncation_plan(
        convs,
        singular_values(convs),
        output_positions(model, convs, CLIP),
        energy=1.0,
        rank_fraction=0.5,
    )
    kept = {name: layer["rank"] for name, layer in plan.items() if layer["factorised"]}
    assert 0 < len(kept) < len(plan)  # some layers would not get smaller: they stay whole
    params, macs = count_params(model), count_macs(model, CLIP)
    factorised = factorise(copy.deepcopy(model), kept)
    saved_weights = sum(layer["weights_before"] - layer["weights_after"] for layer in plan.values())
    saved_macs = sum(layer["macs_before"] - layer["macs_after"] for layer in plan.values())
    assert params - count_params(factorised) == saved_weights > 0
    assert macs - count_macs(factorised, CLIP) == saved_macs > 0


def test_truncation_factorises_only_where_it_saves_weights() -> None:
    conv = nn.Conv3d(4, 6, 1, bias=False)  # m = 6, n = 4: rank 3 costs 30 > 24 weights
    plan = truncation_plan(
        {"c": conv}, singular_values({"c": conv}), {"c": 10}, energy=1.0, rank_fraction=0.75
    )
    assert plan["c"]["rank"] == 3 and not plan["c"]["factorised"]
    assert plan["c"]["weights_after"] == plan["c"]["weights_before"] == 24


# ---------------------------------------------------------------------------- chosen layers


def test_default_layers_are_every_conv_but_the_stem_and_the_classifier() -> None:
    model = tiny_i3d()
    names = list(select_convs(model, "default"))
    assert len(names) == 2 + 9 * 6
    assert "Conv3d_1a_7x7.conv3d" not in names and "logits.conv3d" not in names


def test_layer_patterns_and_their_mistakes() -> None:
    model = tiny_i3d()
    assert list(select_convs(model, ["Mixed_5*.b1b.conv3d"])) == [
        "Mixed_5b.b1b.conv3d",
        "Mixed_5c.b1b.conv3d",
    ]
    with pytest.raises(ValueError, match="'Mixed_9\\*' matches no Conv3d"):
        select_convs(model, ["Mixed_9*"])
    grouped = nn.Sequential(
        nn.Conv3d(3, 4, 1), nn.Conv3d(4, 4, 3, groups=4), nn.Conv3d(4, 4, 1), nn.Conv3d(4, 2, 1)
    )
    assert list(select_convs(grouped, "default")) == ["2"]  # stem 0, grouped 1, classifier 3
    with pytest.raises(ValueError, match="grouped"):
        select_convs(grouped, ["1"])


# ------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("lowrank.weight=-1", "lowrank.weight=-1 is not allowed: a number >= 0"),
        ("lowrank.group_weight=-0.1", "lowrank.group_weight=-0.1 is not allowed: a number >= 0"),
        ("lowrank.l1_ratio=1.5", "lowrank.l1_ratio=1.5 is not allowed: a number in [0, 1]"),
        ("lowrank.energy=0", "lowrank.energy=0 is not allowed: a number in (0, 1]"),
        (
            "lowrank.rank_fraction=2",
            "lowrank.rank_fraction=2 is not allowed: a number in (0, 1] or null",
        ),
        ("lowrank.prox_every=0", "lowrank.prox_every=0 is not allowed: an integer >= 1"),
        (
            "lowrank.phases=[score]",
            f"lowrank.phases=['score'] is not allowed: a non-empty list of {' | '.join(PHASES)}",
        ),
        (
            "lowrank.truncate=2",
            "lowrank.truncate=2 is not allowed: true | false | null (when a weight is > 0)",
        ),
    ],
)
def test_bad_lowrank_values_name_the_key(make_cfg, override: str, expected: str) -> None:
    with pytest.raises(UserError) as err:
        validate(make_cfg(override))
    assert str(err.value) == expected


def test_truncation_runs_when_a_regulariser_is_on_or_when_asked(make_cfg) -> None:
    assert not truncation_enabled(make_cfg())
    assert truncation_enabled(make_cfg("lowrank.weight=1e-4"))
    assert truncation_enabled(make_cfg("lowrank.group_weight=0.1"))
    assert truncation_enabled(make_cfg("lowrank.truncate=true"))
    assert not truncation_enabled(make_cfg("lowrank.weight=1e-4", "lowrank.truncate=false"))


# ------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_lowrank_with_channel_removal_runs_end_to_end_and_resumes(skr_run, tmp_path: Path) -> None:
    overrides = (
        "debug=smoke",
        "logger.mode=disabled",
        "prune.ratio=0.5",
        "lowrank.weight=1.0",
        "lowrank.group_weight=0.05",
        "lowrank.l1_ratio=0.5",
        "lowrank.energy=0.8",
        "lowrank.finetune_epochs=1",
    )
    result = skr_run(*overrides)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    lowrank = metrics["lowrank"]
    assert metrics["lowrank_weight"] == 1.0
    assert {"before", "truncated", "after", "layers"} <= set(lowrank)
    assert lowrank["before"]["params"] == metrics["final"]["params"]  # truncates the pruned model
    saved = sum(
        layer["weights_before"] - layer["weights_after"] for layer in lowrank["layers"].values()
    )
    assert lowrank["before"]["params"] - lowrank["after"]["params"] == saved > 0
    assert lowrank["after"]["macs"] < lowrank["before"]["macs"]
    for name in ("spectra.png", "truncation.json", "eval_factorised.json", "factorised.pt"):
        assert (run_dir / name).exists(), name

    again = skr_run(*overrides)  # resumes every phase from the run folder
    assert again.returncode == 0, again.stderr
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert without_volatile(resumed) == without_volatile(metrics)
