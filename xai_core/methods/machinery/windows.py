"""Where perturbations go: Captum's sliding windows along an axis, windows of frames, spatio-temporal
occlusion windows, and the grid of blocks that tiles a frame (TSR's features)."""

from __future__ import annotations

import math

from .perturbation import Perturbation


def window_starts(size: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Captum's sliding windows along one axis: starts 0, s, 2s, ... (ceil((size - w) / s) + 1 of
    them), the last one cut at the border.  -> [(start, stop)]"""
    if window > size:
        raise ValueError(f"a window of {window} does not fit in {size}")
    if stride > window and window < size:
        raise ValueError(f"a stride of {stride} would skip pixels between windows of {window}")
    count = math.ceil((size - window) / stride) + 1
    return [(i * stride, min(i * stride + window, size)) for i in range(count)]


def frame_windows(frames: int, window: int) -> list[Perturbation]:
    """Windows of ``window`` consecutive frames, at every start."""
    return [Perturbation(t, t + window) for t in range(frames - window + 1)]


def occlusion_windows(shape: tuple[int, int, int], window: tuple, stride: tuple) -> list[Perturbation]:
    """shape (T, H, W) -> every spatio-temporal window (t, y, x order, Captum's positions)."""
    axes = [window_starts(n, w, s) for n, w, s in zip(shape, window, stride, strict=True)]
    return [Perturbation(t0, t1, (y0, y1, x0, x1)) for t0, t1 in axes[0] for y0, y1 in axes[1] for x0, x1 in axes[2]]


def grid_features(height: int, width: int, block: int) -> list[tuple[int, int, int, int]]:
    """Blocks of ``block`` x ``block`` pixels tiling the frame (the last row and column cut)."""
    return [
        (y0, y1, x0, x1)
        for y0, y1 in window_starts(height, block, block)
        for x0, x1 in window_starts(width, block, block)
    ]
