"""Statistics of a sweep on plain numbers: no runs, files or configs here.

A cell's accuracies form a table ``Y`` of shape (H, S): one row per heuristic, one column per
seed. The same seed is the same dense model for every heuristic (paired design), so the seed is a
block and the two-way ANOVA without replication separates seed noise from the heuristic effect:
``y_hs = μ + α_h + β_s + ε_hs``. Undefined quantities (one seed, one heuristic, no residual
variance) are ``None``, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import f as f_distribution


@dataclass(frozen=True)
class Summary:
    """Mean and standard deviation (ddof=1) of a sample; ``std`` is None with fewer than 2."""

    n: int
    mean: float | None
    std: float | None


def summarize(values: Sequence[float]) -> Summary:
    """Mean ± std (ddof=1) of ``values``; an empty sample has neither."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return Summary(0, None, None)
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return Summary(int(array.size), float(array.mean()), std)


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


@dataclass(frozen=True)
class Spread:
    """How far apart the heuristics' mean accuracies are."""

    heuristics: int
    std: float | None  # ddof=1 over the per-heuristic means; None with fewer than 2 heuristics
    range: float | None  # max − min of the per-heuristic means
    mean: float | None  # mean of the per-heuristic means (every heuristic weighs the same)


def spread(means: Sequence[float]) -> Spread:
    """Std (ddof=1), range and mean of per-heuristic mean accuracies."""
    array = np.asarray(means, dtype=float)
    if array.size == 0:
        return Spread(0, None, None, None)
    several = array.size > 1
    return Spread(
        heuristics=int(array.size),
        std=float(array.std(ddof=1)) if several else None,
        range=float(array.max() - array.min()) if several else None,
        mean=float(array.mean()),
    )


def spread_interval(
    table: np.ndarray, *, resamples: int, seed: int
) -> tuple[float | None, float | None]:
    """2.5–97.5 percentiles of the std of the heuristics' means (ddof=1) over a bootstrap of
    the seeds (the columns of the complete (H, S) table, resampled with replacement); None with
    fewer than 2 heuristics or seeds."""
    y = np.asarray(table, dtype=float)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 2:
        return None, None
    idx = np.random.default_rng(seed).integers(0, y.shape[1], size=(resamples, y.shape[1]))
    stds = y[:, idx].mean(axis=2).std(axis=0, ddof=1)  # (resamples,)
    low, high = np.percentile(stds, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class Anova:
    """Two-way ANOVA without replication, heuristic × seed, on a complete (H, S) table."""

    heuristics: int
    seeds: int
    ms_heuristic: float | None
    ms_seed: float | None
    ms_error: float | None
    f: float | None  # MS_heuristic / MS_error; None when MS_error is 0
    p: float | None  # P(F_{H−1, (H−1)(S−1)} > f)
    sd_heuristic: float | None  # √max(0, (MS_H − MS_E) / S): heuristic sd, seed noise removed
    sd_seed: float | None  # √max(0, (MS_S − MS_E) / H)
    sd_residual: float | None  # √MS_E

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def two_way_anova(table: np.ndarray) -> Anova:
    """Heuristic and seed effects of an (H, S) table of accuracies with one run per cell.

    Args:
        table: accuracies (H, S), rows heuristics, columns the seeds every heuristic has.

    Returns:
        Mean squares, the F test of the heuristic effect and the variance components; every
        field but the counts is None when H < 2 or S < 2 (no residual degrees of freedom).
    """
    y = np.asarray(table, dtype=float)
    heuristics, seeds = y.shape if y.ndim == 2 else (0, 0)
    if heuristics < 2 or seeds < 2:
        return Anova(heuristics, seeds, *([None] * 8))
    grand = y.mean()
    rows, cols = y.mean(axis=1), y.mean(axis=0)
    ms_h = seeds * float(((rows - grand) ** 2).sum()) / (heuristics - 1)
    ms_s = heuristics * float(((cols - grand) ** 2).sum()) / (seeds - 1)
    residual = y - rows[:, None] - cols[None, :] + grand
    df_error = (heuristics - 1) * (seeds - 1)
    ms_e = float((residual**2).sum()) / df_error
    if ms_e > 1e-12 * max(1.0, ms_h, ms_s):
        f = ms_h / ms_e
        p = float(f_distribution.sf(f, heuristics - 1, df_error))
    else:  # no residual variance: the F ratio is undefined
        ms_e, f, p = 0.0, None, None
    return Anova(
        heuristics=heuristics,
        seeds=seeds,
        ms_heuristic=ms_h,
        ms_seed=ms_s,
        ms_error=ms_e,
        f=f,
        p=p,
        sd_heuristic=math.sqrt(max(0.0, (ms_h - ms_e) / seeds)),
        sd_seed=math.sqrt(max(0.0, (ms_s - ms_e) / heuristics)),
        sd_residual=math.sqrt(ms_e),
    )


def complete_table(
    values: Mapping[tuple[str, int], float], heuristics: Sequence[str]
) -> tuple[list[int], np.ndarray]:
    """The seeds every one of ``heuristics`` has, and their (H, S) table.

    Args:
        values: (heuristic, seed) → accuracy.
        heuristics: the rows, in this order.

    Returns:
        The shared seeds (sorted) and the table (H, S); S is 0 when no seed is shared.
    """
    seeds = sorted(
        set.intersection(*({s for h, s in values if h == name} for name in heuristics))
        if heuristics
        else set()
    )
    table = np.array([[values[(h, s)] for s in seeds] for h in heuristics], dtype=float)
    return seeds, table.reshape(len(heuristics), len(seeds))


@dataclass(frozen=True)
class Ratio:
    """Spread across heuristics with relocation ÷ without, and the difference of mean accuracy."""

    heuristics: int  # heuristics both cells have
    seeds: int  # seeds both cells and all those heuristics have (the bootstrap's units)
    ratio: float | None  # std of the heuristic means, relocation ÷ baseline
    low: float | None  # 2.5th percentile of the bootstrap ratios
    high: float | None  # 97.5th percentile
    mean_difference: float | None  # mean accuracy, relocation − baseline
    difference_low: float | None
    difference_high: float | None
    resamples: int
    # paired permutation test of "relocation does not change the spread" (see permutation_p)
    p_permutation: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def spread_ratio(
    relocated_means: Sequence[float],
    baseline_means: Sequence[float],
    relocated: np.ndarray,
    baseline: np.ndarray,
    *,
    resamples: int,
    seed: int,
) -> Ratio:
    """The ratio of spreads across heuristics with a paired seed bootstrap.

    The point estimates use each heuristic's mean over all its seeds. The bootstrap resamples the
    columns (seeds) of the two complete tables with replacement, the same columns for both cells
    (the same seed is the same dense model in both), and recomputes the ratio of the stds of the
    row means and the difference of the grand means; the interval is the 2.5–97.5 percentiles.

    Args:
        relocated_means: per-heuristic mean accuracy in the relocation cell (H,).
        baseline_means: the same heuristics' means in the baseline cell (H,).
        relocated: accuracies (H, S) in the relocation cell, on the shared seeds.
        baseline: accuracies (H, S) in the baseline cell, the same rows and columns.
        resamples: bootstrap resamples.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        The ratio (None with fewer than 2 heuristics or no spread in the baseline), its interval
        (None with fewer than 2 shared seeds) and the difference of mean accuracy.
    """
    heuristics, seeds = np.shape(relocated)
    top, bottom = spread(relocated_means), spread(baseline_means)
    ratio = top.std / bottom.std if top.std is not None and bottom.std else None
    both = top.mean is not None and bottom.mean is not None
    difference = top.mean - bottom.mean if both else None
    low = high = d_low = d_high = None
    if seeds >= 2 and heuristics >= 1:
        idx = np.random.default_rng(seed).integers(0, seeds, size=(resamples, seeds))
        rows_r = np.asarray(relocated, dtype=float)[:, idx].mean(axis=2)  # (H, N)
        rows_b = np.asarray(baseline, dtype=float)[:, idx].mean(axis=2)
        diffs = rows_r.mean(axis=0) - rows_b.mean(axis=0)
        d_low, d_high = (float(v) for v in np.percentile(diffs, [2.5, 97.5]))
        if heuristics >= 2:
            low, high = _ratio_interval(rows_r.std(axis=0, ddof=1), rows_b.std(axis=0, ddof=1))
    p = permutation_p(relocated, baseline, resamples=resamples, seed=seed)
    return Ratio(heuristics, seeds, ratio, low, high, difference, d_low, d_high, resamples, p)


def permutation_p(
    relocated: np.ndarray, baseline: np.ndarray, *, resamples: int, seed: int
) -> float | None:
    """Paired permutation test of "relocation does not change the spread across heuristics".

    Under the null the two runs of every (heuristic, seed) pair, one per cell, are exchangeable:
    same heuristic, same dense model, the arm's label makes no difference. Each resample swaps
    every pair's two runs with probability 1/2 and recomputes the statistic |log(std of the
    relocated row means ÷ std of the baseline row means)|; the p-value is the share of
    resamples, the observed labelling counted among them, whose statistic is at least the
    observed one (two-sided, never 0). Pairs, not seeds, are the unit: with 5 seeds a swap of
    whole seeds could give no p-value under 2/32.

    Args:
        relocated: accuracies (H, S) in the relocation cell, on the shared seeds.
        baseline: the same heuristics and seeds in the baseline cell.
        resamples: random relabellings.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        The p-value; None with fewer than 2 heuristics or seeds, or no spread in either cell.
    """
    top, bottom = np.asarray(relocated, dtype=float), np.asarray(baseline, dtype=float)
    if top.ndim != 2 or top.shape[0] < 2 or top.shape[1] < 2:
        return None

    def statistic(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # (..., H, S) -> (...)
        sa, sb = a.mean(axis=-1).std(axis=-1, ddof=1), b.mean(axis=-1).std(axis=-1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(np.log(sa / sb))

    observed = float(statistic(top, bottom))
    if not np.isfinite(observed):
        return None
    swap = np.random.default_rng(seed).random((resamples, *top.shape)) < 0.5
    permuted = statistic(np.where(swap, bottom, top), np.where(swap, top, bottom))
    extreme = np.count_nonzero(~(permuted < observed - 1e-12))  # NaN (no spread) counts as extreme
    return float((1 + extreme) / (1 + resamples))


def _ratio_interval(top: np.ndarray, bottom: np.ndarray) -> tuple[float | None, float | None]:
    """2.5–97.5 percentiles of top ÷ bottom over the resamples whose bottom is not 0."""
    ok = bottom > 0
    if not ok.any():
        return None, None
    low, high = np.percentile(top[ok] / bottom[ok], [2.5, 97.5])
    return float(low), float(high)
