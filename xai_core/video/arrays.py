"""Arrays as frames: the layouts accepted ([T,H,W,3] RGB or grey [T,H,W]; uint8, or floats in
[0,1] or [0,255]) and their conversion to uint8 RGB, for reading and for writing alike."""

from __future__ import annotations

import numpy as np

from .clip import VideoError

ARRAY_LAYOUT = "a uint8 array [T,H,W,3] RGB (or grey [T,H,W], or floats in [0,1] or [0,255])"


def check_layout(arr: np.ndarray, name: str) -> None:
    """Raise VideoError unless arr is [T,H,W,3] or [T,H,W] of an integer or float dtype."""
    shape, dtype = tuple(arr.shape), arr.dtype
    got = f"got shape {shape} dtype {dtype}"
    if dtype.kind not in "uif":
        raise VideoError(f"{name}: expected {ARRAY_LAYOUT}; {got}")
    if arr.ndim == 3 and shape[-1] in (3, 4):
        raise VideoError(f"{name}: looks like one image [H,W,C], not a video; expected {ARRAY_LAYOUT}; {got}")
    if arr.ndim == 4 and shape[-1] != 3:
        raise VideoError(f"{name}: frames have {shape[-1]} channels, expected 3 (RGB); expected {ARRAY_LAYOUT}")
    if arr.ndim not in (3, 4):
        raise VideoError(f"{name}: expected {ARRAY_LAYOUT}; {got}")
    if min(shape[1:3]) < 1:
        raise VideoError(f"{name}: frames of size {shape[1]}x{shape[2]} are empty")


def value_scale(arr: np.ndarray, name: str) -> float:
    """Factor that brings arr's values to 0..255 (255 for floats in [0,1]); VideoError when out of range."""
    if arr.dtype == np.uint8 or arr.size == 0:
        return 1.0
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise VideoError(f"{name}: the array holds NaN or infinite values; expected {ARRAY_LAYOUT}")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255:
        raise VideoError(f"{name}: values span [{lo:g}, {hi:g}], outside 0..255; expected {ARRAY_LAYOUT}")
    return 255.0 if arr.dtype.kind == "f" and hi <= 1.0 else 1.0


def as_rgb_uint8(frame: np.ndarray, scale: float) -> np.ndarray:
    """One frame [H,W] or [H,W,3] of any accepted dtype -> uint8 [H,W,3]."""
    if frame.dtype != np.uint8:
        frame = np.clip(np.rint(frame.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    return frame
