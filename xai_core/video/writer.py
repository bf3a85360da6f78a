"""Writing frames: H.264 mp4 (libx264, yuv420p) and animated GIF, to a file or to bytes.

A file appears only once it is complete (written under a temporary name, then renamed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from itertools import chain
from pathlib import Path

import av
import numpy as np
from PIL import Image

from .arrays import as_rgb_uint8, check_layout, value_scale
from .clip import VideoError


def _iter_rgb(frames: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """uint8 [H,W,3] frames from an array [T,H,W(,3)] (one value scale for all) or an iterable of frames."""
    if isinstance(frames, np.ndarray):
        check_layout(frames, "frames to write")
        scale = value_scale(frames, "frames to write")
        for frame in frames:
            yield as_rgb_uint8(frame, scale)
        return
    for frame in frames:
        frame = np.asarray(frame)
        check_layout(frame[None], "frame to write")
        yield as_rgb_uint8(frame, value_scale(frame, "frame to write"))


def _rate(fps: float) -> Fraction:
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


def _write_mp4(frames: Iterator[np.ndarray], path: Path, fps: float, crf: int, preset: str) -> None:
    """H.264 (libx264, yuv420p, +faststart); odd sizes are padded to even by repeating the last row/column."""
    first = next(frames)
    h, w = first.shape[:2]
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=_rate(fps))
        stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for frame in chain([first], frames):
            if frame.shape[:2] != (h, w):
                raise VideoError(f"{path.name}: frames differ in size ({w}x{h} and {frame.shape[1]}x{frame.shape[0]})")
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if (h | w) % 2 else frame
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


def _write_gif(frames: Iterator[np.ndarray], path: Path, fps: float) -> None:
    """Animated GIF, looping forever: Pillow picks a 256-colour palette per frame, FFmpeg's GIF
    muxer writes every frame (Pillow's own writer merges identical consecutive frames)."""
    first = next(frames)
    h, w = first.shape[:2]
    with av.open(str(path), "w", format="gif", options={"loop": "0"}) as container:
        stream = container.add_stream("gif", rate=_rate(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "pal8"
        for frame in chain([first], frames):
            if frame.shape[:2] != (h, w):
                raise VideoError(f"{path.name}: frames differ in size ({w}x{h} and {frame.shape[1]}x{frame.shape[0]})")
            container.mux(stream.encode(_pal8_frame(frame)))
        container.mux(stream.encode())


def _pal8_frame(rgb: np.ndarray) -> av.VideoFrame:
    """uint8 [H,W,3] -> a pal8 VideoFrame with an adaptive 256-colour palette."""
    quantized = Image.fromarray(rgb).quantize(256)
    palette = np.asarray(quantized.getpalette(), np.uint8).reshape(-1, 3)[:256]
    argb = np.zeros((256, 4), np.uint8)
    argb[:, 0] = 255
    argb[: len(palette), 1:] = palette
    return av.VideoFrame.from_ndarray((np.asarray(quantized), argb), format="pal8")


def write_video(
    frames: np.ndarray | Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: float = 8.0,
    *,
    crf: int = 18,
    preset: str = "medium",
) -> Path:
    """Write frames uint8 [T,H,W,3] RGB (or an iterable of [H,W,3]) to .mp4 (H.264) or .gif.

    crf / preset tune libx264 (mp4 only). The file appears only once complete. Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise VideoError(f"{path}: cannot write '{suffix or path.name}' files; use .mp4 or .gif")
    path.parent.mkdir(parents=True, exist_ok=True)
    items = _iter_rgb(frames)
    if (first := next(items, None)) is None:
        raise VideoError(f"{path}: no frames to write")
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix=f".{path.stem}-", dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".mp4":
            _write_mp4(chain([first], items), Path(tmp), fps, crf, preset)
        else:
            _write_gif(chain([first], items), Path(tmp), fps)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def encode_video(frames: np.ndarray | Iterable[np.ndarray], fmt: str = "mp4", fps: float = 8.0) -> bytes:
    """The bytes of frames [T,H,W,3] encoded as fmt "mp4" (H.264) or "gif" (for download buttons)."""
    if fmt not in ("mp4", "gif"):
        raise VideoError(f"cannot encode to {fmt!r}; use 'mp4' or 'gif'")
    with tempfile.TemporaryDirectory(prefix="xai-encode-") as tmp:
        return write_video(frames, Path(tmp) / f"clip.{fmt}", fps).read_bytes()
