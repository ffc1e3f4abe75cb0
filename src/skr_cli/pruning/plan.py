"""Selection: from channel scores to the plan of channels to remove.

Two scopes: ``local`` removes the same share of every layer; ``global`` ranks every channel of
the network on scores made comparable across layers and removes the lowest overall. A compute
budget (``target_macs``) is met by searching the ratio that lands the pruned network on it.
With ``round_to`` N > 1 every plan is rounded so that each pruned layer keeps a multiple of N
channels (:func:`rounded`), in either scope and under either budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from skr_cli.choices import SCOPES

# layer name → sorted indices of the output channels to remove
Plan = dict[str, list[int]]


def select_local(scores: dict[str, torch.Tensor], ratio: float, min_channels: int = 1) -> Plan:
    """Removes the ``floor(ratio · C)`` lowest-scoring channels of every layer, keeping at least
    ``min_channels`` (and at least one) in each.

    Ties are broken by channel index, so a plan is a pure function of the scores.
    """
    plan: Plan = {}
    for name, layer_scores in scores.items():
        channels = layer_scores.numel()
        keep = min(channels, max(min_channels, 1))
        count = min(math.floor(ratio * channels), channels - keep)
        order = torch.argsort(layer_scores, stable=True)
        plan[name] = sorted(order[: max(count, 0)].tolist())
    return plan


def kept_rounded(channels: int, keep: int, round_to: int, min_channels: int = 1) -> int:
    """How many of a layer's ``channels`` stay when ``keep`` were planned, rounded for
    ``round_to``: the nearest multiple of ``round_to`` (halves up) that is at least
    ``min_channels`` (and one); a layer that this rounding would not shrink keeps all its
    channels, so a layer narrower than ``round_to`` is never pruned.

    ``round_to=1`` returns ``keep`` unchanged. The result never exceeds ``channels``, never
    falls to zero, and is either ``channels`` or a multiple of ``round_to``.
    """
    if keep >= channels or round_to == 1:
        return min(keep, channels)
    floor = math.ceil(max(min_channels, 1) / round_to) * round_to
    nearest = max(math.floor(keep / round_to + 0.5) * round_to, floor)
    return nearest if nearest < channels else channels


def rounded(
    plan: Plan, scores: dict[str, torch.Tensor], round_to: int, min_channels: int = 1
) -> Plan:
    """``plan`` with each layer's kept count rounded by :func:`kept_rounded`: the layer then
    removes its lowest-scoring channels (ties by index) up to the rounded count, so where the
    count is unchanged the plan is too (both scopes remove each layer's channels in that order).
    """
    if round_to == 1:
        return plan
    out: Plan = {}
    for name, layer_scores in scores.items():
        channels = layer_scores.numel()
        keep = kept_rounded(channels, channels - len(plan[name]), round_to, min_channels)
        order = torch.argsort(layer_scores.double(), stable=True)
        out[name] = sorted(order[: channels - keep].tolist())
    return out


def normalised(layer_scores: torch.Tensor) -> torch.Tensor:
    """A layer's scores divided by their mean magnitude, so that layers of different sizes and
    scales compete on equal terms in global selection (a layer of constant scores maps to ones)."""
    scale = layer_scores.abs().mean()
    return layer_scores / scale if scale > 0 else torch.ones_like(layer_scores)


def removal_order(
    scores: dict[str, torch.Tensor], scope: str, min_channels: int
) -> list[tuple[str, int]]:
    """Every removable channel as (layer, index), the first to remove first.

    ``global`` ranks channels on per-layer normalised scores; ``local`` interleaves the layers by
    relative rank (every layer's lowest ``k/C`` share before anyone's next), so any prefix removes
    nearly the same share of every layer (±1 channel). Each layer's ``min_channels`` best
    channels (at least one) are never listed. Ties go by layer name, then channel index.
    """
    if scope not in SCOPES:
        raise ValueError(f"prune.scope={scope} is not allowed: {' | '.join(SCOPES)}")
    keyed: list[tuple[float, str, int]] = []
    for name in sorted(scores):
        layer_scores = scores[name].double()
        channels = layer_scores.numel()
        removable = max(channels - max(min_channels, 1), 0)
        order = torch.argsort(layer_scores, stable=True)[:removable].tolist()
        if scope == "global":
            values = normalised(layer_scores).tolist()
            keyed += [(values[index], name, index) for index in order]
        else:
            keyed += [((rank + 1) / channels, name, index) for rank, index in enumerate(order)]
    keyed.sort(key=lambda item: item[:2])  # stable: equal keys keep their per-layer order
    return [(name, index) for _key, name, index in keyed]


def plan_from(order: list[tuple[str, int]], count: int, layers: list[str]) -> Plan:
    """The plan that removes the first ``count`` channels of ``order``."""
    plan: Plan = {name: [] for name in layers}
    for name, index in order[:count]:
        plan[name].append(index)
    return {name: sorted(indices) for name, indices in plan.items()}


def select_global(scores: dict[str, torch.Tensor], ratio: float, min_channels: int) -> Plan:
    """Removes the ``floor(ratio · total)`` lowest channels of the whole network, ranked on
    per-layer normalised scores, while every layer keeps at least ``min_channels`` (and one)."""
    total = sum(layer_scores.numel() for layer_scores in scores.values())
    order = removal_order(scores, "global", min_channels)
    return plan_from(order, math.floor(ratio * total), list(scores))


def select(
    scores: dict[str, torch.Tensor],
    ratio: float,
    scope: str,
    min_channels: int,
    round_to: int = 1,
) -> Plan:
    """The plan for one share ``ratio`` of channels in the given scope (``local`` | ``global``),
    each pruned layer keeping a multiple of ``round_to`` channels (see :func:`kept_rounded`)."""
    if scope == "local":
        return rounded(select_local(scores, ratio, min_channels), scores, round_to, min_channels)
    if scope == "global":
        return rounded(select_global(scores, ratio, min_channels), scores, round_to, min_channels)
    raise ValueError(f"prune.scope={scope} is not allowed: {' | '.join(SCOPES)}")


def select_for_budget(
    scores: dict[str, torch.Tensor],
    share_of: Callable[[Plan], float],
    target: float,
    *,
    scope: str,
    min_channels: int,
    tolerance: float,
    round_to: int = 1,
    rounds: int = 8,
) -> Plan:
    """The plan whose pruned network keeps ``target`` of the current MACs, within ``tolerance``
    where the channels' granularity allows.

    Bisection finds the longest prefix of :func:`removal_order` that stays above
    ``target - tolerance``. The channel that would cross it may belong to a layer where one
    channel costs several percent of the MACs, so that layer is set aside and the bisection goes
    on over the rest of the order, filling the gap with cheaper channels (at most ``rounds``
    times). If the share still lies further above the target than the first prefix below it,
    that prefix is returned.

    Args:
        scores: layer → channel scores.
        share_of: plan → MACs of the pruned network / MACs of the unpruned one (non-increasing
            as channels are added to the plan).
        target: the wanted share in (0, 1].
        scope: ``local`` | ``global`` (see :func:`removal_order`).
        min_channels: channels every layer keeps.
        tolerance: how far from the target counts as on it (absolute share).
        round_to: every candidate plan is rounded (:func:`rounded`) before its share is
            measured, so the search lands on the best rounded plan (rounding keeps the share
            non-increasing along the order; the coarser steps may land further from the target).
        rounds: most bisections.
    """
    layers = list(scores)

    def final(channels: list[tuple[str, int]]) -> Plan:
        return rounded(plan_from(channels, len(channels), layers), scores, round_to, min_channels)

    def share(channels: list[tuple[str, int]]) -> float:
        return share_of(final(channels))

    chosen: list[tuple[str, int]] = []
    remaining = removal_order(scores, scope, min_channels)
    below: list[tuple[str, int]] | None = None
    for _ in range(rounds):
        low, high = 0, len(remaining) + 1  # share(chosen + remaining[:low]) >= floor holds
        while high - low > 1:
            middle = (low + high) // 2
            if share(chosen + remaining[:middle]) >= target - tolerance:
                low = middle
            else:
                high = middle
        if below is None and low < len(remaining):
            below = chosen + remaining[: low + 1]
        chosen += remaining[:low]
        if share(chosen) - target <= tolerance or low == len(remaining):
            break
        costly = remaining[low][0]  # crossing needs a channel of this layer: too big a step
        remaining = [channel for channel in remaining[low + 1 :] if channel[0] != costly]
    above = share(chosen) - target
    if below is not None and above > tolerance and target - share(below) < above:
        chosen = below
    return final(chosen)
