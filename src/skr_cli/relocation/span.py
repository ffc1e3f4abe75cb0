"""The ``span`` target: what of the planned channels' activations the kept channels cannot explain.

Compensation at removal (``compensate.py``) is exact when, at every consumer, the removed input
channels are linear combinations of the kept ones. ``span`` measures how far that is from true,
per planned layer, as the least-squares residual share

    share = ‖X_R − X_K M*‖² / ‖X_R‖²,   M* = argmin_M ‖X_R − X_K M‖² + ρ·s·‖M‖²

with X (N positions, I channels) the input of one consumer of the layer, R the input channels
the plan removes there (the layer's and those of every other planned layer feeding it, as
compensation removes them), K the rest, and ρ·s the ridge term of compensation. The layer's share
sums its own columns of R (a ridge fit is column by column, so the other layers' planned
channels change nothing but K).

Which consumer: the first one in module order. Every consumer of a layer reads the same channels;
they differ only by a pooling in between. In an Inception block the first is branch ``b0``,
which reads the concatenation itself, not through the max-pool of branch ``b3``; when a pooling
sits before every consumer (between two blocks, the classifier's average pool), every consumer
reads the pooled tensor anyway. Compensation still fits every consumer on its own input.

As a term of R the shares are summed over the planned layers, computed on every training forward
pass from the chosen consumers' inputs (train mode) at ``positions`` positions at most (a fixed
random subset). M* is solved without gradient: by the envelope theorem the derivative of the fitted
residual with respect to the activations is that at fixed M*, up to the ridge term, and the
solve's backward pass is spared. The ratio is scale-free: shrinking the planned channels does not
lower it (that is ``bn``'s job); making them combinations of the kept ones does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from skr_cli.engine.modes import removing
from skr_cli.relocation.compensate import column_residuals, input_grams, ridge_solve
from skr_cli.relocation.consumers import Consumer

POSITIONS_SEED = 0  # the subset of positions is fixed: the same draw for every run and step


@dataclass(frozen=True)
class Site:
    """The consumer input where the span of some planned layers' channels is measured.

    Attributes:
        name: the consumer's module name.
        module: the consumer (a convolution or a linear layer).
        kept: its input channels that stay, K (|K|,).
        cut: its input channels that the plan removes, R (|R|,), sorted.
        owner: for every channel of ``cut``, the index in ``layers`` of the planned layer it
            comes from (|R|,); ``len(layers)`` for a layer measured at another consumer.
        layers: the planned layers measured here.
    """

    name: str
    module: nn.Module
    kept: torch.Tensor
    cut: torch.Tensor
    owner: torch.Tensor
    layers: tuple[str, ...]


def span_sites(consumers: dict[str, list[Consumer]]) -> list[Site]:
    """One site per consumer that is the first consumer (in module order) of a planned layer.

    Args:
        consumers: layer name → its consumers in module order (``find_consumers``).
    """
    removed: dict[nn.Module, set[int]] = {}
    for layer_consumers in consumers.values():
        for consumer in layer_consumers:
            removed.setdefault(consumer.module, set()).update(consumer.inputs)
    chosen: dict[nn.Module, list[Consumer]] = {}
    names: dict[nn.Module, list[str]] = {}
    for layer, layer_consumers in consumers.items():
        if layer_consumers:
            first = layer_consumers[0]
            chosen.setdefault(first.module, []).append(first)
            names.setdefault(first.module, []).append(layer)
    sites = []
    for module, entries in chosen.items():
        cut = sorted(removed[module])
        column = {channel: i for i, channel in enumerate(cut)}
        owner = torch.full((len(cut),), len(entries), dtype=torch.long)
        for index, entry in enumerate(entries):
            owner[[column[channel] for channel in entry.inputs]] = index
        kept = [i for i in range(module.weight.shape[1]) if i not in removed[module]]
        sites.append(
            Site(
                entries[0].name,
                module,
                torch.tensor(kept, dtype=torch.long),
                torch.tensor(cut, dtype=torch.long),
                owner,
                tuple(names[module]),
            )
        )
    return sites


@dataclass(frozen=True)
class Placed:
    """A site's channel indices on the device of its input, for the penalty.

    Attributes:
        order: its input channels, K then R (I,).
        tail: (|R|, 2|R|), [−I | I]: the last rows of the map X → [X_K M − X_R, X_R].
        bins: where each of the site's 2|R| columns (``columns``) goes in the penalty's sums.
    """

    order: torch.Tensor
    tail: torch.Tensor
    bins: torch.Tensor

    @classmethod
    def of(cls, site: Site, bins: torch.Tensor, device: torch.device) -> Placed:
        order = torch.cat([site.kept, site.cut])
        eye = torch.eye(len(site.cut))
        tail = torch.cat([-eye, eye], dim=1)
        return cls(*(t.to(device) for t in (order, tail, bins)))


def columns(rows: torch.Tensor, kept: int, tail: torch.Tensor, ridge: float) -> torch.Tensor:
    """Per removed channel r, ‖x_r − X_K m_r‖² (the first |R|), then ‖x_r‖² (the last |R|), on
    these positions: (2|R|,), differentiable in ``rows``.

    Args:
        rows: a site's input, one row per position, its channels in the order K then R (N, I).
        kept: |K|.
        tail: ``Placed.tail`` (|R|, 2|R|).
        ridge: ρ > 0 of the fit, relative to the mean diagonal of X_Kᵀ X_K.
    """
    with torch.no_grad():  # M* and the map X → [X_K M* − X_R, X_R], not differentiated
        if kept:
            gram = rows.T @ rows  # (I, I)
            fit = ridge_solve(gram[:kept, :kept], gram[:kept, kept:], ridge)  # (K, R)
            head = F.pad(fit, (0, fit.shape[1]))  # (K, 2R): [M | 0]
        else:  # nothing explains X_R: a share of 1
            head = tail.new_zeros(0, tail.shape[1])
        lift = torch.cat([head, tail])  # (I, 2R)
    return (rows @ lift).square().sum(0)


def _per_layer(values: torch.Tensor, site: Site, owner: torch.Tensor) -> torch.Tensor:
    """(|R|,) per removed channel → (len(site.layers),) summed per planned layer."""
    total = values.new_zeros(len(site.layers) + 1)  # the last: layers measured elsewhere
    return total.index_add(0, owner, values)[:-1]


class SpanPenalty:
    """Σ over the planned layers of their residual share, read on every forward pass with
    gradients enabled while ``hooks`` is open.

    Each site's hook keeps its columns (``columns``); ``take`` sums them into every layer's
    residual and energy at once and divides, so that the per-site work is one fit and one
    product.
    """

    def __init__(self, consumers: dict[str, list[Consumer]], ridge: float, positions: int) -> None:
        """
        Args:
            consumers: layer name → its consumers in module order (``find_consumers``).
            ridge: ρ > 0 of the fit (``relocation.ridge``, as compensation's).
            positions: positions per batch the fit uses at most.
        """
        self.sites = span_sites(consumers)
        self.ridge = ridge
        self.positions = positions
        self.layer_count = sum(len(site.layers) for site in self.sites)
        self.columns: list[torch.Tensor] = []  # filled by the hooks during a forward pass
        self._bins = self._layer_bins()
        self._placed: dict[tuple[int, torch.device], Placed] = {}
        # (clips, positions per clip, device) → the positions kept of each clip
        self._picked: dict[tuple[int, int, torch.device], torch.Tensor] = {}
        self._fired: list[int] = []  # the sites whose columns ``columns`` holds, in order
        self._sum_bins: dict[tuple[tuple[int, ...], torch.device], torch.Tensor] = {}

    def _layer_bins(self) -> list[torch.Tensor]:
        """Per site, the bin of each of its columns: 2l for layer l's residual, 2l + 1 for its
        energy, 2·layer_count for the channels of layers measured at another site."""
        bins, first = [], 0
        for site in self.sites:
            ids = torch.where(site.owner < len(site.layers), first + site.owner, -1)
            residual = torch.where(ids >= 0, 2 * ids, 2 * self.layer_count)
            energy = torch.where(ids >= 0, 2 * ids + 1, 2 * self.layer_count)
            bins.append(torch.cat([residual, energy]))
            first += len(site.layers)
        return bins

    def take(self) -> torch.Tensor | None:
        """Σ of the layers' shares over the sites read since the last call (None if none)."""
        if not self.columns:
            return None
        values, fired = torch.cat(self.columns), tuple(self._fired)
        self.columns, self._fired = [], []
        key = (fired, values.device)
        if key not in self._sum_bins:
            self._sum_bins[key] = torch.cat([self._bins[i] for i in fired]).to(values.device)
        sums = values.new_zeros(2 * self.layer_count + 1).index_add(0, self._sum_bins[key], values)
        pairs = sums[:-1].view(self.layer_count, 2)  # per layer: residual, energy
        return (pairs[:, 0] / pairs[:, 1].clamp_min(1e-30)).sum()

    @contextmanager
    def hooks(self) -> Iterator[None]:
        """Records every site's columns on each forward pass with gradients enabled."""
        handles = [
            site.module.register_forward_pre_hook(self._recorder(index, site))
            for index, site in enumerate(self.sites)
        ]
        with removing(handles):
            yield
        self.columns, self._fired = [], []

    def _recorder(
        self, index: int, site: Site
    ) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if not torch.is_grad_enabled():
                return
            x = inputs[0]
            key = (index, x.device)
            if key not in self._placed:
                self._placed[key] = Placed.of(site, self._bins[index], x.device)
            placed = self._placed[key]
            with torch.autocast(x.device.type, enabled=False):  # a solve wants float32
                rows = self._rows(index, x, placed.order).float()  # (P, I): K, then R
                self.columns.append(columns(rows, len(site.kept), placed.tail, self.ridge))
            self._fired.append(index)

        return record

    def _rows(self, index: int, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """The input as rows (P, I), its channels in ``order``: a linear layer's every row; a
        convolution's at the same ⌈positions / B⌉ time × space positions of every clip (a fixed
        random subset, the same at every step) when B·T·H·W exceeds ``positions``."""
        if isinstance(self.sites[index].module, nn.Linear):
            return x.reshape(-1, x.shape[-1]).index_select(1, order)
        flat = x.flatten(2)  # (B, I, S)
        batch, space = flat.shape[0], flat.shape[2]
        if batch * space > self.positions:
            key = (batch, space, x.device)
            if key not in self._picked:
                generator = torch.Generator().manual_seed(POSITIONS_SEED)
                count = -(-self.positions // batch)
                picked = torch.randperm(space, generator=generator)[:count].sort()[0]
                self._picked[key] = picked.to(x.device)
            flat = flat.index_select(2, self._picked[key])
        # selecting along the input's own layout keeps the gradient it sends back contiguous
        flat = flat.index_select(1, order)  # whole rows of positions: K, then R
        return flat.transpose(1, 2).reshape(-1, flat.shape[1])


@torch.no_grad()
def span_share(
    model: nn.Module,
    sites: list[Site],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    ridge: float,
) -> dict[str, object]:
    """Every planned layer's residual share on calibration batches, in eval mode, fitted over all
    their positions at once (float64), as compensation fits.

    Args:
        model: the network.
        sites: ``span_sites`` of its consumers.
        batches: calibration (clips (B, C, T, H, W), labels (B,)).
        ridge: ρ > 0 of the fit.

    Returns:
        ``{"layers": {name: share}, "mean": mean over layers}``.
    """
    grams = input_grams(model, [site.module for site in sites], batches)
    shares: dict[str, float] = {}
    for site in sites:
        kept, cut = site.kept.tolist(), site.cut.tolist()
        if not kept:  # nothing left to explain with
            shares |= dict.fromkeys(site.layers, 1.0)
            continue
        _fit, error, energy = column_residuals(grams[site.module], kept, cut, ridge)
        owner = site.owner.to(error.device)
        ratio = _per_layer(error, site, owner) / _per_layer(energy, site, owner).clamp_min(1e-300)
        shares |= dict(zip(site.layers, ratio.tolist(), strict=True))
    mean = sum(shares.values()) / len(shares) if shares else 0.0
    return {"layers": shares, "mean": mean}
