"""The decoded clip every source gives (:class:`Clip`) and the error a bad source raises."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

DEFAULT_FPS = 25.0  # when the source says nothing (folders, arrays, streams without a rate)


class VideoError(ValueError):
    """A clip source that cannot be read; the message is one line naming the source."""


def too_short(name: str, n: int, min_frames: int) -> VideoError:
    """The error for a source of ``n`` frames when a clip needs ``min_frames``."""
    if n == 0:
        return VideoError(f"{name}: has no frames")
    noun = "frame" if n == 1 else "frames"
    return VideoError(f"{name}: has only {n} {noun}; a video needs at least {min_frames}")


def window_range(n: int, fps: float, window: tuple[float | None, float | None], name: str) -> tuple[int, int]:
    """The source frames [first, last) of the seconds [start, end) of a source of ``n`` frames at
    ``fps`` (start None: 0; end None: the end); VideoError when the window holds no frame."""
    start, end = window
    first = 0 if start is None else int(np.ceil(float(start) * fps - 1e-9))
    last = n if end is None else min(n, int(np.ceil(float(end) * fps - 1e-9)))
    if start is not None and start < 0 or end is not None and start is not None and end <= start:
        raise VideoError(f"{name}: the window {_seconds(start)}-{_seconds(end)} s is empty or negative")
    if first >= last:
        raise VideoError(
            f"{name}: no frame in {_seconds(start)}-{_seconds(end)} s (the source has {n} frames at {fps:g} fps, "
            f"{n / fps:.2f} s)"
        )
    return first, last


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{float(value):g}"


def shift(indices: np.ndarray, first: int) -> np.ndarray:
    """Indices into a window starting at source frame ``first`` -> indices into the source (-1 padding kept)."""
    return np.where(indices >= 0, indices + first, -1).astype(np.int64)


@dataclass
class Clip:
    """A decoded, sampled clip.

    frames: uint8 [T,H,W,3] RGB, C-contiguous; frame_indices: int64 [T], index of each frame in
    the original decode order, -1 for padding (black) frames; original_size: (H, W) of the source.
    ground_truth holds named arrays sampled like the frames (first axis T).
    """

    frames: np.ndarray
    fps: float
    source: str
    frame_indices: np.ndarray
    original_frames: int
    original_size: tuple[int, int]
    meta: dict = field(default_factory=dict)
    ground_truth: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frames = np.ascontiguousarray(self.frames, dtype=np.uint8)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64)
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"Clip frames must be [T,H,W,3], got {self.frames.shape}")
        if self.frame_indices.shape != (len(self.frames),):
            raise ValueError(f"frame_indices must be [T={len(self.frames)}], got {self.frame_indices.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def padded(self) -> np.ndarray:
        """bool [T]: True for null padding frames."""
        return self.frame_indices < 0

    def content_hash(self) -> str:
        """Hex sha1 of the frames, their shape and frame_indices (a cache key)."""
        h = hashlib.sha1()
        h.update(repr(self.frames.shape).encode())
        h.update(self.frames.data)
        h.update(np.ascontiguousarray(self.frame_indices, dtype="<i8").data)
        return h.hexdigest()
