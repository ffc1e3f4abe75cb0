"""Soft Knowledge Relocation: schedules, penalties, GradNorm, compensation, the loss jump."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from skr_cli.cli import validate
from skr_cli.engine.batchnorm import recalibrate_batchnorm
from skr_cli.engine.train import LrSchedule, train
from skr_cli.models.i3d import InceptionI3d
from skr_cli.pipeline import UserError
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import select_local
from skr_cli.pruning.remove import remove_channels
from skr_cli.relocation import (
    Distillation,
    Distilled,
    Penalty,
    Ramp,
    Relocation,
    SpanPenalty,
    calibration_loss,
    compensate,
    energy_share,
    find_consumers,
    ramp,
    span_share,
    span_sites,
    target_terms,
)

CLIP = torch.randn(1, 3, 8, 32, 32)


def tiny(width: float = 0.125, classes: int = 5, seed: int = 0) -> InceptionI3d:
    torch.manual_seed(seed)
    return InceptionI3d(num_classes=classes, width=width, dropout=0.0, in_channels=3)


def batches(count: int = 2, size: int = 8, classes: int = 5) -> list[tuple]:
    """Fixed random clips (B, 3, 8, 32, 32) with labels: the tiny model can memorise them."""
    generator = torch.Generator().manual_seed(7)
    return [
        (
            torch.randn(size, 3, 8, 32, 32, generator=generator),
            torch.randint(0, classes, (size,), generator=generator),
        )
        for _ in range(count)
    ]


def fit(model: nn.Module, data: list[tuple], epochs: int, **kwargs) -> list[float]:
    return train(
        model,
        [(clips, labels, []) for clips, labels in data],
        epochs=epochs,
        make_optimizer=lambda params: torch.optim.AdamW(params, lr=0.01),
        phase="test",
        on_skipped=lambda paths: None,
        progress=False,
        **kwargs,
    )


def half_plan(model: nn.Module) -> dict[str, list[int]]:
    """The lower-L1 half of every prunable layer's filters."""
    layers = prunable_layers(model)
    scores = {n: layer.conv.weight.detach().abs().flatten(1).sum(1) for n, layer in layers.items()}
    return select_local(scores, 0.5)


# ---------------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("schedule", ["linear", "cosine", "exponential"])
def test_ramps_go_from_zero_to_strength_monotonically(schedule: str) -> None:
    values = [ramp(schedule, t / 10, strength=2.0, rate=5.0) for t in range(11)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(2.0)
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))


def test_ramp_shapes_differ_at_mid_phase() -> None:
    mid = {s: ramp(s, 0.5, strength=1.0, rate=5.0) for s in ("linear", "cosine", "exponential")}
    assert mid["linear"] == pytest.approx(0.5) and mid["cosine"] == pytest.approx(0.5)
    assert mid["exponential"] < 0.1  # nearly flat first, then steep
    assert ramp("cosine", 0.25, strength=1.0, rate=5.0) < 0.25  # slow start


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="relocation.schedule=step"):
        ramp("step", 0.5, strength=1.0, rate=5.0)


# ------------------------------------------------------------------------- the training loop


def test_a_cross_entropy_objective_trains_exactly_like_the_default_loop() -> None:
    data = batches()
    plain, custom = tiny(0.0625), tiny(0.0625)
    fit(plain, data, 1)
    fit(custom, data, 1, objective=lambda m, c, labels, logits, s: F.cross_entropy(logits, labels))
    for (name, a), b in zip(plain.state_dict().items(), custom.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_phase_that_starts_inside_a_schedule_continues_it() -> None:
    data = batches(count=3)
    whole, first, second = [], [], []
    fit(tiny(0.0625), data, 4, schedule=LrSchedule(4, warmup=1), lr_log=whole)
    fit(tiny(0.0625), data, 1, schedule=LrSchedule(4, warmup=1), lr_log=first)
    fit(tiny(0.0625), data, 3, schedule=LrSchedule(4, warmup=1, start=1), lr_log=second)
    assert first + second == pytest.approx(whole)  # two phases: the same rates as one
    assert first == pytest.approx([0.01 * k / 4 for k in (1, 2, 3)])  # linear warm-up
    assert second[0] == pytest.approx(0.01) and second == sorted(second, reverse=True)
    assert second[-1] < 0.01 * 0.05  # the cosine ends near zero
    plain: list[float] = []
    fit(tiny(0.0625), data, 2, lr_log=plain)  # no schedule given: a cosine over its own steps
    assert plain[0] == pytest.approx(0.01) and plain == sorted(plain, reverse=True)


def test_label_smoothing_changes_the_loss_and_zero_is_the_plain_cross_entropy() -> None:
    data = batches()
    plain, zero, smooth = tiny(0.0625), tiny(0.0625), tiny(0.0625)
    assert fit(plain, data, 1) == fit(zero, data, 1, label_smoothing=0.0)
    assert fit(smooth, data, 1, label_smoothing=0.2) != fit(tiny(0.0625), data, 1)


# ----------------------------------------------------------------------- penalties and energy


def test_bn_and_weight_penalties_sum_the_planned_channels_terms() -> None:
    model = tiny()
    layers = prunable_layers(model)
    plan = {"Mixed_5c.b3b": [0, 3], "Conv3d_2b_1x1": [1]}
    consumers = find_consumers(model, layers, plan, CLIP)
    (classifier,) = consumers["Mixed_5c.b3b"]  # through the concatenation and the avg pool
    offset = layers["Mixed_5c.b0"].channels + layers["Mixed_5c.b1b"].channels
    offset += layers["Mixed_5c.b2b"].channels
    assert classifier.module is model.logits.conv3d and classifier.inputs == (offset, offset + 3)
    with torch.no_grad():
        for layer in layers.values():
            layer.bn.weight.uniform_(0.5, 1.5)
            layer.bn.bias.uniform_(-0.5, 0.5)
    bn = sum(
        layers[n].bn.weight[i].square().sum() + layers[n].bn.bias[i].square().sum()
        for n, i in plan.items()
    )
    assert Penalty(layers, plan, consumers, "bn")().item() == pytest.approx(bn.item(), rel=1e-5)
    own = sum(layers[n].conv.weight[i].square().sum() for n, i in plan.items())
    read = model.logits.conv3d.weight[:, [offset, offset + 3]].square().sum()
    read = read + model.Conv3d_2c_3x3.conv3d.weight[:, [1]].square().sum()
    weights = Penalty(layers, plan, consumers, "weights")().item()
    assert weights == pytest.approx((own + read).item(), rel=1e-5)


def test_activation_penalty_reads_the_planned_channels_during_the_forward_pass() -> None:
    model = tiny().train()
    layers = prunable_layers(model)
    plan = {"Mixed_3b.b0": [0, 1], "Mixed_4b.b1b": [2]}
    penalty = Penalty(layers, plan, {}, "activation")
    seen = {}
    handles = [
        layers[n].output.register_forward_hook(lambda m, i, out, n=n: seen.__setitem__(n, out))
        for n in plan
    ]
    with penalty.hooks():
        model(CLIP.repeat(2, 1, 1, 1, 1))
        value = penalty()
    for handle in handles:
        handle.remove()
    expected = sum(seen[n][:, i].square().mean(dim=(0, 2, 3, 4)).sum() for n, i in plan.items())
    assert value.item() == pytest.approx(expected.item(), rel=1e-5) and value.item() > 0
    assert value.requires_grad
    with penalty.hooks(), torch.no_grad():  # evaluation passes add nothing
        model(CLIP.repeat(2, 1, 1, 1, 1))
    assert penalty().item() == 0.0


def test_the_decoupled_prox_shrinks_exactly_the_penalised_entries() -> None:
    model = tiny()
    layers = prunable_layers(model)
    plan = {"Mixed_5c.b3b": [0, 3]}
    consumers = find_consumers(model, layers, plan, CLIP)
    before = copy.deepcopy(model.state_dict())
    Penalty(layers, plan, consumers, "all").prox(0.5)  # every penalised entry / (1 + 2 * 0.5)
    after = model.state_dict()
    cols = list(consumers["Mixed_5c.b3b"][0].inputs)
    shrunk = {
        "Mixed_5c.b3b.bn.weight": ([0, 3],),  # own scale and shift, own filters
        "Mixed_5c.b3b.bn.bias": ([0, 3],),
        "Mixed_5c.b3b.conv3d.weight": ([0, 3],),
        "logits.conv3d.weight": (slice(None), cols),  # what the classifier reads from them
    }
    for key, value in before.items():
        expected = value.clone()
        if key in shrunk:
            expected[shrunk[key]] = value[shrunk[key]] / 2
        torch.testing.assert_close(after[key], expected, rtol=0, atol=0, msg=key)


def test_gradnorm_needs_the_penalty_in_the_loss() -> None:
    model = tiny(0.0625)
    penalty = Penalty(prunable_layers(model), half_plan(model), {}, "bn")
    with pytest.raises(ValueError, match="gradnorm needs relocation.decoupled=false"):
        Relocation(penalty, Ramp("linear", 1.0, 5.0, 10), "gradnorm", decoupled=True)


def test_energy_share_is_the_planned_share_of_gamma() -> None:
    model = tiny()
    layers = prunable_layers(model)
    plan = half_plan(model)
    share = energy_share(layers, plan)  # gamma = 1 at init: sqrt(|S| / C) per layer
    name = "Mixed_3b.b0"
    expected = (len(plan[name]) / layers[name].channels) ** 0.5
    assert share["layers"][name] == pytest.approx(expected)
    with torch.no_grad():
        for n, idx in plan.items():
            layers[n].bn.weight[idx] = 0
    assert energy_share(layers, plan)["total"] == 0.0


# ----------------------------------------------------------------------------------- GradNorm


def test_gradnorm_keeps_the_gradient_norm_ratio_at_the_ramp() -> None:
    """Over real training steps, ‖λ·∇R‖ / ‖∇task‖ follows the ramp and ends at ``strength``,
    and the gradient the optimiser sees is ∇task + λ·∇R."""
    model = tiny(0.0625).train()
    layers = prunable_layers(model)
    plan = half_plan(model)
    consumers = find_consumers(model, layers, plan, CLIP)
    data = batches(count=3)
    steps = 3
    objective = Relocation(
        Penalty(layers, plan, consumers, "all"), Ramp("linear", 0.3, 5.0, steps), "gradnorm"
    )
    with objective.penalty.hooks():
        fit(model, data, 1, objective=objective)
    ratios = [entry["grad_ratio"] for entry in objective.history]
    assert ratios == pytest.approx([0.1, 0.2, 0.3], rel=1e-4)

    # the gradient of the returned loss is the balanced sum of both gradients
    clips, labels = data[0]
    with objective.penalty.hooks():
        model.zero_grad()
        logits = model(clips)
        loss = objective(model, clips, labels, logits, steps)
        loss.backward()
    lam = objective.history[-1]["lambda"]
    got = [p.grad.clone() for p in model.parameters()]
    with objective.penalty.hooks():
        model.zero_grad()
        task = F.cross_entropy(model(clips), labels)
        (task + lam * objective.penalty()).backward()
    for a, p in zip(got, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=1e-3, atol=1e-4)
    assert loss.item() == pytest.approx(
        objective.history[-1]["task"] + lam * objective.history[-1]["penalty"], rel=1e-5
    )


def test_distillation_is_zero_against_itself_and_positive_otherwise() -> None:
    student, other = tiny(0.0625).eval(), tiny(0.0625, seed=1).eval()
    clips = CLIP.repeat(2, 1, 1, 1, 1)
    logits = student(clips)
    assert Distillation(copy.deepcopy(student), 1.0, 4.0)(clips, logits).item() == pytest.approx(
        0.0, abs=1e-6
    )
    assert Distillation(other, 1.0, 4.0)(clips, logits).item() > 0


def test_fine_tuning_with_distillation_adds_the_weighted_term_to_the_cross_entropy() -> None:
    student, other = tiny(0.0625).eval(), tiny(0.0625, seed=1).eval()
    clips, labels = CLIP.repeat(2, 1, 1, 1, 1), torch.tensor([0, 1])
    logits = student(clips)
    task = F.cross_entropy(logits, labels, label_smoothing=0.1)
    itself = Distilled(Distillation(copy.deepcopy(student), 2.0, 4.0), label_smoothing=0.1)
    assert itself(student, clips, labels, logits, 0).item() == pytest.approx(task.item(), abs=1e-5)
    teacher = Distillation(other, 2.0, 4.0)
    loss = Distilled(teacher, label_smoothing=0.1)(student, clips, labels, logits, 0)
    assert loss.item() == pytest.approx(task.item() + 2.0 * teacher(clips, logits).item(), rel=1e-5)


# ---------------------------------------------------------------------- relocation and removal


def test_strong_relocation_cuts_the_loss_jump_at_removal_tenfold() -> None:
    """A memorised tiny model: removing half of every layer costs a loss jump; after a short
    relocation phase with a strong BN penalty the same removal costs at most a tenth of it."""
    data = batches(count=2)
    dense = tiny(0.0625)
    fit(dense, data, 15)
    recalibrate_batchnorm(dense, data)  # eval-mode statistics of what it learnt
    plan = half_plan(dense)

    def jump(model: nn.Module) -> float:
        before = calibration_loss(model, data)
        remove_channels(model, plan, CLIP)
        return calibration_loss(model, data) - before

    baseline = jump(copy.deepcopy(dense))
    relocated = copy.deepcopy(dense)
    objective = Relocation(
        Penalty(prunable_layers(relocated), plan, {}, "bn"),
        Ramp("linear", 100.0, 5.0, 30),
        decoupled=True,
    )
    fit(relocated, data, 15, objective=objective, after_step=objective.after_step)
    recalibrate_batchnorm(relocated, data)
    assert baseline > 0.5
    assert abs(jump(relocated)) <= 0.1 * baseline
    assert objective.history[-1]["penalty"] < 0.05 * objective.history[0]["penalty"]


def scaled_copies(model: nn.Module, name: str, pairs: list[tuple[int, int, float]]) -> None:
    """Makes channel ``removed`` of layer ``name`` ``scale`` × channel ``kept`` (scale > 0): same
    filter and statistics, scaled BN affine, so relu(scale · x) = scale · relu(x)."""
    layer = prunable_layers(model)[name]
    with torch.no_grad():
        layer.bn.running_mean.uniform_(-0.2, 0.2)
        layer.bn.running_var.uniform_(0.5, 2.0)
        for removed, kept, scale in pairs:
            layer.conv.weight[removed] = layer.conv.weight[kept]
            for buffer in (layer.bn.running_mean, layer.bn.running_var):
                buffer[removed] = buffer[kept]
            layer.bn.weight[removed] = scale * layer.bn.weight[kept]
            layer.bn.bias[removed] = scale * layer.bn.bias[kept]


def test_compensation_is_exact_when_removed_channels_are_combinations_of_kept_ones() -> None:
    """Inception concatenation (a branch behind a max-pool included) and the classifier.

    The classifier sees one position per clip, so the calibration clips (80) outnumber its
    input channels (64): otherwise the fit is not determined by the data."""
    model = tiny(0.0625)
    data = batches(count=10, size=8)
    fit(model, data[:2], 3)  # an input-dependent network
    recalibrate_batchnorm(model, data)
    plan = {"Mixed_3b.b0": [2, 3], "Mixed_5c.b3b": [1], "Conv3d_2b_1x1": [0]}
    scaled_copies(model, "Mixed_3b.b0", [(2, 0, 2.0), (3, 1, 0.5)])
    scaled_copies(model, "Mixed_5c.b3b", [(1, 4, 3.0)])
    scaled_copies(model, "Conv3d_2b_1x1", [(0, 3, 1.5)])
    clips = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        expected = model(clips)
    plain = remove_channels(copy.deepcopy(model), plan, CLIP)
    consumers = find_consumers(model, prunable_layers(model), plan, CLIP)
    assert {c.name for c in consumers["Mixed_3b.b0"]} == {
        f"Mixed_3c.{b}.conv3d" for b in ("b0", "b1a", "b2a", "b3b")
    }
    residuals = compensate(model, consumers, data, ridge=1e-9)
    assert max(residuals.values()) < 1e-6
    remove_channels(model, plan, CLIP)
    with torch.no_grad():
        torch.testing.assert_close(model(clips), expected, rtol=1e-4, atol=1e-4)
        assert (plain(clips) - expected).abs().max() > 1e-2  # removal alone is not exact


def test_compensation_refuses_a_consumer_it_cannot_fold_into() -> None:
    model = nn.Sequential(
        nn.Conv3d(3, 8, 1), nn.BatchNorm3d(8), nn.ReLU(), nn.Conv3d(8, 8, 3, groups=8)
    )
    layers = prunable_layers(model)
    with pytest.raises(ValueError, match="relocation does not support"):
        find_consumers(model, layers, {"0": [1, 2]}, torch.zeros(1, 3, 4, 8, 8))


# --------------------------------------------------------------------------------------- span

SMALL_CLIP = torch.zeros(1, 3, 4, 8, 8)


def spanned_net(seed: int = 0) -> nn.Sequential:
    """Conv → BN → ReLU (layer ``0``, 6 channels), a generic conv unit (``3``), a classifier.

    In eval mode, layer 0's channels 3–5 are non-negative combinations of channels 0–2 (filters
    and BN shifts combined alike, default BN statistics and scales), and every pre-activation is
    positive (a large shift), so the ReLU passes the combinations on: its activations span 3
    dimensions, and any 3 of its channels span them all.
    """
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv3d(3, 6, 3, padding=1, bias=False),
        nn.BatchNorm3d(6),
        nn.ReLU(),
        nn.Conv3d(6, 8, 3, padding=1, bias=False),
        nn.BatchNorm3d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
    mix = torch.cat([torch.eye(3), torch.rand(3, 3) + 0.2])  # (6, 3): channel = mix @ basis
    basis = 0.08 * torch.randn(3, 3 * 27)
    with torch.no_grad():
        net[0].weight.copy_((mix @ basis).reshape(6, 3, 3, 3, 3))
        net[1].bias.copy_(mix @ torch.full((3,), 4.0))
    return net.eval()


def generic_net() -> nn.Sequential:
    """``spanned_net`` with layer 0 re-initialised: independent filters, default BN."""
    net = spanned_net()
    torch.manual_seed(1)
    net[0].reset_parameters()
    net[1].reset_parameters()
    return net


def small_batches(count: int = 3) -> list[tuple]:
    generator = torch.Generator().manual_seed(3)
    return [
        (torch.randn(4, 3, 4, 8, 8, generator=generator), torch.randint(0, 4, (4,)))
        for _ in range(count)
    ]


def span_penalty(net: nn.Module, plan: dict[str, list[int]], positions: int = 256) -> Penalty:
    layers = prunable_layers(net)
    consumers = find_consumers(net, layers, plan, SMALL_CLIP)
    return Penalty(layers, plan, consumers, "span", SpanPenalty(consumers, 1e-6, positions))


def complement(kept: list[int], channels: int = 6) -> list[int]:
    return [i for i in range(channels) if i not in kept]


@pytest.mark.parametrize("kept", [[0, 1, 2], [3, 4, 5], [0, 4, 5], [1, 2, 3, 5], [2, 3, 4, 5]])
def test_compensation_is_lossless_for_any_kept_set_that_spans_the_removed_channels(
    kept: list[int],
) -> None:
    net, data = spanned_net(), small_batches()
    plan = {"0": complement(kept)}
    sites = span_sites(find_consumers(net, prunable_layers(net), plan, SMALL_CLIP))
    assert span_share(net, sites, data, 1e-9)["layers"]["0"] < 1e-8
    clips = torch.randn(2, 3, 4, 8, 8)
    with torch.no_grad():
        expected = net(clips)
    consumers = find_consumers(net, prunable_layers(net), plan, SMALL_CLIP)
    compensate(net, consumers, data, ridge=1e-9)
    remove_channels(net, plan, SMALL_CLIP)
    with torch.no_grad():
        torch.testing.assert_close(net(clips), expected, rtol=1e-4, atol=1e-4)


def test_a_kept_set_that_does_not_span_is_not_lossless() -> None:
    net, data = spanned_net(), small_batches()
    plan = {"0": complement([0, 1])}  # two channels of a 3-dimensional span
    sites = span_sites(find_consumers(net, prunable_layers(net), plan, SMALL_CLIP))
    assert span_share(net, sites, data, 1e-9)["layers"]["0"] > 1e-3
    clips = torch.randn(2, 3, 4, 8, 8)
    with torch.no_grad():
        expected = net(clips)
    compensate(net, find_consumers(net, prunable_layers(net), plan, SMALL_CLIP), data, 1e-9)
    remove_channels(net, plan, SMALL_CLIP)
    with torch.no_grad():
        assert (net(clips) - expected).abs().max() > 1e-3


def test_the_span_penalty_is_zero_on_spanned_channels_and_positive_with_a_finite_gradient() -> None:
    clips = torch.randn(4, 3, 4, 8, 8)  # 1024 positions, 256 of them fitted
    spanned = spanned_net()  # eval mode keeps the combinations exact
    penalty = span_penalty(spanned, {"0": [3, 4, 5]})
    with penalty.hooks():
        spanned(clips)
        assert penalty().item() < 1e-4
    generic = generic_net().train()
    penalty = span_penalty(generic, {"0": [3, 4, 5]})
    with penalty.hooks():
        generic(clips)
        value = penalty()
    assert value.item() > 0.05 and value.requires_grad
    value.backward()
    grads = [p.grad for p in generic.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    assert generic[0].weight.grad.abs().sum() > 0


def test_a_few_steps_on_the_span_penalty_lower_the_residual_share() -> None:
    net, data = generic_net(), small_batches()
    plan = {"0": [3, 4, 5]}
    penalty = span_penalty(net, plan)
    sites = penalty.span.sites
    recalibrate_batchnorm(net, data)
    before = span_share(net, sites, data, 1e-3)["layers"]["0"]
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    net.train()
    with penalty.hooks():
        for step in range(30):
            net(data[step % len(data)][0])
            optimizer.zero_grad()
            penalty().backward()
            optimizer.step()
    recalibrate_batchnorm(net, data)
    after = span_share(net, sites, data, 1e-3)["layers"]["0"]
    assert after < 0.5 * before


def test_span_is_measured_at_the_first_consumer_of_each_planned_layer() -> None:
    """Behind an Inception concatenation that is the next block's b0 (not the max-pool branch
    b3b); the four branches feeding it share the site, each with its own share."""
    model = tiny(0.0625)
    layers = prunable_layers(model)
    plan = {f"Mixed_3b.{b}": [0] for b in ("b0", "b1b", "b2b", "b3b")} | {"Mixed_5c.b0": [1]}
    consumers = find_consumers(model, layers, plan, CLIP)
    sites = {site.name: site for site in span_sites(consumers)}
    assert set(sites) == {"Mixed_3c.b0.conv3d", "logits.conv3d"}
    assert sites["Mixed_3c.b0.conv3d"].layers == tuple(
        f"Mixed_3b.{b}" for b in ("b0", "b1b", "b2b", "b3b")
    )
    assert len(sites["Mixed_3c.b0.conv3d"].cut) == 4
    shares = span_share(model, list(sites.values()), batches(count=1), 1e-3)
    assert set(shares["layers"]) == set(plan)
    assert all(0 <= share <= 1 for share in shares["layers"].values())


def test_targets_combine_as_a_set_of_terms() -> None:
    assert target_terms("bn") == {"bn"}
    assert target_terms("all") == {"bn", "weights", "activation"}
    assert target_terms(["all", "span"]) == {"bn", "weights", "activation", "span"}
    with pytest.raises(ValueError, match="relocation.target=grads"):
        target_terms("grads")
    with pytest.raises(ValueError, match="span term goes with span only"):
        Penalty(prunable_layers(spanned_net()), {"0": [1]}, {}, ["bn", "span"])


# ------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("relocation.strength=-1", "relocation.strength=-1 is not allowed: a number >= 0"),
        ("relocation.schedule=step", "relocation.schedule=step is not allowed: linear | cosine"),
        ("relocation.target=grads", "relocation.target=grads is not allowed: bn | weights"),
        ("relocation.balance=equal", "relocation.balance=equal is not allowed: none | gradnorm"),
        ("relocation.epochs=1.5", "relocation.epochs=1.5 is not allowed"),
        ("relocation.distill.weight=-0.1", "relocation.distill.weight=-0.1 is not allowed"),
        ("relocation.distill.temperature=0", "relocation.distill.temperature=0 is not allowed"),
        ("relocation.ridge=0", "relocation.ridge=0 is not allowed: a number > 0"),
        ("relocation.balance=gradnorm", "relocation.balance=gradnorm is not allowed: none while"),
        ("relocation.compensate=maybe", "relocation.compensate=maybe is not allowed"),
        (
            "relocation.target=[bn,grads]",
            "relocation.target=['bn', 'grads'] is not allowed: bn | weights | activation | all "
            "| span, or a non-empty list of them without repeats",
        ),
        ("relocation.target=[]", "relocation.target=[] is not allowed: bn | weights"),
        ("relocation.target=[span,span]", "relocation.target=['span', 'span'] is not allowed"),
        ("relocation.span_positions=0", "relocation.span_positions=0 is not allowed: an integer"),
    ],
)
def test_bad_relocation_values_are_refused(
    make_cfg: Callable[..., DictConfig], override: str, message: str
) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        validate(make_cfg(override))


@pytest.mark.parametrize("target", ["span", "[bn,span]", "[all,span]", "[weights]"])
def test_span_and_lists_of_targets_are_accepted(
    make_cfg: Callable[..., DictConfig], target: str
) -> None:
    validate(make_cfg("relocation.strength=1", f"relocation.target={target}"))


def test_relocation_epochs_count_every_round_of_iterative_pruning(
    make_cfg: Callable[..., DictConfig],
) -> None:
    on = "relocation.strength=1"
    validate(make_cfg(on, "relocation.epochs=2", "prune.steps=2", "finetune.epochs=4"))
    with pytest.raises(UserError, match="relocation.epochs=6 is not allowed: an integer >= 0, at"):
        validate(make_cfg(on, "relocation.epochs=6"))
    with pytest.raises(UserError, match="prune.steps=3"):
        validate(make_cfg(on, "relocation.epochs=2", "prune.steps=3", "finetune.epochs=5"))
    # with no phase nothing is taken from fine-tuning, so any epochs value is accepted
    validate(make_cfg("relocation.epochs=6"))
