"""Writes benchmarks/calibration.md (+ .json): how precise the study's instrument is, and how it
compares with what published pruning studies report.

Run by scripts/calibrate.sh (``make calibrate``) after its sweeps:
    python scripts/calibration_tables.py
It reads the finished runs under benchmarks/calibration/runs/:
- dense/seed=*/: eval_dense.json (the study's dense model per seed), agreement.json (every
  heuristic scored on it; reduced to agreement_mean.json and, with dense.pt's filter sizes, to
  agreement_fan_in.json, both kept in git) and timings.json;
  dense_e30/seed=*/: the same with the 30-epoch recipe that this one replaced;
- tune/*/metrics.json: the baseline's fine-tuning learning rate on the val split;
- study/*/metrics.json: every heuristic at prune ratio 0.5 with the study's budget, 5 seeds;
- budget/*/metrics.json: every heuristic with other fine-tuning budgets (and at ratio 0.3).
A part whose runs are missing says so instead of a number.
"""

from __future__ import annotations

import datetime
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from scipy import stats as scipy_stats

from skr_cli.report.write import num, signed, table

OUT = Path("benchmarks")
RUNS = OUT / "calibration" / "runs"
MAIN_HEURISTICS = (
    "l1",
    "l2",
    "taylor",
    "taylor_weight",
    "apoz",
    "bn_scale",
    "fpgm",
    "svd_entropy",
    "random",
)


def finished(sweep: str) -> list[tuple[Path, dict[str, Any]]]:
    """(run folder, metrics) of every finished run of a sweep."""
    paths = sorted((RUNS / sweep).glob("*/metrics.json"))
    return [(path.parent, json.loads(path.read_text())) for path in paths]


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def binomial_se(top1: float, count: int) -> float:
    p = top1 / 100
    return 100 * math.sqrt(p * (1 - p) / count)


# ------------------------------------------------------------------------------------- dense


def agreement_mean(run_dir: Path) -> dict[str, Any] | None:
    """The layer-mean τ and Jaccard matrices of a dense run (kept small in agreement_mean.json)."""
    small = run_dir / "agreement_mean.json"
    if not small.exists():
        full = run_dir / "agreement.json"
        if not full.exists():
            return None
        data = json.loads(full.read_text())
        keep = {
            "heuristics": data["heuristics"],
            "kendall_tau": data["kendall_tau"]["mean"],
            "jaccard": data["jaccard"]["mean"],
        }
        small.write_text(json.dumps(keep, indent=1) + "\n")
    return json.loads(small.read_text())


FAN_IN_BINS = ((0, 100), (100, 300), (300, 1000), (1000, None))  # weights per filter


def l1_l2_by_fan_in(run_dir: Path) -> dict[str, Any] | None:
    """Per layer of a dense run, Kendall τ between its l1 and l2 scores against the weights per
    filter (input channels × kernel volume), kept small in agreement_fan_in.json: do the two
    norms order small filters less alike?"""
    small = run_dir / "agreement_fan_in.json"
    if not small.exists():
        full, weights = run_dir / "agreement.json", run_dir / "dense.pt"
        if not (full.exists() and weights.exists()):
            return None
        from skr_cli.engine.checkpoint import safe_load

        data = json.loads(full.read_text())
        state = safe_load(weights)
        state = state.get("model", state)
        pairs = []
        for layer in data["layers"]:
            convs = [k for k in state if k.startswith(f"{layer}.") and k.endswith("weight")]
            convs = [k for k in convs if state[k].dim() == 5]
            if convs:
                scores = data["scores"]
                tau = scipy_stats.kendalltau(scores["l1"][layer], scores["l2"][layer])
                pairs.append((int(state[convs[0]][0].numel()), float(tau.statistic)))
        small.write_text(json.dumps({"fan_in_tau": pairs}) + "\n")
    return json.loads(small.read_text())


def fan_in_part() -> dict[str, Any]:
    """τ(l1, l2) per layer over the 5 dense models, by weights per filter."""
    pairs = []
    for path in sorted((RUNS / "dense").glob("seed=*")):
        found = l1_l2_by_fan_in(path)
        if found:
            pairs += found["fan_in_tau"]
    if len(pairs) < 3:
        return {}
    bins = {}
    for low, high in FAN_IN_BINS:
        taus = [t for f, t in pairs if f >= low and (high is None or f < high)]
        if taus:
            bins[f"{low}–{high}" if high else f"≥ {low}"] = (statistics.fmean(taus), len(taus))
    rho = scipy_stats.spearmanr([f for f, _ in pairs], [t for _, t in pairs])
    spearman = (float(rho.statistic), float(rho.pvalue))
    return {"layers": len(pairs), "bins": bins, "spearman": spearman}


def agreement_text(dense: dict[str, Any]) -> str:
    """The l1 and l2 plans' overlap, and τ(l1, l2) per layer by the weights per filter."""
    jaccard = dense["jaccard"]
    text = (
        f"plans at ratio 0.5: Jaccard l1–l2 {num(jaccard.get('l1-l2'), 2)} (l1–random "
        f"{num(jaccard.get('l1-random'), 2)})"
    )
    fan_in = dense["fan_in"]
    if fan_in:
        bins = ", ".join(f"{name}: {tau:.2f} ({n})" for name, (tau, n) in fan_in["bins"].items())
        rho, p = fan_in["spearman"]
        text += (
            f"; per layer by weights per filter (layers × seeds): {bins}; Spearman ρ "
            f"{rho:.2f} (p {p:.3f}) over {fan_in['layers']}"
        )
    return text


def dense_seeds(sweep: str) -> dict[int, float]:
    """Seed → the dense model's test top-1, for a dense sweep."""
    seeds = {}
    for path in (RUNS / sweep).glob("seed=*/eval_dense.json"):
        seeds[int(path.parent.name.split("=")[1])] = json.loads(path.read_text())["top1"]
    return dict(sorted(seeds.items()))


def dense_recipes() -> dict[str, Any]:
    """The dense recipes tried (pretraining epochs → per-seed top-1, mean, std)."""
    recipes = {}
    for sweep in ("dense_e30", "dense"):
        seeds = dense_seeds(sweep)
        configs = sorted((RUNS / sweep).glob("seed=*/.hydra/config.yaml"))
        if not seeds or not configs:
            continue
        epochs = OmegaConf.load(configs[0]).train.epochs
        mean, std = mean_std(list(seeds.values()))
        recipes[f"{epochs} epochs"] = {"sweep": sweep, "seeds": seeds, "mean": mean, "std": std}
    return recipes


def dense_seconds() -> list[tuple[float, int, str]]:
    """(seconds, training videos, sweep) of every dense model trained inside a run: the dense
    sweep's (timings.json), the study's and the tuning's (metrics.json)."""
    found = []
    for path in sorted((RUNS / "dense").glob("seed=*/timings.json")):
        data = json.loads(path.read_text())
        seconds = data["dense_cache"].get("train_seconds")  # recorded by every run since
        if seconds is None and not data["dense_cache"]["cached"]:
            seconds = data["timings_s"]["pretrain"]
        if seconds is not None:
            found.append((seconds, 2160, "dense"))
    for sweep in ("study", "tune"):
        for _, m in finished(sweep):
            if not m["dense_cache"]["cached"]:
                found.append((m["timings_s"]["pretrain"], m["data"]["train_videos"], sweep))
    return found


def dense_part() -> dict[str, Any]:
    seeds: dict[int, dict[str, Any]] = {}
    for path in sorted((RUNS / "dense").glob("seed=*/eval_dense.json")):
        seed = int(path.parent.name.split("=")[1])
        result = json.loads(path.read_text())
        seeds[seed] = {"top1": result["top1"], "agreement": agreement_mean(path.parent)}
    tops = [seeds[s]["top1"] for s in sorted(seeds)]
    mean, std = mean_std(tops)
    count = test_videos()
    part: dict[str, Any] = {
        "seeds": {s: seeds[s]["top1"] for s in sorted(seeds)},
        "mean": mean,
        "std": std,
        "test_videos": count,
        "binomial_se": binomial_se(mean, count) if mean is not None and count else None,
    }
    pairs: dict[str, list[float]] = defaultdict(list)
    jaccard: dict[str, list[float]] = defaultdict(list)
    for seed in sorted(seeds):
        agreement = seeds[seed]["agreement"]
        if agreement is None:
            continue
        names = agreement["heuristics"]
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if i < j:
                    pairs[f"{a}-{b}"].append(agreement["kendall_tau"][i][j])
                    jaccard[f"{a}-{b}"].append(agreement["jaccard"][i][j])
    part["recipes"] = dense_recipes()
    part["jaccard"] = {pair: statistics.fmean(v) for pair, v in jaccard.items()}
    part["fan_in"] = fan_in_part()
    part["kendall_tau"] = {pair: statistics.fmean(v) for pair, v in pairs.items()}
    part["kendall_tau_seeds"] = {pair: len(v) for pair, v in pairs.items()}
    return part


def test_videos() -> int | None:
    """The test split's size, from a finished run or else from a dense run's config."""
    for path in sorted((RUNS / "study").glob("*/metrics.json")):
        return json.loads(path.read_text())["data"]["test_videos"]
    for path in sorted((RUNS / "dense").glob("*/.hydra/config.yaml")):
        dataset = OmegaConf.load(path).dataset
        generator = dataset.generator
        return generator.test_groups * generator.clips_per_group * dataset.num_classes
    return None


# -------------------------------------------------------------------------------------- tune


def tune_part() -> dict[str, Any]:
    """Per fine-tuning setting (learning rate, epochs) the final val top-1 of each heuristic."""
    by_lr: dict[str, dict[str, float]] = defaultdict(dict)
    for run_dir, metrics in finished("tune"):
        config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        setting = f"{config.finetune.optimizer.lr} × {config.finetune.epochs} epochs"
        by_lr[setting][metrics["heuristic"]] = metrics["final"]["top1"]
    rows = {}

    def numeric(setting: str) -> tuple[float, int]:
        lr, epochs = setting.removesuffix(" epochs").split(" × ")
        return float(lr), int(epochs)

    for lr, tops in sorted(by_lr.items(), key=lambda item: numeric(item[0])):
        mean, std = mean_std(list(tops.values()))
        rows[lr] = {
            "heuristics": tops,
            "mean": mean,
            "std": std,
            "objective": None if std is None else mean - std,
        }
    complete = {lr: row for lr, row in rows.items() if row["objective"] is not None}
    best = max(complete, key=lambda lr: complete[lr]["objective"]) if complete else None
    return {"rates": rows, "best": best}


# ------------------------------------------------------------------------------------- study


def study_part() -> dict[str, Any]:
    runs = finished("study")
    per: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for _, metrics in runs:
        per[metrics["heuristic"]][metrics["seed"]] = metrics
    heuristics: dict[str, Any] = {}
    for name in sorted(per, key=lambda n: MAIN_HEURISTICS.index(n) if n in MAIN_HEURISTICS else 99):
        seeds = per[name]
        final = [m["final"]["top1"] for m in seeds.values()]
        start = [m["finetune_start"]["top1"] for m in seeds.values()]
        raw = [m["pruned"]["top1"] for m in seeds.values()]
        recal = [m["pruned"]["top1_bn_recal"] for m in seeds.values()]
        heuristics[name] = {
            "seeds": len(seeds),
            "final": mean_std(final),
            "start": mean_std(start),
            "raw": mean_std(raw),
            "bn_recal": mean_std(recal),
            "gain": mean_std([f - s for f, s in zip(final, start, strict=True)]),
        }
    stds = [h["final"][1] for h in heuristics.values() if h["final"][1] is not None]
    finals = {n: h["final"][0] for n, h in heuristics.items()}
    recals = {n: h["bn_recal"][0] for n, h in heuristics.items()}
    names = sorted(finals)
    spearman = None
    if len(names) >= 3:
        rho, p = scipy_stats.spearmanr([recals[n] for n in names], [finals[n] for n in names])
        raw = [heuristics[n]["raw"][0] for n in names]
        raw_rho, raw_p = (
            scipy_stats.spearmanr(raw, [finals[n] for n in names])
            if len(set(raw)) > 1
            else (math.nan, math.nan)  # every heuristic at the same accuracy (chance)
        )
        spearman = {"bn_recal": (float(rho), float(p)), "raw": (float(raw_rho), float(raw_p))}
    criteria = [finals[n] for n in names if n != "random"]
    gains = [h["gain"][0] for h in heuristics.values()]
    dense = [m["dense"]["top1"] for seeds in per.values() for m in seeds.values()]
    finetune_s = [m["timings_s"].get("finetune", 0) for _, m in runs]
    dense_phases = ("pretrain", "evaluate_dense")  # the shared dense model's, paid once per seed
    total_s = [sum(v for k, v in m["timings_s"].items() if k not in dense_phases) for _, m in runs]
    trained = dense_seconds()
    return {
        "runs": len(runs),
        "heuristics": heuristics,
        "median_std": statistics.median(stds) if stds else None,
        "spread": statistics.stdev(list(finals.values())) if len(finals) > 1 else None,
        "random_gap": (finals["random"] - statistics.fmean(criteria))
        if "random" in finals and criteria
        else None,
        "best_minus_random": (max(criteria) - finals["random"])
        if "random" in finals and criteria
        else None,
        "mean_gain": statistics.fmean(gains) if gains else None,
        "spearman": spearman,
        "dense_mean": statistics.fmean(dense) if dense else None,
        "seconds_per_run": statistics.fmean(total_s) if total_s else None,
        "finetune_seconds": statistics.fmean(finetune_s) if finetune_s else None,
        "dense_seconds": statistics.fmean(t * 2160 / n for t, n, _ in trained) if trained else None,
        "dense_measured": [
            {"seconds": t, "train_videos": n, "sweep": sweep} for t, n, sweep in trained
        ],
    }


# ------------------------------------------------------------------------------------ budget


def spread_row(finals: dict[str, float]) -> dict[str, Any]:
    """Spread across heuristics of their final top-1: std, range, random against the best."""
    criteria = {n: v for n, v in finals.items() if n != "random"}
    return {
        "heuristics": finals,
        "count": len(finals),
        "mean": statistics.fmean(finals.values()) if finals else None,
        "std": statistics.stdev(finals.values()) if len(finals) > 1 else None,
        "range": max(finals.values()) - min(finals.values()) if finals else None,
        "best_minus_random": max(criteria.values()) - finals["random"]
        if "random" in finals and criteria
        else None,
    }


def budget_part() -> dict[str, Any]:
    """Per (ratio, fine-tuning epochs) the spread over the heuristics' final top-1 at seed 0; the
    10-epoch budget at ratio 0.5 is the study's own seed-0 runs."""
    cells: dict[tuple[float, int], dict[str, float]] = defaultdict(dict)
    for sweep in ("budget", "study"):
        for _, m in finished(sweep):
            if m["seed"] == 0:
                cells[(m["prune_ratio"], m["finetune_epochs"])][m["heuristic"]] = m["final"]["top1"]
    rows = {  # a cell of one heuristic (ratio 0.7: what a run costs there) has no spread
        f"{ratio} × {epochs}": spread_row(finals)
        for (ratio, epochs), finals in sorted(cells.items())
        if len(finals) > 1
    }
    return {"cells": rows, "seeds": seeds_at_longest(), "cost": run_cost()}


def run_cost() -> dict[str, Any]:
    """Per prune ratio, a run's phase seconds (pretraining aside) as ``fixed + per_epoch ×
    fine-tuning epochs``, from the budget sweep's seed-0 runs (two jobs at a time on 2 cores),
    and the study run at 10 epochs it gives. At ratio 0.5 (every heuristic at 1, 3 and 30
    epochs) both come from a least-squares fit; the other ratios have few runs and take its fixed
    part, with the fine-tuning phase's seconds per epoch: the slope over their budgets where
    there are two (the first epoch of a job that is first in its process also decodes the
    videos into the cache), else the mean over their runs."""
    points: dict[float, list[tuple[int, float, float]]] = defaultdict(list)
    for _, m in finished("budget"):
        if m["seed"] != 0:
            continue
        seconds = sum(v for k, v in m["timings_s"].items() if k != "pretrain")
        finetune = m["timings_s"]["finetune"]
        points[m["prune_ratio"]].append((m["finetune_epochs"], seconds, finetune))
    at_half = points.get(0.5, [])
    if len({e for e, _, _ in at_half}) < 2:
        return {}
    fit = scipy_stats.linregress([e for e, _, _ in at_half], [t for _, t, _ in at_half])
    fits = {"0.5": {"runs": len(at_half), "fixed": fit.intercept, "per_epoch": fit.slope}}
    for ratio, runs in sorted(points.items()):
        if ratio == 0.5:
            continue
        if len({e for e, _, _ in runs}) > 1:
            slope = scipy_stats.linregress([e for e, _, _ in runs], [f for _, _, f in runs])
            per_epoch = slope.slope
        else:
            per_epoch = statistics.fmean(f / e for e, _, f in runs)
        fits[str(ratio)] = {"runs": len(runs), "fixed": fit.intercept, "per_epoch": per_epoch}
    for found in fits.values():
        found["at_10"] = found["fixed"] + 10 * found["per_epoch"]
    return fits


def seeds_at_longest() -> dict[str, Any]:
    """Final top-1 over seeds of the heuristics run with more than one seed at ratio 0.5 with the
    longest budget (random and the best heuristic at 10 epochs), next to the same heuristics'
    10-epoch runs: does random's gap close with a longer budget?"""
    runs: dict[tuple[int, str], dict[int, float]] = defaultdict(dict)
    for sweep in ("budget", "study"):
        for _, m in finished(sweep):
            if m["prune_ratio"] == 0.5:
                runs[(m["finetune_epochs"], m["heuristic"])][m["seed"]] = m["final"]["top1"]
    budgets = {epochs for (epochs, _), seeds in runs.items() if len(seeds) > 1 and epochs > 10}
    if not budgets:
        return {}
    longest = max(budgets)
    names = sorted(h for (epochs, h), seeds in runs.items() if epochs == longest and len(seeds) > 1)
    part: dict[str, Any] = {"epochs": longest, "heuristics": {}}
    for name in names:
        long_runs = runs[(longest, name)]
        short = {s: v for s, v in runs[(10, name)].items() if s in long_runs}
        part["heuristics"][name] = {
            "seeds": sorted(long_runs),
            str(longest): mean_std(list(long_runs.values())),
            "10": mean_std(list(short.values())),
        }
    if {"random"} < set(names):
        best = max((n for n in names if n != "random"), key=lambda n: part["heuristics"][n]["10"])
        paired = [
            runs[(longest, best)][s] - runs[(longest, "random")][s]
            for s in runs[(longest, "random")]
            if s in runs[(longest, best)]
        ]
        part["best"] = best
        part["best_minus_random"] = mean_std(paired)
        part["paired_seeds"] = len(paired)
    return part


# ---------------------------------------------------------------------------------- markdown


def ms(pair: tuple[float | None, float | None], digits: int = 1) -> str:
    mean, std = pair
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def markdown(
    dense: dict[str, Any], tune: dict[str, Any], study: dict[str, Any], budget: dict[str, Any]
) -> str:
    lines = [
        "# The study's instrument: precision and calibration",
        "",
        f"Written by `scripts/calibration_tables.py` on {datetime.date.today()} from the runs "
        "under `benchmarks/calibration/runs/` (`make calibrate` reruns what is missing). Data: "
        "`dataset=synthetic_study` (10 motion classes, 2160 training videos, 3360 test videos, "
        "8×32² clips); model: `i3d_tiny` (Inception I3D at ⅛ width, every layer ≥ 8 channels); "
        "dense recipe `train=study`; fine-tuning `finetune=study` (10 epochs after scoring, "
        "learning rate 0.002).",
        "",
        "## Dense models (item 2)",
        "",
        "`skr-run -m experiment=calibration_dense` (5 seeds; test split):",
        "",
    ]
    seeds = dense["seeds"]
    if seeds:
        lines += table(
            ["seed", *map(str, seeds)], [["top-1 (%)", *(num(v, 1) for v in seeds.values())]]
        )
        lines += [
            "",
            f"Mean {num(dense['mean'], 1)} %, std {num(dense['std'], 2)} points over {len(seeds)} "
            f"seeds (target: ≥ 80 % and ≤ 1.5); one run's binomial standard error on "
            f"{dense['test_videos']} test videos: {num(dense['binomial_se'], 2)} points "
            "(target ≤ 0.7).",
        ]
    else:
        lines.append("Not measured yet.")
    recipes = dense["recipes"]
    if len(recipes) > 1:
        lines += [
            "",
            "What decided the recipe's length: the two circle directions (clockwise and "
            "counter-clockwise) are the last thing a dense model learns to tell apart, and "
            "shorter schedules leave some seeds confusing them (test top-1 per seed; 20 epochs, "
            "measured once, gave 86.6–95.7 %):",
            "",
        ]
        seed_ids = sorted({s for r in recipes.values() for s in r["seeds"]})
        lines += table(
            ["pretraining", *(f"seed {s}" for s in seed_ids), "mean", "std"],
            [
                [
                    name,
                    *(num(r["seeds"].get(s), 1) for s in seed_ids),
                    num(r["mean"], 1),
                    num(r["std"], 2),
                ]
                for name, r in recipes.items()
            ],
        )
    lines += ["", "## Fine-tuning learning rate, chosen on val (item 3)", ""]
    lines.append(
        "`skr-run -m experiment=calibration_tune` (val split; l1, random, apoz at ratio 0.5; "
        "objective mean − std of the final val top-1 over the heuristics):"
    )
    lines.append("")
    if tune["rates"]:
        rows = [
            [
                lr,
                *(num(row["heuristics"].get(h), 1) for h in ("l1", "random", "apoz")),
                num(row["mean"], 1),
                num(row["std"], 1),
                num(row["objective"], 1),
            ]
            for lr, row in tune["rates"].items()
        ]
        header = ["lr × epochs", "l1", "random", "apoz", "mean", "std", "mean − std"]
        lines += table(header, rows)
        lines += ["", f"Best: {tune['best']} (`conf/finetune/study.yaml` holds the choice)."]
    else:
        lines.append("Not measured yet.")
    lines += ["", "## Precision after pruning (items 3 and 4)", ""]
    lines.append(
        "`skr-run -m experiment=calibration` (9 heuristics × 5 seeds at ratio 0.5, relocation off; "
        "test split; mean ± std over seeds):"
    )
    lines.append("")
    if study["heuristics"]:
        rows = [
            [name, str(h["seeds"]), ms(h["raw"]), ms(h["bn_recal"]), ms(h["final"]), ms(h["gain"])]
            for name, h in study["heuristics"].items()
        ]
        lines += table(
            [
                "heuristic",
                "seeds",
                "after removal",
                "BN-recalibrated (= start of fine-tuning)",
                "final top-1",
                "final − start",
            ],
            rows,
        )
        lines += [
            "",
            f"Median over heuristics of the std over seeds: {num(study['median_std'], 2)} points "
            "(target ≤ 2). Fine-tuning's gain over its start, averaged over the heuristics: "
            f"{signed(study['mean_gain'], 1)} points (target ≥ 0). Spread (std across the "
            f"heuristics' means): {num(study['spread'], 2)} points.",
        ]
    else:
        lines.append("Not measured yet.")
    lines += ["", "## Spread against the fine-tuning budget (item 5b)", ""]
    lines.append(
        "`skr-run -m experiment=calibration_budget` and `skr-run -m experiment=calibration_budget "
        "prune.ratio=0.3 finetune.epochs=30` (seed 0; the 10-epoch row at ratio 0.5 is "
        "`experiment=calibration`'s seed 0; final test top-1; the spread is the std across the "
        "heuristics, one seed each, so it includes a run's seed noise: at 10 epochs a median "
        f"std over seeds of {num(study['median_std'], 2)} points):"
    )
    lines.append("")
    if budget["cells"]:
        rows = [
            [
                *cell.split(" × "),
                str(row["count"]),
                num(row["mean"], 1),
                num(row["std"], 2),
                num(row["range"], 1),
                num(row["heuristics"].get("random"), 1),
                signed(row["best_minus_random"], 1),
            ]
            for cell, row in budget["cells"].items()
        ]
        header = [
            "ratio",
            "epochs",
            "heuristics",
            "mean",
            "spread (std)",
            "range",
            "random",
            "best − random",
        ]
        lines += table(header, rows)
        lines += seeds_lines(budget["seeds"])
    else:
        lines.append("Not measured yet.")
    lines += ["", "## Against published phenomena (item 5)", ""]
    tau = dense["kendall_tau"]
    rows = [
        [
            "(a) Kendall τ between l1 and l2 scores (layer mean)",
            f"{num(tau.get('l1-l2'), 2)} ({dense['kendall_tau_seeds'].get('l1-l2', 0)} seeds); "
            f"l1–fpgm {num(tau.get('l1-fpgm'), 2)}, l2–fpgm {num(tau.get('l2-fpgm'), 2)}; "
            f"{agreement_text(dense)}",
            "almost identical rankings for L1, L2 and geometric median (Huang et al. 2021)",
            "`skr-run -m experiment=calibration_dense`",
        ],
        [
            "(b) spread across heuristics vs fine-tuning budget; random vs the best",
            budget_effect(budget, study),
            "criteria within ≈ 1 point after adequate fine-tuning, random no worse (Mittal et al. "
            "2018); ≈ 0.5 points (Li et al. 2022)",
            "`skr-run -m experiment=calibration_budget` (+ `prune.ratio=0.3 finetune.epochs=30`), "
            "`skr-run -m experiment=calibration`",
        ],
        [
            "(c) fine-tuning learning rate vs criterion",
            tune_effect(tune) + criteria_range_text(study),
            "~6 points between schedules against ~1 between criteria (Wang et al. 2023)",
            "`skr-run -m experiment=calibration_tune`, `skr-run -m experiment=calibration`",
        ],
        [
            "(d) Spearman ρ over heuristics: accuracy right after removal vs final",
            spearman_text(study["spearman"]),
            "strong with BN re-estimation, poor without (EagleEye, Li et al. 2020)",
            "`skr-run -m experiment=calibration`",
        ],
    ]
    lines += table(["phenomenon", "ours", "published", "command"], rows)
    lines += ["", "## Cost (item 6)", ""]
    lines += cost_lines(study, budget["cost"])
    return "\n".join(lines) + "\n"


def cost_lines(study: dict[str, Any], cost: dict[str, Any]) -> list[str]:
    lines = []
    if "0.5" in cost:
        fit = cost["0.5"]
        others = "; ".join(
            f"at ratio {ratio}: {num(c['at_10'], 0)} s ({num(c['per_epoch'], 1)} s per epoch)"
            for ratio, c in cost.items()
            if ratio != "0.5"
        )
        lines.append(
            "One study run (score → remove → fine-tune → 3 evaluations), fitted as fixed + per "
            f"epoch over the {fit['runs']} seed-0 budget runs at ratio 0.5 (1, 3 and 30 epochs; "
            "two jobs at a time on the 2 cores, one torch thread each): "
            f"{num(fit['fixed'], 0)} s fixed "
            "(scoring, removal, batch-norm re-estimation, 3 evaluations of 3360 videos) + "
            f"{num(fit['per_epoch'], 1)} s per fine-tuning epoch = {num(fit['at_10'], 0)} s at "
            f"the study's 10 epochs" + (f"; {others}." if others else ".")
        )
    lines.append(
        f"The precision sweep's own runs took {num(study['seconds_per_run'], 0)} s each on "
        f"average (fine-tuning {num(study['finetune_seconds'], 0)} s; {study['runs']} runs, part "
        "of them beside other work on the same cores). One dense model: "
        f"{num(study['dense_seconds'], 0)} s ({dense_source(study)})."
    )
    hours = study_hours(study, cost)
    if hours is not None:
        lines += [
            "",
            "The 5-seed study (270 runs: 9 heuristics × 3 ratios × relocation off/on × 5 seeds, "
            f"and 5 dense models) on 2 cores: about {num(hours, 1)} h of phase time "
            "(target ≤ 4 h), "
            "with each ratio's run as above and a relocation run's 2 phase epochs at +25 % a "
            "step (the span target's cost, the dearest in `scripts/bench_train.py`). Each job "
            "adds its start-up: about 4 s in a sweep's worker (the job folder's creation to its "
            "metrics.json, less its phases), 0.15 h over 270 jobs.",
        ]
    return lines


def dense_source(study: dict[str, Any]) -> str:
    measured = study["dense_measured"]
    if not measured:
        return "not measured yet"
    parts = [
        f"{m['seconds']:.0f} s for {m['train_videos']} videos ({m['sweep']})" for m in measured
    ]
    return f"mean of {len(measured)} trained, scaled to 2160 training videos: {', '.join(parts)}"


RELOCATION_EPOCHS = 2  # conf/relocation/skr.yaml: the phase's share of the 10 epochs


def study_hours(study: dict[str, Any], cost: dict[str, Any]) -> float | None:
    """Hours of phase time on 2 cores for the 270-run study (two jobs at a time)."""
    if "0.5" not in cost or study["dense_seconds"] is None:
        return None
    seconds = 0.0
    for ratio in ("0.3", "0.5", "0.7"):
        fit = cost.get(ratio, cost["0.5"])
        # the phase's 2 epochs (relocation=skr) at up to +25 % a step; the other 8 as plain ones
        relocated = fit["fixed"] + fit["per_epoch"] * (10 + RELOCATION_EPOCHS * 0.25)
        seconds += 45 * fit["at_10"] + 45 * relocated  # 9 heuristics x 5 seeds, off and on
    return (seconds + 5 * study["dense_seconds"]) / 2 / 3600


def tune_effect(tune: dict[str, Any], epochs: int = 10) -> str:
    """How far the learning rate moves the mean over heuristics at the study's budget, against
    how far the heuristic moves accuracy at each rate (val split)."""
    rows = {
        setting: row
        for setting, row in tune["rates"].items()
        if setting.endswith(f" × {epochs} epochs") and row["std"] is not None
    }
    if len(rows) < 2:
        return "not measured yet"
    means = [row["mean"] for row in rows.values()]
    ranges = [
        max(row["heuristics"].values()) - min(row["heuristics"].values()) for row in rows.values()
    ]
    rates = ", ".join(setting.split(" × ")[0] for setting in rows)
    return (
        f"at {epochs} epochs, learning rates {rates}: the mean over l1, random and apoz spans "
        f"{num(max(means) - min(means), 1)} points across the rates; at one rate the heuristics "
        f"span {num(min(ranges), 1)}–{num(max(ranges), 1)} points (val split)"
    )


def criteria_range_text(study: dict[str, Any]) -> str:
    """At the chosen rate (test split, 5 seeds): how far apart the heuristics' means lie, the
    ones that rank like weight magnitude, and all of them."""
    means = {name: h["final"][0] for name, h in study["heuristics"].items()}
    if len(means) < 2:
        return ""
    magnitude_like = ("l1", "l2", "taylor", "taylor_weight", "bn_scale", "fpgm")
    close = [means[n] for n in magnitude_like if n in means]
    return (
        f". At the chosen rate over 5 seeds (test): l1, l2, taylor, taylor_weight, bn_scale and "
        f"fpgm span {num(max(close) - min(close), 1)} points, all {len(means)} heuristics "
        f"{num(max(means.values()) - min(means.values()), 1)}"
    )


def seeds_lines(part: dict[str, Any]) -> list[str]:
    if not part:
        return []
    longest = part["epochs"]
    lines = [
        "",
        f"Over seeds at ratio 0.5, {longest} against 10 epochs (the same seeds; `skr-run -m "
        f"experiment=calibration_budget finetune.epochs={longest} heuristic=random,taylor "
        "seed=1,2,3,4` adds them to seed 0):",
        "",
    ]
    rows = [
        [name, str(len(h["seeds"])), ms(tuple(h["10"])), ms(tuple(h[str(longest)]))]
        for name, h in part["heuristics"].items()
    ]
    lines += table(["heuristic", "seeds", "10 epochs", f"{longest} epochs"], rows)
    if "best" in part:
        lines += [
            "",
            f"{part['best']} − random at {longest} epochs, paired by seed: "
            f"{ms(tuple(part['best_minus_random']))} points over {part['paired_seeds']} seeds.",
        ]
    return lines


def budget_effect(budget: dict[str, Any], study: dict[str, Any]) -> str:
    cells = budget["cells"]
    at = {cell: row for cell, row in cells.items() if cell.startswith("0.5 × ") and row["std"]}
    if not at:
        return "not measured yet"
    curve = "; ".join(
        f"{cell.split(' × ')[1]} epochs {num(row['std'], 1)}" for cell, row in at.items()
    )
    longest = max(int(cell.split(" × ")[1]) for cell in cells)
    gaps = [
        f"ratio {cell.split(' × ')[0]} {signed(row['best_minus_random'], 1)}"
        for cell, row in cells.items()
        if int(cell.split(" × ")[1]) == longest and row["best_minus_random"] is not None
    ]
    return (
        f"spread (std, points) at ratio 0.5 by budget: {curve} (seed 0). Best − random at "
        f"{longest} epochs: {', '.join(gaps) or '—'}. Over 5 seeds at 10 epochs: random − mean "
        f"of the 8 criteria {signed(study['random_gap'], 1)}, best − random "
        f"{signed(study['best_minus_random'], 1)}" + longest_seeds_text(budget["seeds"])
    )


def longest_seeds_text(part: dict[str, Any]) -> str:
    if "best" not in part:
        return ""
    gap = part["best_minus_random"]
    return (
        f"; at {part['epochs']} epochs {part['best']} − random {ms(tuple(gap))} "
        f"({part['paired_seeds']} seeds, paired)"
    )


def spearman_text(spearman: dict[str, Any] | None) -> str:
    if spearman is None:
        return "not measured yet"
    (rho, p), (raw_rho, raw_p) = spearman["bn_recal"], spearman["raw"]
    raw = (
        "raw: undefined, every heuristic is at the same accuracy right after removal"
        if math.isnan(raw_rho)
        else f"raw {raw_rho:.2f} (p {raw_p:.3f})"
    )
    return f"BN-recalibrated {rho:.2f} (p {p:.3f}); {raw}"


def main() -> None:
    dense, tune, study, budget = dense_part(), tune_part(), study_part(), budget_part()
    (OUT / "calibration.md").write_text(markdown(dense, tune, study, budget))
    data = {"dense": dense, "tune": tune, "study": study, "budget": budget}
    (OUT / "calibration.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    print((OUT / "calibration.md").read_text())


if __name__ == "__main__":
    main()
