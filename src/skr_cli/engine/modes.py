"""Context managers for passes that must leave a model as they found it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from torch import nn
from torch.utils.hooks import RemovableHandle


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside (batch-norm statistics frozen, dropout off); the former train/eval
    mode comes back on exit, also after an error."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextmanager
def removing(handles: Iterable[RemovableHandle]) -> Iterator[None]:
    """Keeps the given hooks for the block; removes every one of them on exit."""
    handles = list(handles)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
