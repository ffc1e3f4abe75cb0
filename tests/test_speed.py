"""Throughput options of the training and evaluation loops, the loaders' settings, and the
benchmark summary: behaviour only (timings live in scripts/bench_*.py)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skr_cli.engine.evaluate import evaluate
from skr_cli.engine.train import NonFiniteLoss, autocast, train
from skr_cli.models.i3d import InceptionI3d
from skr_cli.pipeline.loaders import loader_options, train_loader
from skr_cli.pipeline.runcontext import build_context
from skr_cli.pruning.layers import prunable_layers
from skr_cli.pruning.plan import select_local
from skr_cli.relocation import Penalty, Ramp, Relocation

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ("debug=smoke", "logger.mode=disabled")


def tiny_net(classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 4, 3, padding=1),
        nn.BatchNorm3d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, classes),
    )


def tiny_batches(count: int = 4, batch: int = 4) -> list:
    generator = torch.Generator().manual_seed(1)
    return [
        (torch.randn(batch, 3, 4, 8, 8, generator=generator), torch.arange(batch) % 3, [])
        for _ in range(count)
    ]


def run_train(model: nn.Module, batches: list, epochs: int = 2, **options) -> list[float]:
    return train(
        model,
        batches,
        epochs=epochs,
        make_optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        phase="pretrain",
        on_skipped=lambda paths: None,
        progress=False,
        **options,
    )


def test_bf16_on_cpu_trains_in_fp32() -> None:
    fp32 = run_train(tiny_net(), tiny_batches())
    bf16 = run_train(tiny_net(), tiny_batches(), precision="bf16")
    assert bf16 == fp32


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_bf16_autocasts_on_cuda_and_rejects_unknown_precisions() -> None:
    context = autocast(torch.device("cuda"), "bf16")
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
    with pytest.raises(ValueError, match=re.escape("fp32 | bf16")):
        autocast(torch.device("cpu"), "fp16")


def test_channels_last_trains_the_same_model_and_returns_it_contiguous() -> None:
    plain, last = tiny_net(), tiny_net()
    losses = run_train(plain, tiny_batches())
    losses_last = run_train(last, tiny_batches(), channels_last=True)
    assert losses_last == pytest.approx(losses, rel=1e-4)
    weight = last[0].weight
    assert weight.is_contiguous()
    assert torch.allclose(weight, plain[0].weight, atol=1e-5)


def test_a_nan_loss_names_the_phase_and_its_first_bad_step() -> None:
    model = tiny_net()

    def objective(model, clips, labels, logits, step) -> torch.Tensor:
        loss = F.cross_entropy(logits, labels)
        return loss * float("nan") if step >= 3 else loss

    before = {}

    def remember(step: int, optimizer) -> None:
        before[step] = [p.detach().clone() for p in model.parameters()]

    with pytest.raises(NonFiniteLoss, match=r"^pretrain: loss is nan at step 3$"):
        run_train(model, tiny_batches(), objective=objective, after_step=remember)
    assert sorted(before) == [1, 2]  # on CPU the bad step is caught before its update
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_epoch_losses_are_the_clip_weighted_means() -> None:
    batches = tiny_batches(count=2, batch=4)[:1] + tiny_batches(count=1, batch=2)
    model = tiny_net()
    seen: list[tuple[float, int]] = []

    def objective(model, clips, labels, logits, step) -> torch.Tensor:
        loss = F.cross_entropy(logits, labels)
        seen.append((loss.item(), len(labels)))
        return loss

    losses = run_train(model, batches, epochs=1, objective=objective)
    expected = sum(loss * n for loss, n in seen) / sum(n for _, n in seen)
    assert losses == [pytest.approx(expected, rel=1e-12)]


@pytest.mark.slow
def test_compile_trains_the_same_model() -> None:
    eager = run_train(tiny_net(), tiny_batches())
    compiled = run_train(tiny_net(), tiny_batches(), compile=True)
    assert compiled == pytest.approx(eager, rel=1e-4)


def test_evaluation_runs_all_clips_of_a_batch_at_once() -> None:
    model = tiny_net().eval()
    videos = torch.randn(5, 2, 3, 4, 8, 8)  # (B, N, C, T, H, W): 2 clips per video
    labels = torch.tensor([0, 1, 2, 0, 1])
    loader = [(videos[:3], labels[:3], []), (videos[3:], labels[3:], [])]
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    result = evaluate(model, loader, on_skipped=lambda paths: None)
    assert calls == [6, 4]
    with torch.no_grad():
        logits = model(videos.flatten(0, 1)).view(5, 2, -1)
    clip_labels = labels.repeat_interleave(2)
    top1 = (logits.flatten(0, 1).argmax(-1) == clip_labels).double().mean().item()
    video_top1 = (logits.mean(1).argmax(-1) == labels).double().mean().item()
    loss = F.cross_entropy(logits.flatten(0, 1), clip_labels).item()
    assert result["top1"] == pytest.approx(100 * top1)
    assert result["video_top1"] == pytest.approx(100 * video_top1)
    assert result["top5"] == result["video_top5"] == 100.0  # 3 classes: always in the top 5
    assert result["loss"] == pytest.approx(loss, rel=1e-6)
    assert (result["videos"], result["clips"]) == (5, 10)


def test_loader_options_prefetch_and_keep_workers_only_with_workers() -> None:
    assert loader_options(0, persistent=True) == {
        "num_workers": 0,
        "pin_memory": torch.cuda.is_available(),
    }
    pooled = loader_options(2, persistent=True)
    assert pooled["persistent_workers"] and pooled["prefetch_factor"] > 2
    assert not loader_options(2, persistent=False)["persistent_workers"]


@pytest.mark.slow
def test_training_batches_are_the_same_for_any_num_workers(make_cfg, tmp_path: Path) -> None:
    epochs = []
    for workers in (0, 2):
        cfg = make_cfg(*SMOKE, f"dataset.num_workers={workers}")
        loader = train_loader(build_context(cfg, tmp_path), cfg.train.batch_size, seed=5)
        epochs.append([[(c, y) for c, y, _ in loader] for _ in range(2)])  # 2 epochs
    for epoch_alone, epoch_pooled in zip(*epochs, strict=True):
        assert len(epoch_alone) == len(epoch_pooled) > 0
        for (clips_a, labels_a), (clips_b, labels_b) in zip(epoch_alone, epoch_pooled, strict=True):
            assert torch.equal(clips_a, clips_b) and torch.equal(labels_a, labels_b)
    assert not torch.equal(epochs[0][0][0][0], epochs[0][1][0][0])  # epochs differ


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.precision=fp16", "train.precision=fp16 is not allowed: fp32 | bf16"),
        ("finetune.compile=maybe", "finetune.compile=maybe is not allowed: true | false"),
        ("train.channels_last=1", "train.channels_last=1 is not allowed: true | false"),
    ],
)
def test_bad_speed_settings_stop_with_one_line(skr_run, override: str, expected: str) -> None:
    result = skr_run(*SMOKE, override)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"skr-run: error: {expected}"]


def test_summary_lists_every_benchmark_and_says_when_no_gpu_ran(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from summarise_bench import summary, write_headlines
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    (tmp_path / "loop.md").write_text("# loop\n")
    write_headlines(tmp_path / "loop.md", [{"text": "loop x1.01", "value": 1.01}])
    (tmp_path / "prune.md").write_text("# prune\n")
    gpu = {"text": "GPU latency x2.5", "value": 2.5, "gpu": True}
    write_headlines(tmp_path / "prune.md", [{"text": "prune x2.9", "value": 2.9}, gpu])
    record = json.loads((tmp_path / "loop.json").read_text())
    assert record["machine"]["cores"] >= 1 and record["machine"]["torch"] == torch.__version__
    text = "\n".join(summary(tmp_path))
    assert "[loop.md](loop.md)" in text and "- loop x1.01" in text
    assert "[prune.md](prune.md)" in text and "- prune x2.9" in text
    assert text.index("loop x1.01") < text.index("prune x2.9")
    assert "- prune: GPU latency x2.5" in text.split("## GPU")[1]
    (tmp_path / "prune.json").unlink()
    assert "No GPU was available" in "\n".join(summary(tmp_path))


def test_relocation_logs_read_pending_steps_back_in_order() -> None:
    model = InceptionI3d(num_classes=3, width=0.0625, dropout=0.0, in_channels=3)
    layers = prunable_layers(model)
    plan = select_local(
        {n: layer.conv.weight.abs().flatten(1).sum(1) for n, layer in layers.items()}, 0.5
    )
    logged: list[dict[str, float]] = []
    objective = Relocation(
        Penalty(layers, plan, {}, "bn"), Ramp("linear", 1.0, 5.0, 4), on_log=logged.append
    )
    objective.pending += [  # two steps whose terms are still tensors, as on an accelerator
        {"task": torch.tensor(2.5), "penalty": torch.tensor(0.25), "lambda": 0.5},
        {"task": torch.tensor(1.5), "penalty": torch.tensor(0.125), "lambda": 1.0},
    ]
    objective.flush()
    expected = [
        {"task": 2.5, "penalty": 0.25, "lambda": 0.5},
        {"task": 1.5, "penalty": 0.125, "lambda": 1.0},
    ]
    assert objective.history == logged == expected and not objective.pending


def test_summary_leaves_out_json_that_is_no_benchmark_record(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from summarise_bench import summary, write_headlines
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    write_headlines(tmp_path / "loop.md", [{"text": "loop x1.01", "value": 1.01}])
    (tmp_path / "calibration.json").write_text(json.dumps({"cells": []}))
    text = "\n".join(summary(tmp_path))
    assert "- loop x1.01" in text and "calibration" not in text


def test_the_pruning_benchmark_splits_the_time_by_kind_of_convolution() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from bench_prune import CONV_KINDS, conv_times
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    from skr_cli.pruning.count import count_macs

    model = InceptionI3d(num_classes=10, width=0.125, dropout=0.0, in_channels=3).eval()
    clip = torch.zeros(2, 3, 8, 32, 32)
    ticks = iter(range(10**6))  # a clock that advances by 1 at every reading
    parts = conv_times(model, clip, 2, lambda: float(next(ticks)))
    assert all(parts[kind][0] > 0 for kind in CONV_KINDS)
    assert parts["total"][0] == sum(parts[kind][0] for kind in CONV_KINDS)
    assert parts["total"][0] == 2 * count_macs(model, clip[:1])  # every MAC is a convolution's
    # each of the 58 convolutions reads the clock twice, the whole pass twice more
    assert sum(parts[kind][1] for kind in CONV_KINDS) == 58
    assert parts["total"][1] == 2 * 58 + 1 and parts["rest"][1] == 2 * 58 + 1 - 58


def test_latency_warms_each_model_before_each_timed_pass() -> None:
    from skr_cli.engine.evaluate import latency_ms

    calls: list[str] = []

    class Named(nn.Module):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(self.name)
            return x

    models = {"a": Named("a"), "b": Named("b")}
    ms = latency_ms(models, torch.zeros(1, 3), runs=2, warm=1)
    assert set(ms) == {"a", "b"}
    # 3 warm-up passes each, then per run each model twice in a row (untimed, timed), in turns
    assert calls == ["a"] * 3 + ["b"] * 3 + ["a", "a", "b", "b"] * 2
