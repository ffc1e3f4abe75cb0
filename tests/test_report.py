"""``skr-report`` on fabricated sweeps: exact statistics, files, gaps and errors.

Runs are written by hand (metrics.json, .hydra/config.yaml, plan.json) with known numbers, so
every statistic below is computed by hand; nothing is trained.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import yaml

from skr_cli.report.cells import CellKey, analyze, baseline_of, group_cells, short_labels
from skr_cli.report.cli import main
from skr_cli.report.collect import Run, collect
from skr_cli.report.plots import accuracy_figure, answer_figure, plot_cells, spread_figure
from skr_cli.report.stats import (
    complete_table,
    permutation_p,
    spread,
    spread_ratio,
    summarize,
    two_way_anova,
)
from skr_cli.report.tracking import sweep_group

SEEDS = (0, 1, 2)
# final top-1 by heuristic, seed; baseline means 62, 66, 42 and relocation means 67, 68, 64
BASELINE = {"l1": (60, 62, 64), "taylor": (64, 65, 69), "random": (40, 44, 42)}
RELOCATED = {"l1": (66, 67, 68), "taylor": (67, 69, 68), "random": (62, 66, 64)}
# first-round scores of layer "a" (4 channels) and "b" (1 channel: τ undefined, left out)
SCORES = {"l1": [1, 2, 3, 4], "taylor": [1, 2, 4, 3], "random": [4, 3, 2, 1]}


def write_run(
    root: Path,
    heuristic: str,
    seed: int,
    top1: float | None,
    *,
    strength: float = 0.0,
    distill: float = 0.0,
    ratio: float = 0.5,
    dense_key: bool = True,
    dataset: str = "synthetic",
) -> Path:
    """One run directory as ``skr-run`` leaves it; ``top1=None``: it never wrote metrics.json."""
    run = root / f"{dataset},{heuristic},strength={strength:g},ratio={ratio},seed={seed}"
    if distill:
        run = run.with_name(run.name + f",distill={distill:g}")
    (run / ".hydra").mkdir(parents=True)
    config = {
        "seed": seed,
        "threads": 1,
        "dataset": {"root": f"data/{dataset}", "num_workers": seed},
        "heuristic": {"_target_": f"skr_cli.heuristics.{heuristic}"},
        "prune": {"ratio": ratio, "scope": "local"},
        "relocation": {
            "strength": strength,
            "epochs": 1,
            "distill": {"weight": distill},
            "compensate": False,
        },
        "lowrank": {"weight": 0.0},
        "finetune": {"epochs": 5},
        "logger": {"mode": "disabled", "project": "skr", "group": None},
    }
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"heuristic={heuristic}"]))
    scores = SCORES[heuristic]
    removed = sorted(np.argsort(scores)[: int(ratio * 4)].tolist())
    plan = {
        "a": {"channels": 4, "scores": scores, "removed": removed},
        "b": {"channels": 1, "scores": [1.0], "removed": []},
    }
    (run / "plan.json").write_text(json.dumps({"heuristic": heuristic, "rounds": [plan]}))
    if top1 is None:
        (run / "cli.log").write_text("[INFO] - pretrain\n[ERROR] - finetune: loss is nan\n")
        return run
    metrics = {
        "heuristic": heuristic,
        "seed": seed,
        "dataset": dataset,
        "model": "i3d_tiny",
        "prune_ratio": ratio,
        "relocation_strength": strength,
        "lowrank_weight": 0.0,
        "pruned": {"top1": 10.0, "top1_bn_recal": top1 / 2, "params": 100, "macs": 1000},
        "final": {
            "top1": top1,
            "video_top1": top1 + 1,
            "params": 100,
            "macs": 1000,
            "latency_ms": 2.0,
        },
        "delta_loss_remove": 3.0 if strength == 0 else 0.01,
        "finetune_epochs": 5 if strength == 0 and not distill else 4,
    }
    if dense_key:
        metrics["dense_cache"] = {"key": f"dense{seed}", "cached": seed > 0, "path": "x"}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def write_sweep(root: Path, *, skip: tuple[str, int] | None = None) -> Path:
    """Baseline and relocation (strength 1) cells at ratio 0.5, three heuristics × three seeds;
    ``skip``: that (heuristic, seed) of the relocation cell never finished."""
    for table, strength in ((BASELINE, 0.0), (RELOCATED, 1.0)):
        for heuristic, values in table.items():
            for seed, top1 in zip(SEEDS, values, strict=True):
                done = strength == 0 or skip != (heuristic, seed)
                write_run(root, heuristic, seed, top1 if done else None, strength=strength)
    return root


# --- stats: hand-computed numbers -------------------------------------------------------------


def test_summary_and_spread_use_ddof_1() -> None:
    s = summarize([64, 65, 69])
    assert (s.n, s.mean, s.std) == pytest.approx((3, 66.0, math.sqrt(7)))
    assert summarize([5.0]).std is None and summarize([]).mean is None
    s = spread([62, 66, 42])
    assert (s.std, s.range, s.mean) == pytest.approx((math.sqrt(496 / 3), 24, 170 / 3))
    assert spread([62]).std is None


def baseline_table() -> np.ndarray:
    return np.array([BASELINE[h] for h in ("l1", "taylor", "random")], dtype=float)


def test_two_way_anova_separates_seed_noise() -> None:
    a = two_way_anova(baseline_table())
    # row means 62, 66, 42; column means 164/3, 57, 175/3; grand mean 170/3
    assert a.ms_heuristic == pytest.approx(496)
    assert a.ms_seed == pytest.approx(31 / 3)
    assert a.ms_error == pytest.approx(7 / 3)  # residuals 0, ∓1/3, ∓4/3, ±5/3 over 4 df
    assert a.f == pytest.approx(1488 / 7)
    assert a.p == pytest.approx((7 / 751) ** 2)  # F(2, 4): P(F > x) = (1 + x/2)^-2
    assert a.sd_heuristic == pytest.approx(math.sqrt(1481 / 9))
    assert a.sd_seed == pytest.approx(math.sqrt(8 / 3))
    assert a.sd_residual == pytest.approx(math.sqrt(7 / 3))


def test_anova_is_undefined_with_one_seed_and_without_residual_noise() -> None:
    one_seed = two_way_anova(np.array([[60.0], [70.0]]))
    assert (one_seed.seeds, one_seed.f, one_seed.sd_heuristic) == (1, None, None)
    additive = two_way_anova(np.array([[60.0, 62.0], [70.0, 72.0]]))  # no interaction at all
    assert additive.ms_error == 0 and additive.f is None and additive.p is None
    assert additive.sd_heuristic == pytest.approx(math.sqrt(100 / 2))


def test_complete_table_keeps_the_seeds_every_heuristic_has() -> None:
    values = {("a", 0): 1.0, ("a", 1): 2.0, ("a", 2): 3.0, ("b", 0): 4.0, ("b", 2): 5.0}
    seeds, table = complete_table(values, ["a", "b"])
    assert seeds == [0, 2]
    assert table.tolist() == [[1.0, 3.0], [4.0, 5.0]]


def test_spread_ratio_and_its_paired_bootstrap() -> None:
    relocated = np.array([RELOCATED[h] for h in ("l1", "taylor", "random")], dtype=float)
    baseline = baseline_table()
    ratio = spread_ratio([67, 68, 64], [62, 66, 42], relocated, baseline, resamples=500, seed=3)
    assert ratio.ratio == pytest.approx(math.sqrt(13 / 496))  # std 2.08 ÷ 12.86
    assert ratio.mean_difference == pytest.approx(29 / 3)
    assert ratio.low <= ratio.ratio <= ratio.high
    assert ratio.difference_low <= 29 / 3 <= ratio.difference_high
    again = spread_ratio([67, 68, 64], [62, 66, 42], relocated, baseline, resamples=500, seed=3)
    assert (again.low, again.high) == (ratio.low, ratio.high)
    one = spread_ratio([67, 68], [62, 66], relocated[:2, :1], baseline[:2, :1], resamples=9, seed=0)
    assert one.ratio == pytest.approx(0.25) and one.low is None and one.high is None


def test_the_permutation_test_tells_a_narrowed_spread_from_the_same_one() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.5, size=(2, 9, 5))
    levels = np.linspace(90, 98, 9)[:, None]  # the baseline's heuristics 8 points apart
    baseline = levels + noise[0]
    narrowed = 97 + (levels - 94) * 0.1 + noise[1]  # a tenth of the spread
    assert permutation_p(narrowed, baseline, resamples=999, seed=0) == pytest.approx(1 / 1000)
    same = levels + rng.normal(0, 0.5, size=(9, 5))
    assert permutation_p(same, baseline, resamples=999, seed=0) > 0.05
    assert permutation_p(baseline, baseline, resamples=99, seed=0) == 1.0
    assert permutation_p(narrowed[:, :1], baseline[:, :1], resamples=99, seed=0) is None
    ratio = spread_ratio(
        list(narrowed.mean(1)), list(baseline.mean(1)), narrowed, baseline, resamples=999, seed=0
    )
    assert ratio.p_permutation == pytest.approx(1 / 1000) and ratio.high < 0.3


# --- cells ------------------------------------------------------------------------------------


def test_runs_group_into_cells_with_their_baseline(tmp_path: Path) -> None:
    write_sweep(tmp_path)
    write_run(tmp_path, "l1", 0, 70.0, strength=1.0, distill=1.0)
    cells, duplicates = group_cells(collect([tmp_path]).runs)
    assert not duplicates
    labels = [c.key.label for c in cells]
    assert labels == [  # distillation is a setting of its own, not merged into strength=1
        "dataset=synthetic model=i3d_tiny prune.ratio=0.5 relocation.strength=0 "
        "lowrank.weight=0 relocation.distill.weight=0",
        "dataset=synthetic model=i3d_tiny prune.ratio=0.5 relocation.strength=1 "
        "lowrank.weight=0 relocation.distill.weight=0",
        "dataset=synthetic model=i3d_tiny prune.ratio=0.5 relocation.strength=1 "
        "lowrank.weight=0 relocation.distill.weight=1",
    ]
    assert len(cells[0].runs) == 9 and sorted(cells[0].runs)[0] == ("l1", 0)
    assert baseline_of(cells[1], cells) is cells[0]
    assert baseline_of(cells[2], cells) is cells[0]
    assert baseline_of(cells[0], cells) is None


def test_cell_statistics_and_ratio_against_the_baseline(tmp_path: Path) -> None:
    cells, _ = group_cells(collect([write_sweep(tmp_path)]).runs)
    base, relocated = analyze(cells, resamples=300, seed=0)
    taylor = base.heuristics[2]
    assert (taylor.heuristic, taylor.seeds) == ("taylor", [0, 1, 2])
    assert (taylor.top1.mean, taylor.top1.std) == pytest.approx((66, math.sqrt(7)))
    assert taylor.means["video_top1"] == pytest.approx(67)
    assert taylor.means["pruned_top1_bn_recal"] == pytest.approx(33)
    assert base.spread.range == pytest.approx(24)
    assert base.anova.f == pytest.approx(1488 / 7)
    assert base.ratio is None and relocated.baseline == base.cell.key
    assert relocated.ratio.ratio == pytest.approx(math.sqrt(13 / 496))
    assert relocated.ratio.seeds == 3
    assert relocated.ratio.low <= relocated.ratio.ratio <= relocated.ratio.high
    # random is the baseline's worst: without it l1 (62 -> 67) and taylor (66 -> 68) remain
    assert relocated.worst == "random" and list(relocated.without) == ["random"]
    without = relocated.without["random"]
    assert without.heuristics == 2 and without.seeds == 3
    assert without.ratio == pytest.approx(1 / 4)  # |67 - 68| / |62 - 66|
    assert without.mean_difference == pytest.approx((5 + 2) / 2)
    assert 0 < relocated.ratio.p_permutation <= 1


def write_arm_run(
    root: Path, arm: str, heuristic: str, seed: int, top1: float, epochs: int
) -> None:
    """A run of a study's arm (``arm=<arm>``): the arms differ in their tuned learning rate
    and relocation settings, the budget (``finetune.epochs``) varies within each arm."""
    strength = 0.0 if arm == "baseline" else 1.0
    run = write_run(root / f"{arm}-{epochs}", heuristic, seed, top1, strength=strength)
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    config["finetune"] = {"epochs": epochs, "optimizer": {"lr": 0.002 if strength else 0.001}}
    config["relocation"]["distill"]["weight"] = 1.0  # both arms distil: never the difference
    config["relocation"]["compensate"] = arm == "span"
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    choices = {"arm": arm, "heuristic": heuristic, "debug": None}
    (run / ".hydra" / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}})
    )


def test_a_studys_arms_pair_with_the_baseline_arm_of_the_same_budget(tmp_path: Path) -> None:
    for epochs, shift in ((5, 0), (10, 3)):
        for arm, table in (("baseline", BASELINE), ("span", RELOCATED)):
            for heuristic, values in table.items():
                for seed, top1 in zip(SEEDS, values, strict=True):
                    write_arm_run(tmp_path, arm, heuristic, seed, top1 + shift, epochs)
    cells, _ = group_cells(collect([tmp_path]).runs)
    assert [(c.choices["arm"], c.key.extras[0]) for c in cells] == [
        ("baseline", ("finetune.epochs", 5)),
        ("span", ("finetune.epochs", 5)),
        ("baseline", ("finetune.epochs", 10)),
        ("span", ("finetune.epochs", 10)),
    ]
    assert [c.baseline_relocation for c in cells] == [True, False, True, False]
    assert baseline_of(cells[1], cells) is cells[0] and baseline_of(cells[3], cells) is cells[2]
    stats = analyze(cells, resamples=200, seed=0)
    assert stats[3].ratio.ratio == pytest.approx(math.sqrt(13 / 496))
    keys = [dict(c.key.fields()) for c in cells]
    labels = short_labels(keys, [c.choices for c in cells], leave_out=("finetune.epochs",))
    assert labels == ["arm=baseline", "arm=span", "arm=baseline", "arm=span"]


def test_keys_that_change_with_the_dataset_or_never_define_a_cell_do_not_split(
    tmp_path: Path,
) -> None:
    # dataset.root differs only between data sets, dataset.num_workers (= seed) never counts
    for dataset in ("synthetic", "ucf101"):
        for seed in (0, 1):
            write_run(tmp_path, "l1", seed, 50.0, dataset=dataset)
    cells, _ = group_cells(collect([tmp_path]).runs)
    assert [c.key for c in cells] == [
        CellKey("synthetic", "i3d_tiny", 0.5, 0.0, 0.0),
        CellKey("ucf101", "i3d_tiny", 0.5, 0.0, 0.0),
    ]
    assert all(c.seeds == [0, 1] for c in cells)


def test_runs_without_a_resolved_config_are_told_apart_by_their_relocation_block(
    tmp_path: Path,
) -> None:
    """A list-valued setting (relocation.target=[bn,span]) names a cell like a single one."""
    for seed, target in ((0, "bn"), (1, "bn"), (0, ["bn", "span"]), (1, ["bn", "span"])):
        run = write_run(tmp_path / str(target), "l1", seed, 50.0, strength=1.0)
        shutil.rmtree(run / ".hydra")
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["relocation"] = {"strength": 1.0, "target": target, "span_positions": 4096}
        (run / "metrics.json").write_text(json.dumps(metrics))
    cells, _ = group_cells(collect([tmp_path]).runs)
    targets = sorted(str(cell.key.relocation()["relocation.target"]) for cell in cells)
    assert targets == ["('bn', 'span')", "bn"] and all(c.seeds == [0, 1] for c in cells)


# --- the command ------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_report_files_hold_the_numbers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = write_sweep(tmp_path / "sweep")
    main([str(sweep), "--bootstrap", "200", "--seed", "1"])
    printed = capsys.readouterr().out
    assert "12.86" in printed and "0.16" in printed  # baseline spread, ratio
    for name in (
        "report.md",
        "report.csv",
        "report.json",
        "accuracy_vs_ratio.png",
        "spread.png",
        "agreement.png",
    ):
        assert (sweep / name).stat().st_size > 0, name
    md = (sweep / "report.md").read_text()
    assert "66.00 ± 2.65" in md and "σ_H 12.83" in md and "p = 8.69e-05" in md
    assert "spread ratio 0.16" in md and "+9.67" in md and "(agreement.png)" in md
    rows = read_csv(sweep / "report.csv")
    assert len(rows) == 2 * (3 + 1)
    cell = next(r for r in rows if r["heuristic"] == "ALL" and r["relocation_strength"] == "1.0")
    assert cell["level"] == "cell" and cell["baseline"] == "C1"
    assert float(cell["spread_ratio"]) == pytest.approx(math.sqrt(13 / 496))
    l1 = next(r for r in rows if r["heuristic"] == "l1" and r["relocation_strength"] == "0.0")
    assert float(l1["top1_mean"]) == 62 and float(l1["top1_std"]) == 2
    data = json.loads((sweep / "report.json").read_text())
    assert data["cells"][0]["anova"]["ms_error"] == pytest.approx(7 / 3)


def test_agreement_from_the_saved_plans(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path)
    main([str(sweep), "--bootstrap", "10"])
    agreement = json.loads((sweep / "report.json").read_text())["agreement"]
    assert agreement["heuristics"] == ["l1", "random", "taylor"]
    tau = agreement["kendall_tau"]
    # layer a only (b has one channel): l1~taylor one swapped pair of 6, random reversed
    assert tau["mean"][0][2] == pytest.approx(2 / 3) and tau["mean"][0][1] == pytest.approx(-1)
    assert tau["mean"][1][2] == pytest.approx(-2 / 3)
    assert tau["dense_models"][0][2] == 3  # one per seed: baseline and relocation share it
    overlap = agreement["jaccard"]["prune.ratio=0.5"]["mean"]
    # both layers averaged: a {0,1} vs {0,1} or {2,3}; b nothing removed (1.0)
    assert overlap[0][2] == pytest.approx(1.0) and overlap[0][1] == pytest.approx(0.5)


def test_agreement_without_dense_cache_pairs_runs_by_seed(tmp_path: Path) -> None:
    for heuristic in ("l1", "taylor"):
        for seed in (0, 1):
            write_run(tmp_path, heuristic, seed, 50.0 + seed, dense_key=False)
    write_run(tmp_path, "random", 5, 40.0, dense_key=False)  # no other heuristic has seed 5
    main([str(tmp_path), "--bootstrap", "10"])
    agreement = json.loads((tmp_path / "report.json").read_text())["agreement"]
    assert agreement["heuristics"] == ["l1", "random", "taylor"]
    assert agreement["kendall_tau"]["dense_models"][0][2] == 2
    assert agreement["kendall_tau"]["mean"][0][1] is None  # l1 and random share no dense model


def test_partial_sweep_lists_unfinished_runs_and_gaps(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", skip=("taylor", 2))
    (write_run(tmp_path / "sweep", "l1", 7, 1.0, ratio=0.3) / "metrics.json").write_text('{"he')
    text = write_run(tmp_path / "sweep", "l1", 8, 1.0, ratio=0.3) / "metrics.json"
    text.write_text(text.read_text().replace('"seed": 8', '"seed": "eight"'))
    main([str(sweep), "--bootstrap", "50"])
    data = json.loads((sweep / "report.json").read_text())
    kinds = sorted((p["kind"], p["detail"][:20]) for p in data["problems"])
    assert kinds == [
        ("corrupt", "metrics.json: Unterm"),  # "Unterminated string"
        ("corrupt", "metrics.json: seed n"),
        ("unfinished", "[heuristic=taylor] c"),
    ]
    unfinished = next(p for p in data["problems"] if p["kind"] == "unfinished")
    assert "cli.log: [ERROR] - finetune: loss is nan" in unfinished["detail"]
    assert data["gaps"] == [{"cell": "C2", "heuristic": "taylor", "seed": 2}]
    relocated = data["cells"][1]
    assert relocated["anova"]["common_seeds"] == [0, 1]
    assert relocated["ratio"]["seeds"] == 2
    md = (sweep / "report.md").read_text()
    assert "| C2 | taylor | 2 |" in md and "loss is nan" in md


def test_a_single_seed_gives_n_a_not_a_crash(tmp_path: Path) -> None:
    for heuristic, top1 in (("l1", 60.0), ("taylor", 64.0)):
        write_run(tmp_path, heuristic, 0, top1)
        write_run(tmp_path, heuristic, 0, top1 + 5, strength=1.0)
    main([str(tmp_path), "--bootstrap", "10"])
    cells = json.loads((tmp_path / "report.json").read_text())["cells"]
    assert cells[0]["anova"]["f"] is None
    assert cells[1]["ratio"]["ratio"] == pytest.approx(1.0) and cells[1]["ratio"]["low"] is None
    assert "seed noise removed: n/a" in (tmp_path / "report.md").read_text()


def test_a_missing_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "skr-report"
    missing = tmp_path / "missing"
    result = subprocess.run(
        [str(script), str(missing)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"skr-report: error: {missing}: no such file or directory"
    ]


def test_a_folder_without_runs_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "empty")])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"skr-report: error: {tmp_path / 'empty'}: holds no runs "
        "(no metrics.json or .hydra/config.yaml)"
    ]
    assert not list((tmp_path / "empty").rglob("report.*"))


def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = write_sweep(tmp_path)
    for argv in ([str(sweep), "--bootstrap", "0"], [str(sweep), "--wandb-mode", "loud"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("skr-report: error: ")


def test_wandb_offline_writes_a_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)  # the test session disables wandb
    sweep = write_sweep(tmp_path / "sweep")
    main([str(sweep), "--out", str(tmp_path / "out"), "--wandb", "--bootstrap", "10"])
    runs = list((tmp_path / "out" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
    images = sorted(p.name.split("_0_")[0] for p in runs[0].rglob("media/images/*.png"))
    assert images == ["accuracy_vs_ratio", "agreement", "answer", "spread"]
    assert any(runs[0].rglob("media/table/*.json"))
    assert "wandb (offline)" in capsys.readouterr().out


def test_wandb_group_is_the_sweeps_logger_group_or_its_folder(tmp_path: Path) -> None:
    write_sweep(tmp_path / "quickstart")
    runs = collect([tmp_path / "quickstart"]).runs
    assert sweep_group(runs) == "quickstart"  # logger.group is null
    named = [Run(r.path, r.metrics, {**r.config, "logger.group": "skr-sweep"}) for r in runs]
    assert sweep_group(named) == "skr-sweep"


def test_a_run_found_twice_is_listed_as_duplicate_and_counted_once(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep")
    first = next(p for p in sorted(sweep.iterdir()) if p.is_dir())
    shutil.copytree(first, tmp_path / "sweep" / "rerun" / first.name)
    main([str(sweep), "--bootstrap", "10"])
    data = json.loads((sweep / "report.json").read_text())
    assert [p["kind"] for p in data["problems"]] == ["duplicate"]
    assert [len(c["runs"]) for c in data["cells"]] == [9, 9]
    assert data["cells"][0]["spread"]["range"] == pytest.approx(24)


# --- plots: short names, legends outside, units, one figure per question --------------------


def fake_report(ratios: tuple[float, ...], options: tuple[str, ...]) -> dict:
    """A report.json with a cell per (low-rank weight, prune ratio, relocation option); the
    first option is the baseline."""
    cells = []
    for weight in (0.0, 0.02):
        for ratio in ratios:
            for i, option in enumerate(options):
                key = {
                    "dataset": "synthetic",
                    "model": "i3d_tiny",
                    "prune.ratio": ratio,
                    "relocation.strength": 10.0 * i,
                    "lowrank.weight": weight,
                    "relocation.epochs": 1 + (i > 0),
                }
                cells.append(
                    {
                        "id": f"C{len(cells) + 1}",
                        "key": key,
                        "choices": {"relocation": option, "prune": "default"},
                        "baseline_relocation": i == 0,
                        "spread": {"mean": 60 - 50 * ratio + i, "std": 10.0 - i},
                        "ratio": None
                        if i == 0
                        else {"ratio": 1 - 0.1 * i, "low": 0.5, "high": 1.2},
                        "runs": [],
                    }
                )
    return {"cells": cells, "plots": [], "agreement": None}


def arm_report() -> dict:
    """A report.json of a study's three arms at three prune ratios, and at ratio 0.5 also at
    3 and 30 epochs after scoring for the baseline and the span arm."""
    cells = []
    for ratio in (0.3, 0.5, 0.7):
        for budget in (3, 10, 30) if ratio == 0.5 else (10,):
            for i, arm in enumerate(("baseline", "penalty", "span")):
                if budget != 10 and arm == "penalty":
                    continue
                key = {"prune.ratio": ratio, "finetune.optimizer.lr": 0.001 * (i + 1)}
                key["finetune.epochs"] = budget
                std = (8 - 2 * i) * (10 / budget) ** 0.5
                cells.append(
                    {
                        "id": f"C{len(cells) + 1}",
                        "key": key,
                        "choices": {"arm": arm},
                        "baseline_relocation": i == 0,
                        "spread": {"mean": 90.0, "std": std, "low": std / 2, "high": std * 2},
                        "ratio": None if i == 0 else {"ratio": 0.5, "low": 0.3, "high": 0.8},
                        "heuristics": [{"finetune_epochs_mean": budget}],
                    }
                )
    return {"cells": cells}


def test_the_answer_figure_shows_the_spread_per_ratio_and_against_the_budget() -> None:
    cells = plot_cells(arm_report())
    assert {c.family for c in cells} == {"arm=baseline", "arm=penalty", "arm=span"}
    assert sorted({c.budget for c in cells}) == [3.0, 10.0, 30.0]
    fig = answer_figure(cells)
    left, right = fig.axes
    assert len(left.patches) == 9  # 3 ratios x 3 arms, at the 10 epochs every ratio has
    assert [t.get_text() for t in left.get_xticklabels()] == ["0.3", "0.5", "0.7"]
    assert len(right.lines) >= 2 and "0.5" in right.get_title()
    assert [t.get_text() for t in fig.legends[0].texts] == [
        "arm=baseline",
        "arm=penalty",
        "arm=span",
    ]
    plt.close(fig)
    one_budget = {"cells": [c for c in arm_report()["cells"] if c["key"]["finetune.epochs"] == 10]}
    fig = answer_figure(plot_cells(one_budget))
    assert len(fig.axes) == 1
    plt.close(fig)
    assert answer_figure(plot_cells({"cells": one_budget["cells"][:1]})) is None


def legend_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().texts]


def test_variants_are_named_by_the_option_or_the_keys_that_differ() -> None:
    keys = [
        {"dataset": "d", "prune.ratio": 0.5, "relocation.strength": s, "relocation.epochs": e}
        for s, e in ((0.0, 1), (272.0, 2), (272.0, 1))
    ]
    options = [{"relocation": "default"}, {"relocation": "skr"}, {"relocation": "skr"}]
    assert short_labels(keys, options) == [
        "relocation=default relocation.epochs=1",  # epochs differs within relocation=skr
        "relocation=skr relocation.epochs=2",
        "relocation=skr relocation.epochs=1",
    ]
    assert short_labels(keys[:2], options[:2]) == ["relocation=default", "relocation=skr"]
    assert short_labels(keys[:2], [{}, {}], leave_out=("relocation.epochs",)) == [
        "relocation.strength=0",
        "relocation.strength=272",
    ]


def test_plot_labels_are_short_and_the_report_lists_their_keys(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path)
    for run in sweep.iterdir():  # Hydra's record of the chosen options
        option = "skr" if "strength=1" in run.name else "default"
        choices = {"hydra": {"runtime": {"choices": {"relocation": option, "hydra/sweeper": "x"}}}}
        (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(choices))
    main([str(sweep), "--bootstrap", "10"])
    data = json.loads((sweep / "report.json").read_text())
    assert data["cells"][1]["choices"] == {"relocation": "skr"}
    for fig in (accuracy_figure(plot_cells(data)), spread_figure(plot_cells(data))):
        assert sorted(set(legend_texts(fig))) == ["relocation=default", "relocation=skr"]
    md = (sweep / "report.md").read_text()
    assert "| `relocation=skr` | C2 | dataset=synthetic model=i3d_tiny relocation.strength=1" in md


def test_legends_sit_outside_the_data_and_axes_name_their_units() -> None:
    cells = plot_cells(fake_report((0.3, 0.5, 0.7), ("default", "skr", "skr_distill")))
    accuracy, spread = accuracy_figure(cells), spread_figure(cells)
    for fig in (accuracy, spread):
        fig.canvas.draw()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None:
                box, frame = legend.get_window_extent(), ax.get_window_extent()
                assert box.x0 >= frame.x1  # right of the axes: covers no data
    assert legend_texts(accuracy)[0] == "relocation=default lowrank.weight=0"
    (ax,) = accuracy.axes
    assert "prune ratio" in ax.get_xlabel() and "top-1 (%)" in ax.get_ylabel()
    top, bottom = spread.axes
    assert "top-1 points" in top.get_ylabel() and "baseline" in bottom.get_ylabel()
    assert "prune ratio" in bottom.get_xlabel()


def test_figures_keep_one_panel_per_question_however_many_cells() -> None:
    small = plot_cells(fake_report((0.5,), ("default", "skr")))
    large = plot_cells(fake_report((0.1, 0.3, 0.5, 0.7, 0.9), tuple(f"o{i}" for i in range(8))))
    assert len(large) == 80
    for cells in (small, large):
        assert len(accuracy_figure(cells).axes) == 1
        assert len(spread_figure(cells).axes) == 2
    assert all(len(text) <= 40 and "{" not in text for text in legend_texts(accuracy_figure(large)))


def test_replot_redraws_the_files_from_report_json_alone(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep")
    main([str(sweep), "--bootstrap", "10"])
    copy = tmp_path / "copy"  # the report's files without the runs
    copy.mkdir()
    for name in ("report.json", "report.md"):
        shutil.copy(sweep / name, copy / name)
    main(["--replot", str(copy)])
    for name in ("accuracy_vs_ratio.png", "spread.png", "agreement.png", "report.md"):
        assert (copy / name).read_bytes() == (sweep / name).read_bytes(), name
    assert (copy / "report.json").read_bytes() == (sweep / "report.json").read_bytes()


def test_replot_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sweep = write_sweep(tmp_path / "sweep")
    for argv in (["--replot", str(tmp_path)], ["--replot", str(tmp_path), str(sweep)], []):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("skr-report: error: ")


def test_the_study_tables_give_each_arms_ratio_and_verdict(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import study_tables
    finally:
        sys.path.pop(0)
    assert study_tables.verdict({"ratio": 0.3, "low": 0.2, "high": 0.38}).startswith("reproduced")
    assert study_tables.verdict({"ratio": 0.5, "low": 0.3, "high": 0.7}) == "consistent with 60 %"
    assert study_tables.verdict({"ratio": 0.8, "low": 0.6, "high": 0.9}).startswith("narrower")
    assert study_tables.verdict({"ratio": 1.2, "low": 0.9, "high": 1.5}) == "no narrowing shown"
    cells = []
    for i, arm in enumerate(("baseline", "penalty", "span")):
        ratio = None if i == 0 else {
            "ratio": 1 - 0.3 * i, "low": 0.5 - 0.2 * i, "high": 1.1 - 0.3 * i,
            "mean_difference": 1.0 * i, "difference_low": 0.0, "difference_high": 2.0 * i,
            "p_permutation": 0.01, "seeds": 5, "heuristics": 9,
        }  # fmt: skip
        cells.append(
            {
                "key": {"prune.ratio": 0.5, "lowrank.weight": 0.0},
                "choices": {"arm": arm},
                "spread": {"mean": 95.0 + i, "std": 3.0 - i, "low": 2.0 - i, "high": 4.0 - i},
                "anova": {"common_seeds": [0, 1, 2, 3, 4], "sd_heuristic": 2.5 - i},
                "ratio": ratio,
                "without": {"random": ratio} if ratio else {},
                "worst": "random",
                "heuristics": [
                    {"heuristic": h, "top1_mean": 95.0 + i, "finetune_epochs_mean": 10}
                    for h in ("l1", "random")
                ],
                "runs": [{}] * 10,
            }
        )
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "report.json").write_text(json.dumps({"cells": cells}))
    out, readme = tmp_path / "agnosticism.md", tmp_path / "README.md"
    readme.write_text(f"# x\n\n{study_tables.BEGIN}\nold answer\n{study_tables.END}\n\n## next\n")
    argv, sys.argv = sys.argv, ["study_tables.py", "--reports", str(tmp_path), "--out", str(out)]
    sys.argv += ["--readme", str(readme)]
    try:
        study_tables.main()
    finally:
        sys.argv = argv
    answer = readme.read_text()
    assert "old answer" not in answer and answer.endswith(f"{study_tables.END}\n\n## next\n")
    assert "**Not decided yet.** With `arm=span`" in answer  # span's ratio 0.4 < penalty's 0.7
    assert "Still to come: ratio 0.3; ratio 0.7." in answer
    assert "| 0.5 | span | 5 | 0.40 [0.10, 0.50] | 0.010 | +2.00 [0.00, 4.00] |" in answer
    assert "from 30 of the study's 405 runs, 0 budget runs and 0 ablation runs" in answer
    text = out.read_text()
    assert "30 of the study's 405 runs finished" in text
    # every prune ratio with its seeds: Yes, Partly or No from the span arm's intervals
    span = cells[2]
    full = [span | {"key": {"prune.ratio": r, "lowrank.weight": 0.0}} for r in (0.3, 0.5, 0.7)]
    assert study_tables.headline(full, "span").startswith("**Yes.**")
    wider = dict(span["ratio"], ratio=1.3, low=1.1, high=1.6)
    assert study_tables.headline([c | {"ratio": wider} for c in full], "span").startswith("**No.**")
    mixed = [full[0] | {"ratio": wider}, *full[1:]]
    assert study_tables.headline(mixed, "span").startswith("**Partly.**")
    assert "| 0.5 | span | 5 | 97.00 | 1.00 [0.00, 2.00] | 0.50 | 0.40 [0.10, 0.50] | 0.010" in text
    assert text.count("consistent with 60 %") == 2  # both arms: their intervals reach 0.4
    assert (
        "| 0.5 | span | 0.40 [0.10, 0.50] | 0.40 [0.10, 0.50] | 0.40 [0.10, 0.50] (random) |"
        in text
    )
