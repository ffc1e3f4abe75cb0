"""How the penalty's weight λ ramps from 0 to ``relocation.strength`` over the phase."""

from __future__ import annotations

import math

from skr_cli.choices import SCHEDULES


def ramp(schedule: str, progress: float, *, strength: float, rate: float) -> float:
    """λ at ``progress`` ∈ [0, 1] of the phase: 0 at the start, ``strength`` at the end.

    Args:
        schedule: ``linear`` (λ ∝ t), ``cosine`` ((1 − cos πt) / 2: slow, fast, slow) or
            ``exponential`` ((e^{rate·t} − 1) / (e^{rate} − 1): nearly flat, then steep).
        progress: the share t of the phase's steps done, clipped to [0, 1].
        strength: λ at the end of the phase.
        rate: steepness of the exponential ramp (> 0); unused by the others.

    Raises:
        ValueError: on an unknown schedule.
    """
    t = min(max(progress, 0.0), 1.0)
    if schedule == "linear":
        share = t
    elif schedule == "cosine":
        share = (1.0 - math.cos(math.pi * t)) / 2.0
    elif schedule == "exponential":
        share = math.expm1(rate * t) / math.expm1(rate)
    else:
        raise ValueError(f"relocation.schedule={schedule}: one of {' | '.join(SCHEDULES)}")
    return strength * share
