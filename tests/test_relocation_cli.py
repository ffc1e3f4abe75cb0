"""End-to-end runs of Soft Knowledge Relocation (debug=smoke)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skr_cli.engine.checkpoint import load_state
from skr_cli.tracking.metrics import comparable as without_volatile

pytestmark = pytest.mark.slow

SMOKE = ("debug=smoke", "logger.mode=disabled")
# every option at once: a penalty on everything in the loss, balanced by GradNorm, with
# distillation (also in fine-tuning), an exponential ramp, compensation at removal and the
# low-rank proximal step
EVERY_OPTION = (
    "relocation.strength=0.5",
    "relocation.target=all",
    "relocation.decoupled=false",
    "relocation.balance=gradnorm",
    "relocation.schedule=exponential",
    "relocation.distill.weight=1.0",
    "relocation.distill.finetune=true",
    "relocation.compensate=true",
    "lowrank.weight=0.01",
    "lowrank.phases=[relocation]",
    "lowrank.truncate=false",
    "finetune.epochs=2",
    "finetune.recalibrate_bn=true",
    "finetune.label_smoothing=0.1",
)


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def comparable(result: dict) -> dict:
    """metrics.json without timings, latencies, provenance and the relocation settings."""
    return {key: value for key, value in without_volatile(result).items() if key != "relocation"}


def test_strength_zero_is_exactly_the_baseline(skr_run, tmp_path: Path) -> None:
    """With strength 0 (and no distillation, no compensation) the other relocation settings
    change nothing: same seed, same metrics, no relocation phase, the full fine-tuning."""
    base = skr_run(*SMOKE, "finetune.epochs=2", out="base")
    assert base.returncode == 0, base.stderr
    inert = skr_run(
        *SMOKE,
        "finetune.epochs=2",
        "relocation.strength=0",
        "relocation.epochs=2",
        "relocation.target=all",
        "relocation.schedule=cosine",
        out="inert",
    )
    assert inert.returncode == 0, inert.stderr
    assert comparable(metrics(tmp_path / "base")) == comparable(metrics(tmp_path / "inert"))
    result = metrics(tmp_path / "inert")
    assert result["relocation_strength"] == 0 and not result["relocation"]["active"]
    (round_,) = result["relocation"]["rounds"]
    assert round_["phase"] == {} and "delta_loss" in round_["removal"]
    assert not list((tmp_path / "inert").glob("relocated*.pt"))
    assert len(load_state(tmp_path / "inert" / "final.pt")["losses"]) == 2


def test_every_option_runs_and_takes_its_epochs_from_fine_tuning(skr_run, tmp_path: Path) -> None:
    result = skr_run(*SMOKE, *EVERY_OPTION)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run"
    first = metrics(run_dir)
    assert first["relocation_strength"] == 0.5
    (round_,) = first["relocation"]["rounds"]
    phase, removal = round_["phase"], round_["removal"]
    assert len(phase["task_loss"]) == len(phase["penalty"]) == len(phase["distill"]) == 1
    assert 0 <= phase["energy_share_end"] <= 1 and phase["lambda_end"] > 0
    assert first["delta_loss_remove"] == pytest.approx(removal["delta_loss"])
    assert removal["loss_after"] - removal["loss_before"] == pytest.approx(removal["delta_loss"])
    assert 0 <= removal["fit_residual_mean"] <= 1
    assert len(load_state(run_dir / "relocated1.pt")["relocation"]) > 0  # the step log
    assert len(load_state(run_dir / "final.pt")["losses"]) == 2 - 1  # fair budget
    # one schedule: fine-tuning continues the relocation phase's decay, the rate never rises
    rates = load_state(run_dir / "relocated1.pt")["lr"] + load_state(run_dir / "final.pt")["lr"]
    assert rates[0] == pytest.approx(0.005) and rates == sorted(rates, reverse=True)
    start = first["finetune_start"]
    assert start["lr_relocation_last"] > start["lr_first"] > start["lr_last"]
    assert start["lr_first"] == pytest.approx(0.005 / 2, rel=0.1)  # halfway down the cosine
    assert start["bn_recalibrated"] and start["epoch"] == 1
    assert start["top1"] == first["pruned"]["top1_bn_recal"]
    # a rerun into the same folder resumes after the relocation phase: same metrics
    again = skr_run(*SMOKE, *EVERY_OPTION)
    assert again.returncode == 0, again.stderr
    assert comparable(metrics(run_dir)) == comparable(first)
    assert metrics(run_dir)["relocation"] == first["relocation"]


def test_a_phase_longer_than_fine_tuning_stops_with_one_line(skr_run) -> None:
    result = skr_run(*SMOKE, "relocation.strength=1", "relocation.epochs=3")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "skr-run: error: relocation.epochs=3 is not allowed: an integer >= 0, at most "
        "finetune.epochs=1 (taken from it)"
    )


def test_the_span_target_records_the_residual_shares_before_and_after(
    skr_run, tmp_path: Path
) -> None:
    result = skr_run(
        *SMOKE,
        "relocation.strength=1",
        "relocation.target=[bn,span]",
        "relocation.compensate=true",
        module=True,
    )
    assert result.returncode == 0, result.stderr
    (round_,) = metrics(tmp_path / "run")["relocation"]["rounds"]
    phase = round_["phase"]
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())["rounds"][0]
    planned = {name for name, layer in plan.items() if layer["removed"]}
    for when in ("start", "end"):
        layers = phase[f"span_share_layers_{when}"]
        assert set(layers) == planned and all(0 <= share <= 1 for share in layers.values())
        assert phase[f"span_share_{when}"] == pytest.approx(sum(layers.values()) / len(layers))
    recorded = json.loads((tmp_path / "run" / "relocation.json").read_text())["rounds"][0]
    assert recorded["phase"]["span_share_end"] == phase["span_share_end"]
    assert 0 <= round_["removal"]["fit_residual_mean"] <= 1
