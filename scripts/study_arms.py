"""The study's arms from their tuning: conf/arm/<arm>.yaml is each arm's best trial.

For each arm of ``experiment=study_tune_<arm>`` (baseline, penalty, span), reads its finished
trials under benchmarks/study/runs/tune_<arm>/ (val split), scores each trial by the mean minus
the std (ddof=1) of its final top-1 over the tuning's heuristics (a trial counts once every one
of them finished), and takes the best (the lowest trial number among equals). The arm is that
trial's relocation and fine-tuning settings: the values it drew from the search space, and the
``relocation.*`` and ``finetune.*`` keys its tuning experiments fix. Nothing else: the data,
split, prune ratio and budget are the study's.

    python scripts/study_arms.py            # checks conf/arm/*.yaml against the tuning
    python scripts/study_arms.py --write    # writes them (once the tuning has finished)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("baseline", "penalty", "span")
RUNS = ROOT / "benchmarks" / "study" / "runs"
EXPERIMENTS = ROOT / "conf" / "experiment"
ARM_DIR = ROOT / "conf" / "arm"
KEPT = ("relocation", "finetune")  # the config groups an arm sets


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested mapping; a search-space distribution stays one value."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not ({"choices", "low"} & set(value)):
            out |= flat(value, f"{name}.")
        else:
            out[name] = value
    return out


def experiment(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())


def fixed_settings(arm: str) -> dict[str, Any]:
    """The relocation.* and finetune.* keys that the arm's tuning experiments set."""
    found: dict[str, Any] = {}
    for name in ("study_tune", f"study_tune_{arm}"):
        keys = flat({k: v for k, v in experiment(name).items() if k in KEPT})
        found |= keys
    return found


def lookup(tree: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def scored_trials(arm: str, heuristics: list[str]) -> list[dict[str, Any]]:
    """Every trial of the arm with all ``heuristics`` finished: its number, top-1 per heuristic,
    objective (mean - std) and the values it drew; best first."""
    found: dict[int, dict[str, Any]] = {}
    for path in sorted((RUNS / f"tune_{arm}").glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        config = yaml.safe_load((path.parent / ".hydra" / "config.yaml").read_text())
        trial = int(config["search"]["trial"])
        entry = found.setdefault(trial, {"trial": trial, "top1": {}})
        entry["top1"][metrics["heuristic"]] = metrics["final"]["top1"]
        entry["drawn"] = {k: lookup(config, k) for k in flat(config["search"]["space"])}
    complete = [t for t in found.values() if set(heuristics) <= set(t["top1"])]
    for t in complete:
        values = [t["top1"][h] for h in heuristics]
        t["objective"] = statistics.mean(values) - statistics.stdev(values)
    return sorted(complete, key=lambda t: (-t["objective"], t["trial"]))


def nested(settings: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in sorted(settings.items()):
        node = tree
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def arm_text(arm: str, best: dict[str, Any], count: int, heuristics: list[str]) -> str:
    scores = ", ".join(f"{h} {best['top1'][h]:.1f}" for h in heuristics)
    header = [
        "# @package _global_",
        f"# The {arm} arm of the agnosticism study (experiment=study), written by",
        "# scripts/study_arms.py from its tuning on the val split (never the test split): trial",
        f"# {best['trial']} of {count} of experiment=study_tune_{arm}, the best by mean - std",
        f"# of the final val top-1 over {', '.join(heuristics)} ({scores}:",
        f"# {best['objective']:.2f}). Its relocation and fine-tuning settings: what the trial",
        "# drew, and what the tuning fixes.",
    ]
    body = nested(fixed_settings(arm) | best["drawn"])
    return "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=True)


def arm_files() -> dict[Path, str]:
    """Each tuned arm's file (conf/arm/<arm>.yaml) and the text its tuning gives it; exits in
    one line where an arm's tuning has not finished."""
    sweep = experiment("study_tune")["hydra"]["sweeper"]["params"]
    heuristics = sweep["heuristic"].split(",")
    first, end = sweep["search.trial"].removeprefix("range(").removesuffix(")").split(",")
    trials = int(end) - int(first)
    files = {}
    for arm in ARMS:
        ranked = scored_trials(arm, heuristics)
        if len(ranked) < trials:
            sys.exit(f"study_arms: {arm}: {len(ranked)} of {trials} trials finished; tune first")
        files[ARM_DIR / f"{arm}.yaml"] = arm_text(arm, ranked[0], trials, heuristics)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write conf/arm/*.yaml")
    args = parser.parse_args()
    files = arm_files()
    if args.write:
        for path, text in files.items():
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        return
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        sys.exit(f"study_arms: {names} differ from the tuning; run with --write")


if __name__ == "__main__":
    main()
