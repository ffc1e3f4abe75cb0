"""Random search as a Hydra sweep (search.trial), and what makes a study's sweep cheap: decoded
videos kept per process and the dense model's test figures kept beside its checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skr_cli.cli import apply_search
from skr_cli.data import clips
from skr_cli.report.cli import main as report_main
from skr_cli.search import SpaceError, draw, flatten_space

SKR_RUN = str(Path(sys.executable).parent / "skr-run")
SPACE = {
    "relocation.strength": {"low": 1, "high": 1000, "log": True},
    "relocation.epochs": {"low": 1, "high": 3, "int": True},
    "relocation.target": {"choices": ["bn", "weights"]},
    "relocation.ridge": {"low": 0.5, "high": 0.6},
}


def test_a_trial_is_a_seeded_draw_within_the_space() -> None:
    trials = [draw(SPACE, seed=0, trial=k) for k in range(200)]
    assert trials[7] == draw(SPACE, seed=0, trial=7)  # the same trial whatever ran before
    assert trials[7] != draw(SPACE, seed=1, trial=7)
    strengths = [t["relocation.strength"] for t in trials]
    assert all(1 <= s <= 1000 for s in strengths)
    # log-uniform: about a third of the draws in each decade
    assert 45 < sum(s < 10 for s in strengths) < 90 and 45 < sum(s > 100 for s in strengths) < 90
    assert {t["relocation.epochs"] for t in trials} == {1, 2, 3}
    assert all(isinstance(t["relocation.epochs"], int) for t in trials)
    assert {t["relocation.target"] for t in trials} == {"bn", "weights"}
    assert all(0.5 <= t["relocation.ridge"] <= 0.6 for t in trials)
    assert len({t["relocation.strength"] for t in trials}) > 150  # rounded to 3 digits only


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"a": {"low": 5, "high": 1}}, "low <= high"),
        ({"a": {"low": 0, "high": 1, "log": True}}, "log-uniform range needs low > 0"),
        ({"a": {"choices": []}}, "non-empty choices"),
        ({"a": {"low": 1, "high": 2, "step": 1}}, "is not allowed"),
        ({"a": 3}, "is not a distribution"),
    ],
)
def test_a_malformed_space_names_its_key(space: dict, message: str) -> None:
    with pytest.raises(SpaceError, match=message) as err:
        draw(space, seed=0, trial=0)
    assert "search.space.a" in str(err.value)


def test_a_space_may_be_nested_like_the_config() -> None:
    distill = {"weight": {"choices": [0, 1]}}
    nested = {"relocation": {"strength": {"low": 1, "high": 2}, "distill": distill}}
    assert flatten_space(nested) == {
        "relocation.strength": {"low": 1, "high": 2},
        "relocation.distill.weight": {"choices": [0, 1]},
    }


def test_a_trial_sets_the_config_and_its_record(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("search.trial=3", "+search.space.relocation.strength={low:1,high:9}")
    record = tmp_path / "config.yaml"
    record.write_text("relocation: {strength: 0}\n")
    values = apply_search(cfg, record)
    assert values == {
        "relocation.strength": draw(
            {"relocation.strength": {"low": 1, "high": 9}}, seed=0, trial=3
        )["relocation.strength"]
    }
    assert cfg.relocation.strength == values["relocation.strength"]
    assert yaml.safe_load(record.read_text())["relocation"]["strength"] == cfg.relocation.strength
    assert apply_search(make_cfg(), None) is None  # no trial: the config as composed


def test_decoded_videos_are_kept_once_per_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = []
    monkeypatch.setattr(clips, "_DECODED", {})
    monkeypatch.setattr(
        clips,
        "decode_all",
        lambda path, decoder: (
            calls.append(path) or (clips.torch.zeros(2, 4, 4, 3, dtype=clips.torch.uint8), 25.0)
        ),
    )
    video = tmp_path / "a.avi"
    video.write_bytes(b"x")
    for _ in range(3):  # three datasets of the same file in one process: one decode
        clips.decoded(video, "pyav")
    assert calls == [video]
    video.write_bytes(b"xy")  # rewritten: decoded again
    clips.decoded(video, "pyav")
    assert len(calls) == 2


@pytest.mark.slow
def test_a_random_search_sweep_records_and_ranks_its_trials(tmp_path: Path) -> None:
    env = os.environ | {"SKR_CACHE_DIR": str(tmp_path / "cache")}
    sweep_dir = tmp_path / "sweep"
    args = [
        SKR_RUN,
        "-m",
        f"hydra.sweep.dir={sweep_dir}",
        "debug=smoke",
        "logger.mode=disabled",
        "search.trial=0,1",
        "heuristic=l1,random",
        "search.seed=5",
        "+search.space.relocation.strength={low:10,high:1000,log:true}",
        "+search.space.relocation.compensate={choices:[false,true]}",
    ]
    result = subprocess.run(
        args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    space = {
        "relocation.strength": {"low": 10, "high": 1000, "log": True},
        "relocation.compensate": {"choices": [False, True]},
    }
    dense = set()
    for trial in (0, 1):
        expected = draw(space, seed=5, trial=trial)
        for heuristic in ("l1", "random"):
            # the folder is named by every override, the space's included
            (run,) = sweep_dir.glob(f"*,heuristic={heuristic},search.seed=5,search.trial={trial}")
            metrics = json.loads((run / "metrics.json").read_text())
            config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
            assert metrics["search"] == {"trial": trial, "seed": 5}
            assert metrics["relocation_strength"] == expected["relocation.strength"]
            assert config["relocation"]["strength"] == expected["relocation.strength"]
            assert config["relocation"]["compensate"] == expected["relocation.compensate"]
            figures = {k: v for k, v in metrics["dense"].items() if k != "latency_ms"}
            dense.add(json.dumps(figures, sort_keys=True))
    # the four runs prune one dense model, evaluated once: its figures are kept beside it
    assert len(dense) == 1
    (key,) = os.listdir(tmp_path / "cache" / "dense")
    assert len(list((tmp_path / "cache" / "dense" / key).glob("eval_test_*.json"))) == 1

    report_main([str(sweep_dir), "--out", str(tmp_path / "report"), "--bootstrap", "50"])
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    ranking = report["ranking"]
    assert len(ranking) == 2  # one cell per trial, named by its drawn values
    assert ranking[0]["objective"] >= ranking[1]["objective"]
    strengths = {
        f"relocation.strength={draw(space, seed=5, trial=k)['relocation.strength']:g}"
        for k in (0, 1)
    }
    assert {s for s in strengths if any(s in r["cell"] for r in ranking)} == strengths
    assert "Cells ranked by mean − std" in (tmp_path / "report" / "report.md").read_text()


def test_a_trial_without_a_space_is_one_line(skr_run) -> None:
    result = skr_run("search.trial=0", "logger.mode=disabled")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "skr-run: error: search.space={} is not allowed: at least one key to draw when "
        "search.trial is set"
    ]
    bad = skr_run(
        "search.trial=0",
        "+search.space.relocation.strenth={low:1,high:2}",
        "logger.mode=disabled",
        out="bad",
    )
    assert bad.stderr.strip().splitlines() == [
        "skr-run: error: search.space.relocation.strenth: no such config key"
    ]
