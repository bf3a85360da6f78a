"""Timing: medians of repeated runs, runs of several functions interleaved, and how far two maps differ."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
    """Run ``fn`` warmup + repeats times; median, min and max of the timed runs (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return _summary(times)


def side_by_side(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Time already warmed-up functions in turns (a, b, c, a, b, c, ...), so that a change in the
    machine's load hits each alike; per function the median, min and max (seconds)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: _summary(t) for name, t in times.items()}


def _summary(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": len(times)}


def relative_difference(ours: np.ndarray, peer: np.ndarray | torch.Tensor) -> float:
    """max |peer - ours| / max |ours| over the [T,H,W] maps."""
    peer = peer.detach().cpu().numpy() if isinstance(peer, torch.Tensor) else np.asarray(peer)
    if peer.shape != ours.shape:
        return float("inf")
    return float(np.abs(peer - ours).max() / (np.abs(ours).max() + 1e-12))
