"""A video file as a Clip, decoded once and streaming: only the sampled frames are converted to
RGB and they are resized at once, so memory stays at about ``T`` frames of the target size
whatever the file's length or resolution.  Also ``probe_video``: a file's facts without decoding
it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .clip import Clip, VideoError, shift, too_short, window_range
from .decoders import DECODE_ERRORS, Decoder, describe_error, open_source
from .sampling import fit_image, padding_meta, plan


@dataclass
class _Decoded:
    frames: np.ndarray  # uint8 [T,H,W,3]
    count: int  # frames decoded (up to where decoding stopped)
    original_size: tuple[int, int]
    complete: bool  # every planned index was delivered


def _gather_stream(
    items: Iterator[Any],
    to_rgb: Callable[[Any], np.ndarray],
    size_of: Callable[[Any], tuple[int, int]],
    wanted: np.ndarray | None,
    size: tuple[int, int] | None,
    fit: str,
) -> _Decoded:
    """Walk decoded items once, converting and resizing only those in wanted (None: all of them).

    Memory: the output [T,H,W,3] plus one full-size frame at a time. Stops after the last index."""
    keep_all = wanted is None
    position = {} if keep_all else {int(idx): i for i, idx in enumerate(wanted) if idx >= 0}
    last = max(position, default=-1)
    kept: list[np.ndarray] = []
    out, original, target, count = None, (0, 0), (0, 0), 0
    for index, item in enumerate(items):
        count = index + 1
        if index == 0:
            original = size_of(item)
            target = size or original
        if keep_all or index in position:
            rgb = to_rgb(item)
            frame = fit_image(rgb, target, fit)
            del rgb  # release the full-size frame before the next decode
            if keep_all:
                kept.append(frame)
            else:
                if out is None:
                    out = np.zeros((len(wanted), *target, 3), np.uint8)
                out[position[index]] = frame
        if not keep_all and index >= last:
            break
    if keep_all:
        frames = np.stack(kept) if kept else np.zeros((0, *target, 3), np.uint8)
    else:
        frames = out if out is not None else np.zeros((len(wanted), *target, 3), np.uint8)
    return _Decoded(frames, count, original, keep_all or count > last)


def from_video_file(
    path: Path,
    name: str,
    frames: int | None,
    size: tuple[int, int] | None,
    fit: str,
    min_frames: int,
    window: tuple[float | None, float | None] | None = None,
) -> Clip:
    """Clip from a video file, decoded once and streaming (see module docstring); ``window``:
    (start, end) in seconds, the clip sampled from those frames only."""
    src = open_source(path, name)
    notes: list[str] = []
    n = None
    first, last = 0, None
    if frames is not None or window is not None:
        n = src.claimed if src.claimed > 0 else _count_frames(src, notes)
        first, last = (0, n) if window is None else window_range(n, src.fps, window, name)
        if last - first < min_frames:
            raise too_short(name, last - first, min_frames)
    kept = None if n is None else shift(plan(last - first, frames), first)
    with src.frames(notes) as items:
        got = _gather_stream(items, src.to_rgb, src.size_of, kept, size, fit)
    if not got.complete:  # fewer frames than claimed: sample from those that decoded
        last = min(last, got.count)
        if last - first < min_frames:
            raise _decode_failure(name, max(0, last - first), min_frames, notes)
        notes.append(f"the file claimed {n} frames but only {got.count} decoded; sampled from those")
        n, kept = got.count, shift(plan(last - first, frames), first)
        with src.frames([]) as items:
            got = _gather_stream(items, src.to_rgb, src.size_of, kept, size, fit)
    if kept is None:  # kept every frame
        if got.count < min_frames:
            raise _decode_failure(name, got.count, min_frames, notes)
        n, kept = got.count, np.arange(got.count, dtype=np.int64)
    meta = {**padding_meta(kept), "codec": src.codec}
    if window is not None:
        meta["window"] = list(window)
    if notes:
        meta["notes"] = notes
    return Clip(got.frames, src.fps, path.name, kept, n, got.original_size, meta)


def _count_frames(src: Decoder, notes: list[str]) -> int:
    """Frames in the file when the container does not say: count packets, else decode and count."""
    try:
        n = src.count()
    except DECODE_ERRORS:
        n = 0
    if n > 0:
        return n
    with src.frames(notes) as items:
        return sum(1 for _ in items)


def _decode_failure(name: str, count: int, min_frames: int, notes: list[str]) -> VideoError:
    if count == 0:
        why = f" ({notes[0]})" if notes else ""
        return VideoError(f"{name}: no decodable video frames; the file may be truncated or corrupt{why}")
    return too_short(name, count, min_frames)


def probe_video(path: str | os.PathLike) -> dict:
    """{"frames", "fps", "width", "height", "codec", "duration"} of a video file; frames are counted
    by demuxing packets when the container does not say. Raises VideoError."""
    name = os.fspath(path)
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{name}: no such file" if not path.exists() else f"{name}: not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"{name}: the file is empty")
    try:
        src = open_source(path, name)
        frames = src.claimed if src.claimed > 0 else src.count()
        height, width = src.display_shape()
    except VideoError:
        raise
    except DECODE_ERRORS as err:
        raise VideoError(f"{name}: {describe_error(err)}") from err
    duration = src.duration if src.duration else (frames / src.fps if frames else None)
    return {
        "frames": int(frames),
        "fps": float(src.fps),
        "width": int(width),
        "height": int(height),
        "codec": src.codec,
        "duration": None if duration is None else float(duration),
    }
