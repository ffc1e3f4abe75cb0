"""The relocation phase's objective: task loss + λ(t)·R(plan) (+ distillation to the dense model).

It plugs into the shared training loop as its ``objective`` (and ``after_step``), so the phase is
the same loop as pretraining and fine-tuning with another loss.

``decoupled`` (the default of the config) applies the parameter terms of R (``bn``, ``weights``)
as a proximal step after every optimiser step, p_S ← p_S / (1 + 2·η_t·λ(t)) with η_t the step's
learning rate, like AdamW's decoupled weight decay: inside an adaptive optimiser's loss an L2
penalty moves each parameter by at most about η per step, whatever λ, so the planned channels
could not fade within a short phase. The data terms (``activation``, ``span``) always stay in
the loss. With ``balance="gradnorm"`` R is in the loss and λ is set every step so
that ‖λ·∇R‖ = ramp(t)·‖∇(task)‖ (the ramp reaching ``strength``), scale-free across models and
heuristics: both gradients are taken here, and the returned loss carries their weighted sum as
its gradient, so the loop's single backward pass costs next to nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer

from skr_cli.choices import BALANCES
from skr_cli.engine.train import READ_EVERY
from skr_cli.relocation.penalty import Penalty
from skr_cli.relocation.schedule import ramp

StepLog = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class Ramp:
    """λ's schedule over the phase (see ``schedule.ramp``)."""

    schedule: str
    strength: float
    rate: float
    total_steps: int

    def at(self, step: int) -> float:
        return ramp(
            self.schedule, step / max(self.total_steps, 1), strength=self.strength, rate=self.rate
        )


@dataclass(frozen=True)
class Distillation:
    """KL(p_teacher ‖ p_student) at temperature τ, times τ² (Hinton et al. 2015)."""

    teacher: nn.Module
    weight: float
    temperature: float

    def __call__(self, clips: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """clips (B, C, T, H, W), student logits (B, K) → the scalar term (before ``weight``)."""
        with torch.no_grad():
            target = self.teacher(clips)  # (B, K), teacher in eval mode
        tau = self.temperature
        student = F.log_softmax(logits / tau, dim=-1)
        teacher = F.log_softmax(target / tau, dim=-1)
        return F.kl_div(student, teacher, reduction="batchmean", log_target=True) * tau**2


@dataclass(frozen=True)
class Distilled:
    """``objective`` of fine-tuning with distillation: the cross-entropy (with
    ``label_smoothing``) plus ``distillation.weight`` times its KL term."""

    distillation: Distillation
    label_smoothing: float = 0.0

    def __call__(
        self,
        model: nn.Module,
        clips: torch.Tensor,
        labels: torch.Tensor,
        logits: torch.Tensor,
        step: int,
    ) -> torch.Tensor:
        task = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return task + self.distillation.weight * self.distillation(clips, logits)


@dataclass
class Relocation:
    """``objective(model, clips, labels, logits, step) -> loss`` of the relocation phase.

    Every step's parts go to ``history`` (and to ``on_log`` when given): ``task`` (the
    cross-entropy), ``distill``, ``penalty`` (R), ``lambda`` and, with GradNorm, ``grad_ratio``
    (‖λ·∇R‖ / ‖∇task‖ actually applied).
    """

    penalty: Penalty
    ramp: Ramp
    balance: str = "none"
    decoupled: bool = False
    distillation: Distillation | None = None
    on_log: StepLog | None = None
    label_smoothing: float = 0.0  # of the task's cross-entropy, as in fine-tuning
    history: list[dict[str, float]] = field(default_factory=list)
    # step logs whose tensors are still on the device: read back together by ``flush``
    pending: list[dict[str, torch.Tensor | float]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.balance not in BALANCES:
            raise ValueError(f"relocation.balance={self.balance}: one of {' | '.join(BALANCES)}")
        if self.decoupled and self.balance == "gradnorm":
            raise ValueError("relocation.balance=gradnorm needs relocation.decoupled=false")

    def __call__(
        self,
        model: nn.Module,
        clips: torch.Tensor,
        labels: torch.Tensor,
        logits: torch.Tensor,
        step: int,
    ) -> torch.Tensor:
        task = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        log: dict[str, torch.Tensor | float] = {"task": task.detach()}
        objective = task
        if self.distillation is not None and self.distillation.weight > 0:
            distill = self.distillation(clips, logits)
            log["distill"] = distill.detach()
            objective = objective + self.distillation.weight * distill
        level = self.ramp.at(step)
        if self.decoupled:  # the parameter terms go to ``after_step``; logged in full
            in_loss = self.penalty(parameters=False)
            lam, loss = level, objective + level * in_loss
            with torch.no_grad():
                penalty = in_loss.detach() + self.penalty.parameter_terms()
        elif self.balance == "gradnorm":
            penalty = self.penalty()
            loss, lam, ratio = balanced(model, objective, penalty, level)
            log["grad_ratio"] = ratio
        else:
            penalty = self.penalty()
            lam, loss = level, objective + level * penalty
        log |= {"penalty": penalty.detach(), "lambda": lam}
        self.pending.append(log)
        if clips.device.type == "cpu" or len(self.pending) >= READ_EVERY:
            self.flush()
        return loss

    def flush(self) -> None:
        """Moves the pending step logs into ``history`` (and ``on_log``), reading their tensors
        back in one transfer: on an accelerator that happens every ``READ_EVERY`` steps and at
        the phase's last step, not once per term and step."""
        tensors = [v for log in self.pending for v in log.values() if isinstance(v, torch.Tensor)]
        values = iter(torch.stack([t.double() for t in tensors]).tolist() if tensors else [])
        for log in self.pending:
            entry = {k: next(values) if isinstance(v, torch.Tensor) else v for k, v in log.items()}
            self.history.append(entry)
            if self.on_log is not None:
                self.on_log(entry)
        self.pending.clear()

    def after_step(self, step: int, optimizer: Optimizer) -> None:
        """The decoupled proximal step of the parameter terms, with the step's learning rate
        (called after the optimiser step, before the scheduler's); nothing when coupled."""
        if self.decoupled:
            self.penalty.prox(optimizer.param_groups[0]["lr"] * self.ramp.at(step))
        if step >= self.ramp.total_steps:  # the phase's last step: nothing left pending
            self.flush()


def balanced(
    model: nn.Module, objective: torch.Tensor, penalty: torch.Tensor, ratio: float
) -> tuple[torch.Tensor, float, float]:
    """GradNorm balancing of one step: λ = ratio·‖∇objective‖ / ‖∇R‖ over the parameters.

    Returns a loss whose value is objective + λ·R and whose gradient is ∇objective + λ·∇R
    (both already computed, so its backward pass is one multiply per parameter), λ, and the
    applied ratio ‖λ·∇R‖ / ‖∇objective‖.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    task_grads = torch.autograd.grad(objective, params, retain_graph=True, allow_unused=True)
    if penalty.requires_grad:
        pen_grads = torch.autograd.grad(penalty, params, retain_graph=True, allow_unused=True)
    else:  # nothing planned: R is a constant
        pen_grads = (None,) * len(params)
    task_norm, pen_norm = _norm(task_grads), _norm(pen_grads)
    lam = ratio * task_norm / pen_norm if pen_norm > 0 else 0.0
    surrogate = torch.zeros(())
    for param, g_task, g_pen in zip(params, task_grads, pen_grads, strict=True):
        grad = _combine(g_task, g_pen, lam)
        if grad is not None:
            surrogate = surrogate + (param * grad).sum()
    value = (objective + lam * penalty).detach()
    applied = lam * pen_norm / task_norm if task_norm > 0 else 0.0
    return surrogate - surrogate.detach() + value, lam, applied


def _norm(grads: tuple[torch.Tensor | None, ...]) -> float:
    squares = [g.double().square().sum() for g in grads if g is not None]
    return torch.stack(squares).sum().sqrt().item() if squares else 0.0


def _combine(
    g_task: torch.Tensor | None, g_pen: torch.Tensor | None, lam: float
) -> torch.Tensor | None:
    if g_task is None:
        return None if g_pen is None else lam * g_pen
    return g_task if g_pen is None else g_task + lam * g_pen
