"""A clock for timing work on any device: on CUDA the queued kernels are waited for first, so
that a time taken after a call covers its work and not only its launch."""

from __future__ import annotations

import time

import torch


def now(device: torch.device | str | None = None) -> float:
    """``time.perf_counter()`` once ``device``'s queued work is done (CUDA), else at once."""
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)
    return time.perf_counter()
