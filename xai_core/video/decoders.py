"""The two decoders of video files: PyAV (FFmpeg) first, OpenCV as the fallback.

Both give a file's facts (fps, claimed frame count, codec, coded size, duration) and its frames in
order, one at a time (``frames``); a decoding error ends the frames and is noted, not raised.
``open_source`` picks the first backend that opens a file with a video stream, or raises a
one-line :class:`VideoError`.
"""

from __future__ import annotations

import errno
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from .clip import DEFAULT_FPS, VideoError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv", ".3gp", ".ts"}
)
_NOT_VIDEO_FORMATS = frozenset({"tty"})  # FFmpeg "decodes" .txt files as ANSI art: not a video
# OpenCV's FFmpeg prints its own log lines ("moov atom not found") when the fallback probes a bad
# file; errors reach users as one VideoError line instead. An explicit setting wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "0")
DECODE_ERRORS = (av.error.FFmpegError, OSError, ValueError, EOFError, cv2.error, zipfile.BadZipFile)


def describe_error(err: BaseException) -> str:
    """One line for an OS / decoder error."""
    if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (cannot read it)"
    if isinstance(err, av.error.InvalidDataError):
        return "not a readable video (corrupt or unknown format)"
    text = " ".join(str(err).split()) or type(err).__name__
    return f"cannot be read ({text})"


class _CannotOpen(Exception):
    """The backend cannot open the file at all."""


class _NotVideo(Exception):
    """FFmpeg opened the file but as something that is not a video (text rendered as ANSI art)."""


class _PyAVSource:
    """Sequential frames of a video file through PyAV."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with av.open(str(path)) as container:
                if container.format.name in _NOT_VIDEO_FORMATS:
                    raise _NotVideo(container.format.name)
                self.has_video = bool(container.streams.video)
                self.stream_kinds = sorted({s.type for s in container.streams})
                if self.has_video:
                    stream = container.streams.video[0]
                    rate = stream.average_rate
                    self.fps = float(rate) if rate and rate > 0 else DEFAULT_FPS
                    self.claimed = int(stream.frames or 0)
                    self.codec = stream.codec_context.name
                    self.shape = (stream.codec_context.height, stream.codec_context.width)
                    self.duration = _duration(stream, container)
        except (av.error.PermissionError, PermissionError):
            raise
        except (av.error.FFmpegError, UnicodeDecodeError) as err:
            raise _CannotOpen(str(err)) from None

    def count(self) -> int:
        """Frame count by demuxing packets (no decoding)."""
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size > 0)

    @contextmanager
    def frames(self, notes: list[str]) -> Iterator[Iterator[Any]]:
        """Decoded av.VideoFrame items in order; a decoding error ends them (noted in notes)."""
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads: faster, but each holds a frame; cap them for 4K
            stream.codec_context.thread_count = min(4, os.cpu_count() or 1)
            yield _until_error(container.decode(stream), notes)

    def display_shape(self) -> tuple[int, int]:
        """(H, W) of the first frame as shown (rotation metadata applied); the coded size if none decodes."""
        try:
            with self.frames([]) as items:
                return next((self.size_of(frame) for frame in items), self.shape)
        except av.error.FFmpegError:
            return self.shape

    @staticmethod
    def to_rgb(frame: av.VideoFrame) -> np.ndarray:
        """uint8 [H,W,3] RGB, turned upright when the stream carries a rotation (phone videos)."""
        rgb = frame.to_ndarray(format="rgb24")
        turns = _quarter_turns(frame)
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    @staticmethod
    def size_of(frame: av.VideoFrame) -> tuple[int, int]:
        h, w = frame.height, frame.width
        return (w, h) if _quarter_turns(frame) % 2 else (h, w)


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns (0..3) of the frame's display matrix."""
    try:
        return round((frame.rotation or 0) / 90) % 4
    except (AttributeError, TypeError, ValueError):
        return 0


class _CV2Source:
    """Sequential frames of a video file through cv2.VideoCapture (fallback when PyAV cannot open it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                raise _CannotOpen("OpenCV cannot open it")
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
            self.claimed = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
            self.shape = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
            fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
            self.codec = fourcc.to_bytes(4, "little").decode("ascii", "replace").strip("\0 ") if fourcc else "unknown"
            self.has_video, self.stream_kinds = True, ["video"]
            self.duration = self.claimed / self.fps if self.claimed else None
        finally:
            cap.release()

    def count(self) -> int:
        with self.frames([]) as items:
            return sum(1 for _ in items)

    @contextmanager
    def frames(self, notes: list[str]) -> Iterator[Iterator[Any]]:
        """The capture after each successful grab (retrieve() decodes the frame)."""
        cap = cv2.VideoCapture(str(self.path))
        try:
            yield _until_error(_grabs(cap), notes)
        finally:
            cap.release()

    @staticmethod
    def to_rgb(cap: cv2.VideoCapture) -> np.ndarray:
        ok, bgr = cap.retrieve()
        if not ok or bgr is None:
            raise VideoError("OpenCV could not decode a frame")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def size_of(self, cap: cv2.VideoCapture) -> tuple[int, int]:
        return self.shape

    def display_shape(self) -> tuple[int, int]:
        return self.shape


Decoder = _PyAVSource | _CV2Source


def _grabs(cap: cv2.VideoCapture) -> Iterator[cv2.VideoCapture]:
    while cap.grab():
        yield cap


def _until_error(items: Iterator[Any], notes: list[str]) -> Iterator[Any]:
    """Yield from items; stop (and note why) at the first decoding error."""
    try:
        yield from items
    except (av.error.FFmpegError, cv2.error, OSError) as err:
        notes.append(f"decoding stopped early: {' '.join(str(err).split())}")


def _duration(stream: Any, container: Any) -> float | None:
    """Seconds, from the stream, else the container; None when neither says."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def open_source(path: Path, name: str) -> Decoder:
    """The first backend (PyAV, then OpenCV) that opens a file with a video stream."""
    try:
        src: Decoder = _PyAVSource(path)
    except _NotVideo:
        raise _unsupported(path, name) from None
    except _CannotOpen:
        try:
            src = _CV2Source(path)
        except _CannotOpen:
            suffix = path.suffix.lower()
            if suffix and suffix not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
                raise _unsupported(path, name) from None
            raise VideoError(f"{name}: not a readable video (corrupt or unknown format)") from None
    if not src.has_video:
        kinds = ", ".join(src.stream_kinds) or "no streams"
        raise VideoError(f"{name}: the file contains no video stream ({kinds})")
    return src


def _unsupported(path: Path, name: str) -> VideoError:
    return VideoError(
        f"{name}: unsupported file type '{path.suffix.lower()}' (not a video FFmpeg or OpenCV can read); expected a "
        "video file, a folder of frames, .npy/.npz or shapes:SEED"
    )
