"""Cells of a sweep: the runs that differ only by heuristic and seed, and their statistics.

A cell is named by (dataset, model, prune ratio, relocation strength, low-rank weight) from
metrics.json plus every other config key whose value differs between runs of the same dataset and
model (``relocation.distill.weight``, ``finetune.epochs``, ...), so that no two settings are
merged. Keys that never define a cell (the heuristic, the seed, logging, threads, ...) are dropped
first. Within a cell, runs are indexed by (heuristic, seed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from skr_cli.report.collect import Problem, Run, choices_from_overrides
from skr_cli.report.stats import (
    Anova,
    Ratio,
    Spread,
    Summary,
    complete_table,
    mean_or_none,
    spread,
    spread_interval,
    spread_ratio,
    summarize,
    two_way_anova,
)

# Config keys (and everything under them) that never define a cell.
NOT_A_CELL = (
    "heuristic",
    "seed",
    "logger",
    "progress",
    "threads",
    "cache_dir",
    "dataset.num_workers",
    "eval.batch_size",
    "eval.latency_runs",
    "agreement",
    "dense_cache",  # whether the dense model is shared through the cache: the same model
    "required",  # keys an experiment insists on: a check, not a setting
    "search",  # a random-search trial: its drawn values (relocation.*, ...) name the cell
)
# The config group whose options are a study's arms (conf/arm/): every arm's cell is compared
# with the cell of the option named BASELINE_ARM that has the same settings but the arms'.
ARM = "arm"
BASELINE_ARM = "baseline"
# Config keys that metrics.json already names in the cell's first five fields.
IN_METRICS = ("prune.ratio", "relocation.strength", "lowrank.weight")
ABSENT = "<absent>"  # the value of a config key a run does not have (an older config)


def defines_cell(key: str) -> bool:
    """Whether a flattened config key may tell two cells apart."""
    dropped = (*NOT_A_CELL, *IN_METRICS)
    return not any(key == d or key.startswith(f"{d}.") for d in dropped)


def format_value(value: Any) -> str:
    """A config value as one would type it in an override: 0.5, 100, true, null, [a,b]."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class CellKey:
    """What a cell holds fixed; ``extras`` are the other config keys that vary, sorted."""

    dataset: str
    model: str
    prune_ratio: float
    relocation_strength: float
    lowrank_weight: float
    extras: tuple[tuple[str, Any], ...] = ()

    def fields(self) -> list[tuple[str, Any]]:
        """(override name, value) of every field, the extras last."""
        return [
            ("dataset", self.dataset),
            ("model", self.model),
            ("prune.ratio", self.prune_ratio),
            ("relocation.strength", self.relocation_strength),
            ("lowrank.weight", self.lowrank_weight),
            *self.extras,
        ]

    @property
    def label(self) -> str:
        """``dataset=synthetic model=i3d_tiny prune.ratio=0.5 relocation.strength=0 ...``."""
        return " ".join(f"{k}={format_value(v)}" for k, v in self.fields())

    def without_relocation(self, also: Collection[str] = ()) -> tuple:
        """The fields a cell shares with its baseline: all but the relocation settings (and
        the keys in ``also``: an arm's settings, see :func:`arm_settings`)."""
        kept = [(k, v) for k, v in self.fields() if not k.startswith("relocation.")]
        return tuple((k, repr(v)) for k, v in kept if k not in also)

    def relocation(self) -> dict[str, Any]:
        """The relocation settings named in the key."""
        return {k: v for k, v in self.fields() if k.startswith("relocation.")}

    def sort_key(self) -> tuple:
        """Cells of one setting together, prune ratios ascending, then relocation settings
        (strength 0 first)."""
        others = tuple((k, _order(v)) for k, v in self.extras if not k.startswith("relocation."))
        relocation = tuple((k, _order(v)) for k, v in self.extras if k.startswith("relocation."))
        return (
            self.dataset,
            self.model,
            self.lowrank_weight,
            others,
            self.prune_ratio,
            self.relocation_strength,
            relocation,
        )


def _order(value: Any) -> tuple:
    """A sort key for config values of any type: numbers by value (5 before 10), then the rest
    by their text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, repr(value))


@dataclass
class Cell:
    """The runs of one cell, by (heuristic, seed)."""

    key: CellKey
    runs: dict[tuple[str, int], Run]
    baseline_relocation: bool  # arm=baseline; without an arm: strength 0, no distillation or
    # compensation

    @property
    def heuristics(self) -> list[str]:
        return sorted({h for h, _ in self.runs})

    @property
    def seeds(self) -> list[int]:
        return sorted({s for _, s in self.runs})

    @property
    def choices(self) -> dict[str, str]:
        """The config group options every run of the cell chose (``{"relocation": "skr"}``)."""
        runs = list(self.runs.values())
        first = runs[0].choices if runs else {}
        return {g: o for g, o in sorted(first.items()) if all(r.choices.get(g) == o for r in runs)}

    def values(self, metric: str) -> dict[tuple[str, int], float]:
        """(heuristic, seed) → a metrics value (dotted path) of the runs that have it."""
        found = {hs: run.get(metric) for hs, run in self.runs.items()}
        return {hs: float(v) for hs, v in found.items() if isinstance(v, int | float)}


def short_labels(
    keys: Sequence[Mapping[str, Any]],
    choices: Sequence[Mapping[str, str]],
    *,
    leave_out: Collection[str] = (),
) -> list[str]:
    """The short name of each cell: only what differs between the cells.

    A config group whose option every cell records and that not all cells share is named by its
    option (``relocation=skr``); the keys under it (for a study's ``arm``, which sets keys of
    other groups: every key) are then named only where they differ between cells of the same
    option. Every other key that differs is named with its value (``lowrank.weight=0.02``),
    unless it splits the cells exactly as a key named before it does (``lowrank.truncate``
    beside ``lowrank.phases``: it says nothing new). Keys in ``leave_out`` (a plot's axis) are
    not named, so cells that differ only there get the same name.

    Args:
        keys: per cell, its key as (override name → value), ``CellKey.fields()`` or report.json.
        choices: per cell, config group → chosen option (may be empty).
        leave_out: keys never named.
    """
    names = list(dict.fromkeys(k for key in keys for k in key if k not in leave_out))
    varying = [n for n in names if len({repr(key.get(n, ABSENT)) for key in keys}) > 1]
    groups = [
        g
        for g in sorted({g for c in choices for g in c})
        if all(g in c for c in choices)
        and len({c[g] for c in choices}) > 1
        and (g == ARM or any(n.startswith(f"{g}.") for n in varying))
    ]
    shown: list[str] = []
    for name in varying:
        if not _named_by_option(name, groups, keys, choices) and not any(
            _same_split(name, other, keys) for other in shown
        ):
            shown.append(name)
    labels = []
    for key, chosen in zip(keys, choices, strict=True):
        parts = [(g, chosen[g]) for g in groups] + [(n, key.get(n, ABSENT)) for n in shown]
        labels.append(" ".join(f"{k}={format_value(v)}" for k, v in parts) or "all")
    return labels


def _named_by_option(
    name: str,
    groups: Sequence[str],
    keys: Sequence[Mapping[str, Any]],
    choices: Sequence[Mapping[str, str]],
) -> bool:
    """Whether a key lies under a named group (for a study's ``arm``, which sets keys of other
    groups: any key) and has one value per option of that group."""
    for group in (g for g in groups if g == ARM or name.startswith(f"{g}.")):
        values: dict[str, set[str]] = defaultdict(set)
        for key, chosen in zip(keys, choices, strict=True):
            values[chosen[group]].add(repr(key.get(name, ABSENT)))
        if all(len(v) == 1 for v in values.values()):
            return True
    return False


def _same_split(first: str, second: str, keys: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two keys' values map one to one over the cells (they group them alike)."""
    pairs = {(repr(k.get(first, ABSENT)), repr(k.get(second, ABSENT))) for k in keys}
    return len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def saved_choices(cell: Mapping[str, Any]) -> dict[str, str]:
    """A report.json cell's config group options: its ``choices``, or, in a report written
    before they were recorded, the group overrides that all its runs' folder names hold."""
    if "choices" in cell:
        return dict(cell["choices"])
    found = [choices_from_overrides(PurePath(r["path"]).name.split(",")) for r in cell["runs"]]
    first = found[0] if found else {}
    return {g: o for g, o in sorted(first.items()) if all(c.get(g) == o for c in found)}


BUDGET = "finetune.epochs"  # epochs after scoring: the budget of fine-tuning


def saved_budget(cell: Mapping[str, Any]) -> float | None:
    """A report.json cell's ``finetune.epochs``: from its key where it varies between cells,
    else the one value its heuristics' runs recorded (None where they differ or none did)."""
    if BUDGET in cell["key"]:
        return float(cell["key"][BUDGET])
    found = {h.get("finetune_epochs_mean") for h in cell.get("heuristics", [])} - {None}
    return float(found.pop()) if len(found) == 1 else None


def group_cells(runs: Iterable[Run]) -> tuple[list[Cell], list[Problem]]:
    """Groups finished runs into cells; a second run of a cell's (heuristic, seed) is listed.

    Returns:
        The cells sorted by setting then prune ratio, and the duplicate runs left out.
    """
    runs = sorted(runs, key=lambda r: str(r.path))
    varying = varying_keys(runs)
    cells: dict[CellKey, Cell] = {}
    duplicates = []
    for run in runs:
        key = cell_key(run, varying)
        cell = cells.setdefault(key, Cell(key, {}, is_baseline(run)))
        slot = (run.heuristic, run.seed)
        if slot in cell.runs:  # keep the first by path, name the second
            detail = f"same cell, heuristic and seed as {cell.runs[slot].path}"
            duplicates.append(Problem(run.path, "duplicate", detail))
            continue
        cell.runs[slot] = run
    return sorted(cells.values(), key=lambda c: c.key.sort_key()), duplicates


def varying_keys(runs: Sequence[Run]) -> list[str]:
    """Config keys that may define a cell and differ between runs of one dataset and model.

    A key that changes only with the dataset or the model (``dataset.root``) adds nothing to
    the cell and is left out; a missing key counts as a value of its own.
    """
    families: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        families[(str(run.get("dataset")), str(run.get("model")))].append(run)
    keys = {k for run in runs for k in run.config if defines_cell(k)}
    varying = set()
    for members in families.values():
        for key in keys:
            if len({repr(run.config.get(key, ABSENT)) for run in members}) > 1:
                varying.add(key)
    return sorted(varying)


def cell_key(run: Run, varying: Sequence[str]) -> CellKey:
    """The cell of one run."""
    return CellKey(
        dataset=str(run.get("dataset")),
        model=str(run.get("model")),
        prune_ratio=float(run.get("prune_ratio")),
        relocation_strength=float(run.get("relocation_strength")),
        lowrank_weight=float(run.get("lowrank_weight")),
        extras=tuple((k, run.config.get(k, ABSENT)) for k in varying),
    )


def is_baseline(run: Run) -> bool:
    """The run of a study's baseline arm (``arm=baseline``); without an arm, no relocation:
    strength 0, no distillation and no compensation."""
    if ARM in run.choices:
        return run.choices[ARM] == BASELINE_ARM
    distill = run.config.get("relocation.distill.weight", 0) or 0
    compensate = run.config.get("relocation.compensate", False)
    return float(run.get("relocation_strength")) == 0 and distill == 0 and compensate is not True


def arm_settings(cells: Sequence[Cell]) -> set[str]:
    """The keys a study's arms set: among the cells of an arm (config group ``arm``), those
    whose value is one per arm option and not the same for all of them (the tuned learning rate
    of each arm, say). A key that also varies within an arm (``finetune.epochs`` in a budget
    sweep) is a setting of the cell, not of the arm."""
    armed = [c for c in cells if ARM in c.choices]
    values: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for cell in armed:
        for key, value in cell.key.fields():
            values[key][cell.choices[ARM]].add(repr(value))
    return {
        key
        for key, by_arm in values.items()
        if all(len(v) == 1 for v in by_arm.values()) and len(set().union(*by_arm.values())) > 1
    }


def baseline_of(cell: Cell, cells: Sequence[Cell]) -> Cell | None:
    """The baseline cell with the same key but the relocation settings (for a study's arms:
    the ``arm=baseline`` cell with the same key but the arms' settings).

    Among several (relocation keys that do nothing at baseline, such as ``relocation.epochs``,
    may differ), the one that shares most relocation settings with ``cell``.
    """
    also = arm_settings(cells) if ARM in cell.choices else set()
    shared = cell.key.without_relocation(also)
    candidates = [
        c
        for c in cells
        if c.baseline_relocation
        and (ARM in c.choices) == (ARM in cell.choices)
        and c.key.without_relocation(also) == shared
    ]
    if cell.baseline_relocation or not candidates:
        return None
    mine = cell.key.relocation()

    def matches(other: Cell) -> int:
        theirs = other.key.relocation()
        return sum(repr(theirs.get(k)) == repr(v) for k, v in mine.items())

    return max(candidates, key=matches)  # the first of the best: cells are sorted


# --- statistics of a cell ---------------------------------------------------------------------

# Per-heuristic means reported beside final top-1: output name → metrics.json path.
MEANS = {
    "video_top1": "final.video_top1",
    "pruned_top1": "pruned.top1",
    "pruned_top1_bn_recal": "pruned.top1_bn_recal",
    "delta_loss_remove": "delta_loss_remove",
    "params": "final.params",
    "macs": "final.macs",
    "latency_ms": "final.latency_ms",
    "finetune_epochs": "finetune_epochs",
}


@dataclass
class HeuristicStats:
    """One heuristic in one cell: final top-1 over seeds, and means of the other metrics."""

    heuristic: str
    seeds: list[int]
    top1: Summary
    means: dict[str, float | None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "heuristic": self.heuristic,
            "seeds": self.seeds,
            "n": self.top1.n,
            "top1_mean": self.top1.mean,
            "top1_std": self.top1.std,
            **{f"{name}_mean": value for name, value in self.means.items()},
        }


@dataclass
class CellStats:
    """A cell's statistics: per heuristic, across heuristics, and against its baseline."""

    cell: Cell
    heuristics: list[HeuristicStats]
    spread: Spread
    anova: Anova
    anova_seeds: list[int]
    gaps: list[tuple[str, int]]  # (heuristic, seed) missing where another heuristic has it
    # the spread's bootstrap 95 % interval over the seeds every heuristic has (None: n/a)
    spread_low: float | None = None
    spread_high: float | None = None
    baseline: CellKey | None = None
    ratio: Ratio | None = None
    # the same comparison without one heuristic: "random", and the baseline's worst (lowest mean)
    # heuristic, so that no single collapse carries the result
    without: dict[str, Ratio] = field(default_factory=dict)
    worst: str | None = None  # the baseline cell's heuristic of lowest mean top-1
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell.key.label,
            "key": {k: _plain(v) for k, v in self.cell.key.fields()},
            "choices": self.cell.choices,
            "baseline_relocation": self.cell.baseline_relocation,
            "heuristics": [h.as_dict() for h in self.heuristics],
            "spread": vars(self.spread) | {"low": self.spread_low, "high": self.spread_high},
            "anova": {**self.anova.as_dict(), "common_seeds": self.anova_seeds},
            "gaps": [{"heuristic": h, "seed": s} for h, s in self.gaps],
            "baseline": self.baseline.label if self.baseline else None,
            "ratio": self.ratio.as_dict() if self.ratio else None,
            "without": {name: ratio.as_dict() for name, ratio in self.without.items()},
            "worst": self.worst,
            "notes": self.notes,
        }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def cell_stats(cell: Cell, *, resamples: int, seed: int) -> CellStats:
    """Per-heuristic summaries, spread of their means (with its bootstrap interval over the seeds
    every heuristic has: ``resamples`` draws from ``seed``), and the heuristic × seed ANOVA."""
    top1 = cell.values("final.top1")
    rows = []
    for name in cell.heuristics:
        seeds = sorted(s for h, s in cell.runs if h == name)
        means = {
            out: mean_or_none([cell.values(path).get((name, s)) for s in seeds])
            for out, path in MEANS.items()
        }
        summary = summarize([top1[(name, s)] for s in seeds])
        rows.append(HeuristicStats(name, seeds, summary, means))
    anova_seeds, table = complete_table(top1, cell.heuristics)
    gaps = [(h, s) for h in cell.heuristics for s in cell.seeds if (h, s) not in cell.runs]
    low, high = spread_interval(table, resamples=resamples, seed=seed)
    return CellStats(
        cell=cell,
        heuristics=rows,
        spread=spread([row.top1.mean for row in rows]),
        anova=two_way_anova(table),
        anova_seeds=anova_seeds,
        gaps=gaps,
        spread_low=low,
        spread_high=high,
    )


def compare(
    stats: CellStats,
    base: CellStats,
    *,
    resamples: int,
    seed: int,
    leave_out: Sequence[str] = (),
) -> Ratio:
    """Spread ratio and mean difference of a relocation cell against its baseline cell.

    Paired design: the heuristics both cells have (less ``leave_out``), on the seeds both cells
    and all those heuristics have (the bootstrap resamples these seeds, the same for both
    cells; the permutation test relabels the pairs). The point estimates use the same runs, so
    they equal the ratio of the cells' own spreads when no run is missing; with no shared seed
    at all they fall back on each heuristic's mean over its own seeds (and the intervals are
    n/a).
    """
    mine = {h.heuristic: h.top1.mean for h in stats.heuristics}
    theirs = {h.heuristic: h.top1.mean for h in base.heuristics}
    names = sorted((set(mine) & set(theirs)) - set(leave_out))
    top1, base_top1 = stats.cell.values("final.top1"), base.cell.values("final.top1")
    both = {hs: v for hs, v in top1.items() if hs in base_top1}
    seeds, relocated = complete_table(both, names)
    baseline = complete_table({hs: base_top1[hs] for hs in both}, names)[1]
    if seeds:
        relocated_means, baseline_means = relocated.mean(axis=1), baseline.mean(axis=1)
    else:
        relocated_means, baseline_means = [mine[n] for n in names], [theirs[n] for n in names]
    return spread_ratio(
        list(relocated_means),
        list(baseline_means),
        relocated,
        baseline,
        resamples=resamples,
        seed=seed,
    )


def left_out(stats: CellStats, base: CellStats) -> tuple[str | None, list[str]]:
    """The baseline's worst heuristic (lowest mean top-1) and the heuristics the comparison is
    also reported without: ``random`` and that worst one, where both cells have them and at
    least three heuristics are shared (two must remain for a spread)."""
    shared = {h.heuristic for h in stats.heuristics} & {h.heuristic for h in base.heuristics}
    if len(shared) < 3:
        return None, []
    means = {h.heuristic: h.top1.mean for h in base.heuristics if h.heuristic in shared}
    worst = min(sorted(means), key=lambda name: means[name])
    return worst, sorted({worst} | ({"random"} & shared))


def analyze(cells: Sequence[Cell], *, resamples: int, seed: int) -> list[CellStats]:
    """Statistics of every cell, and for relocation cells the comparison with their baseline."""
    by_key = {cell.key: cell_stats(cell, resamples=resamples, seed=seed) for cell in cells}
    for cell in cells:
        stats = by_key[cell.key]
        if cell.baseline_relocation:
            continue
        base = baseline_of(cell, cells)
        if base is None:
            stats.notes.append("no baseline cell (relocation off, otherwise the same settings)")
            continue
        stats.baseline = base.key
        stats.ratio = compare(stats, by_key[base.key], resamples=resamples, seed=seed)
        stats.worst, names = left_out(stats, by_key[base.key])
        stats.without = {
            name: compare(stats, by_key[base.key], resamples=resamples, seed=seed, leave_out=[name])
            for name in names
        }
    return [by_key[cell.key] for cell in cells]
