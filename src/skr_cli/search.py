"""Random search (Bergstra & Bengio, JMLR 2012) as a seeded grid of trials.

A search space maps config keys to a distribution; trial ``k`` of seed ``s`` is one draw of every
key from ``numpy.random.default_rng([s, k])``. The draws depend on nothing else, so a Hydra sweep
over ``search.trial=range(0,N)`` (times heuristics, seeds, ...) is a random search whose trials
are the same for every heuristic and can be rerun, resumed or extended (``range(N,M)``) at will.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

# What a distribution may say: {low, high} (uniform), plus log: true (log-uniform), plus
# int: true (integers, high included); or {choices: [...]} (one of them, equally likely).
RANGE_KEYS = {"low", "high", "log", "int"}


class SpaceError(ValueError):
    """A search space that cannot be drawn from; the message names the key."""


def flatten_space(space: Mapping[str, Any], prefix: str = "") -> dict[str, Mapping[str, Any]]:
    """``{relocation: {strength: {low: 1, high: 9}}}`` or ``{relocation.strength: {...}}`` →
    ``{"relocation.strength": {...}}``: a mapping that is not a distribution is a config level."""
    flat: dict[str, Mapping[str, Any]] = {}
    for key, value in space.items():
        name = f"{prefix}{key}"
        nested = isinstance(value, Mapping) and value and not ({"choices", "low"} & set(value))
        if nested:
            flat |= flatten_space(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def check_space(space: Mapping[str, Mapping[str, Any]]) -> None:
    """Raises SpaceError naming the first distribution that is malformed."""
    for key, spec in space.items():
        allowed = "{low, high[, log, int]} or {choices: [...]}"
        if not isinstance(spec, Mapping):
            raise SpaceError(f"search.space.{key}: {spec!r} is not a distribution: {allowed}")
        if "choices" in spec:
            choices = spec["choices"]
            if set(spec) != {"choices"} or not isinstance(choices, list | tuple) or not choices:
                raise SpaceError(f"search.space.{key}: needs a non-empty choices list alone")
            continue
        low, high = spec.get("low"), spec.get("high")
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
        if set(spec) - RANGE_KEYS or not numbers or not low <= high:
            raise SpaceError(
                f"search.space.{key}: {dict(spec)} is not allowed: {allowed}, low <= high"
            )
        if spec.get("log") and low <= 0:
            raise SpaceError(f"search.space.{key}: a log-uniform range needs low > 0")


def draw(space: Mapping[str, Mapping[str, Any]], *, seed: int, trial: int) -> dict[str, Any]:
    """The values of trial ``trial``: one draw per key, in sorted key order.

    Floats are rounded to 3 significant digits, so that run folders and reports read well.
    """
    check_space(space)
    rng = np.random.default_rng([seed, trial])
    values = {}
    for key in sorted(space):
        spec = space[key]
        if "choices" in spec:
            choices = list(spec["choices"])
            values[key] = choices[int(rng.integers(len(choices)))]
            continue
        low, high = float(spec["low"]), float(spec["high"])
        if spec.get("int") and not spec.get("log"):  # every integer equally likely
            values[key] = int(rng.integers(math.ceil(low), math.floor(high) + 1))
            continue
        if spec.get("log"):
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            value = rng.uniform(low, high)
        if spec.get("int"):
            values[key] = min(int(high), max(int(low), int(round(value))))
        else:
            values[key] = float(f"{value:.3g}")
    return values
