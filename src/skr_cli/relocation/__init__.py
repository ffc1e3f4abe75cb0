"""Soft Knowledge Relocation: a phase that drives the planned channels' contribution to zero
(or into the span of the kept channels) while the kept channels take over (task loss +
λ(t)·R(plan), optional distillation from the dense model, GradNorm balancing), and least-squares
compensation into the consumers at removal.
"""

from skr_cli.relocation.compensate import compensate, fold, ridge_fit
from skr_cli.relocation.consumers import Consumer, find_consumers
from skr_cli.relocation.measure import calibration_loss, energy_share
from skr_cli.relocation.objective import (
    BALANCES,
    Distillation,
    Distilled,
    Ramp,
    Relocation,
    balanced,
)
from skr_cli.relocation.penalty import TARGETS, Penalty, target_terms
from skr_cli.relocation.schedule import SCHEDULES, ramp
from skr_cli.relocation.span import Site, SpanPenalty, span_share, span_sites

__all__ = [
    "BALANCES",
    "SCHEDULES",
    "TARGETS",
    "Consumer",
    "Distillation",
    "Distilled",
    "Penalty",
    "Ramp",
    "Relocation",
    "Site",
    "SpanPenalty",
    "balanced",
    "calibration_loss",
    "compensate",
    "energy_share",
    "find_consumers",
    "fold",
    "ramp",
    "ridge_fit",
    "span_share",
    "span_sites",
    "target_terms",
]
