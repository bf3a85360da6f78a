"""Hooks that never outlive a ``with`` block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class Captured:
    """The output of a module during the last forward pass (still part of the autograd graph)."""

    output: torch.Tensor | None = None


@contextmanager
def capture_output(module: nn.Module) -> Iterator[Captured]:
    """Record ``module``'s output while the block runs; the hook is removed on exit, always."""
    captured = Captured()

    def hook(_module, _inputs, output):
        captured.output = output[0] if isinstance(output, (tuple, list)) else output

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def count_hooks(model: nn.Module) -> int:
    """Forward, forward-pre and backward hooks registered anywhere in ``model``."""
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        total += len(getattr(m, "_backward_pre_hooks", {}))
    return total
