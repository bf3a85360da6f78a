"""Two to four saved runs side by side: each map on a common scale, their difference, and the
frames they share."""

from __future__ import annotations

import numpy as np

SCALE_PERCENTILE = 99.5


def on_common_scale(spatial: np.ndarray, padded: np.ndarray | None = None) -> np.ndarray:
    """Maps [T,H,W] ÷ the ``SCALE_PERCENTILE``-th percentile of their magnitude over the clip's
    real frames (1 where that is 0), so that maps of two models or methods, in their own units,
    can be subtracted; NaN counts as 0."""
    values = np.nan_to_num(np.asarray(spatial, dtype=np.float64))
    real = values if padded is None or not (~np.asarray(padded, bool)).any() else values[~np.asarray(padded, bool)]
    scale = np.percentile(np.abs(real), SCALE_PERCENTILE)
    return values / (scale if scale > 0 else 1.0)


def difference(a: np.ndarray, b: np.ndarray, padded: np.ndarray | None = None) -> np.ndarray:
    """``on_common_scale(a) - on_common_scale(b)`` [T,H,W]: positive where the first run's map is
    the stronger.  Both maps must be of the same clip (same shape)."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"a difference needs maps of one clip: shapes {np.shape(a)} and {np.shape(b)}")
    return on_common_scale(a, padded) - on_common_scale(b, padded)


def shared_length(lengths: list[int]) -> int:
    """How many frames a common scrubber runs over: the shortest run's (runs of clips of
    different lengths are compared frame by frame up to it)."""
    if not lengths:
        raise ValueError("nothing to compare")
    return min(lengths)
