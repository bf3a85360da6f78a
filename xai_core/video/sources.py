"""Read any clip source into a :class:`Clip`: a video file (anything FFmpeg or OpenCV decodes), a
folder of frames, a ``.npy`` / ``.npz`` array, a numpy array, or ``shapes:SEED[?options]``
(Moving Shapes).  Arrays and folders are read at random: only the sampled frames (the sampled
rows of a memory-mapped ``.npy``, the sampled image files).  Every bad source raises
:class:`VideoError` with one line that names it; ``check_source`` raises it without decoding,
before a model is loaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .arrays import ARRAY_LAYOUT, as_rgb_uint8, check_layout, value_scale
from .clip import DEFAULT_FPS, Clip, VideoError, shift, too_short, window_range
from .decoders import DECODE_ERRORS, IMAGE_SUFFIXES, describe_error, open_source
from .sampling import check_fit, check_size, gather_random, padding_meta, plan
from .streaming import from_video_file

SAMPLES_DIR = Path(__file__).parents[1] / "data" / "samples"
_SAMPLE_SUFFIXES = (".mp4", ".avi")
_ARRAY_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}


def load_video(
    source: str | os.PathLike | np.ndarray,
    model: Any = None,
    *,
    frames: int | None = None,
    size: tuple[int, int] | None = None,
    fit: str = "crop",
    min_frames: int = 2,
    window: tuple[float | None, float | None] | None = None,
) -> Clip:
    """Read a clip source into a Clip of uint8 frames [T,H,W,3] RGB.

    With a model (an object with ``input_spec.frames/.height/.width``) frames and size default to
    its input; without one, frames=None keeps every frame and size=None the original size.
    Sources: video file, folder of frames, .npy/.npz, numpy array, ``shapes:SEED[?k=v&...]``.
    ``window``: (start, end) in seconds (either None: from the start / to the end): the clip is
    sampled from those frames only (video files and arrays; a manifest's start / end columns).
    Raises VideoError (one line, naming the source) for anything unreadable."""
    if model is not None:
        spec = model.input_spec
        frames = spec.frames if frames is None else frames
        size = (spec.height, spec.width) if size is None else size
    check_fit(fit)
    size = check_size(size)
    if frames is not None and int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    frames = None if frames is None else int(frames)
    min_frames = max(1, int(min_frames))
    name = "array" if isinstance(source, np.ndarray) else os.fspath(source)
    with _one_line(name):
        if window is not None and window != (None, None):
            return _load_window(source, name, frames, size, fit, min_frames, window)
        return _load(source, name, frames, size, fit, min_frames)


def check_source(source: str | os.PathLike | np.ndarray) -> None:
    """Raise VideoError when ``source`` cannot give a clip at all, without decoding a frame: a
    missing, unreadable or empty file, an array of another format or layout, a folder without
    images, a file no decoder opens (corrupt, or not a video), a ``shapes:`` spec that does not
    parse.  Cheap, so it can run before a model is loaded; ``load_video`` finds the rest (too few
    frames, a file that stops decoding)."""
    if isinstance(source, np.ndarray):
        check_layout(source, "array")
        return
    name = os.fspath(source)
    if isinstance(source, str) and source.startswith("shapes:"):
        from .shapes import parse_spec

        parse_spec(source)
        return
    with _one_line(name):
        path = _readable_path(source, name)
        suffix = path.suffix.lower()
        if path.is_dir():
            _image_files(path, name)
        elif suffix in (".npy", ".npz"):
            check_layout(_read_array_file(path, name)[0], name)
        else:
            open_source(path, name)


@contextmanager
def _one_line(name: str) -> Iterator[None]:
    """Turn what reading source ``name`` raises (decoders, the OS, memory) into one VideoError line."""
    try:
        yield
    except VideoError:
        raise
    except MemoryError:
        raise VideoError(f"{name}: too large to hold in memory; ask for fewer frames or a smaller size") from None
    except DECODE_ERRORS as err:
        raise VideoError(f"{name}: {describe_error(err)}") from err


def _readable_path(source: str | os.PathLike, name: str) -> Path:
    """The path of a file or folder source; VideoError when it is missing, unreadable or an empty file."""
    path = Path(source)
    if not path.exists():
        raise VideoError(f"{name}: no such file or folder")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{name}: permission denied (cannot read it)")
    if not path.is_dir() and path.stat().st_size == 0:
        raise VideoError(f"{name}: the file is empty")
    return path


def _load(source, name: str, frames: int | None, size, fit: str, min_frames: int) -> Clip:
    if isinstance(source, np.ndarray):
        return _from_array(source, name, frames, size, fit, min_frames)
    if isinstance(source, str) and source.startswith("shapes:"):
        from .shapes import shapes_clip  # Moving Shapes is generated only when asked for

        return shapes_clip(source, frames, size, fit)
    path = _readable_path(source, name)
    if path.is_dir():
        return _from_folder(path, name, frames, size, fit, min_frames)
    if path.suffix.lower() in (".npy", ".npz"):
        arr, fps = _read_array_file(path, name)
        clip = _from_array(arr, name, frames, size, fit, min_frames)
        clip.source, clip.fps = path.name, fps
        return clip
    return from_video_file(path, name, frames, size, fit, min_frames)


def _load_window(source, name: str, frames: int | None, size, fit: str, min_frames: int, window) -> Clip:
    """``_load`` of the seconds ``window`` of a video file or an array."""
    if isinstance(source, np.ndarray):
        return _from_array(source, name, frames, size, fit, min_frames, window=window)
    path = None if isinstance(source, str) and source.startswith("shapes:") else _readable_path(source, name)
    if path is None or path.is_dir():
        raise VideoError(f"{name}: a start / end window applies to video files and arrays only")
    if path.suffix.lower() in (".npy", ".npz"):
        arr, fps = _read_array_file(path, name)
        clip = _from_array(arr, name, frames, size, fit, min_frames, fps=fps, window=window)
        clip.source = path.name
        return clip
    return from_video_file(path, name, frames, size, fit, min_frames, window=window)


def _from_array(
    arr: np.ndarray,
    name: str,
    frames: int | None,
    size: tuple[int, int] | None,
    fit: str,
    min_frames: int,
    fps: float = DEFAULT_FPS,
    window: tuple[float | None, float | None] | None = None,
) -> Clip:
    """Clip from an array [T,H,W,3] / [T,H,W] (memory-mapped arrays: only sampled frames are read)."""
    check_layout(arr, name)
    n = int(arr.shape[0])
    first, last = (0, n) if window is None else window_range(n, fps, window, name)
    if last - first < min_frames:
        raise too_short(name, last - first, min_frames)
    indices = shift(plan(last - first, frames), first)

    def read(idx: np.ndarray) -> np.ndarray:
        sub = np.asarray(arr[idx])  # fancy indexing reads only these frames of a memmap
        scale = value_scale(sub, name)
        return np.stack([as_rgb_uint8(f, scale) for f in sub])

    out = gather_random(read, indices, size, fit)
    meta = padding_meta(indices) | ({} if window is None else {"window": list(window)})
    return Clip(out, fps, name, indices, n, (int(arr.shape[1]), int(arr.shape[2])), meta)


def _read_array_file(path: Path, name: str) -> tuple[np.ndarray, float]:
    """The video array of a .npy (memory-mapped) or .npz file (key video, frames, or the only array), and fps."""
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        if not f.read(6).startswith(_ARRAY_MAGIC[suffix]):
            raise VideoError(f"{name}: not a {suffix} file (corrupt or another format); expected {ARRAY_LAYOUT}")
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False), DEFAULT_FPS
        with np.load(path, allow_pickle=False) as npz:
            return _pick_npz_array(npz, name)
    except VideoError:
        raise
    except ValueError as err:
        if "object" in str(err).lower() or "pickle" in str(err):
            raise VideoError(
                f"{name}: holds Python objects, which are never unpickled (unsafe); expected {ARRAY_LAYOUT}"
            ) from None
        raise


def _pick_npz_array(npz: Any, name: str) -> tuple[np.ndarray, float]:
    """Array "video", else "frames", else the only array (besides a scalar "fps") of an open .npz."""
    keys = list(npz.files)
    fps = float(npz["fps"]) if "fps" in keys and npz["fps"].size == 1 else DEFAULT_FPS
    arrays = [k for k in keys if k != "fps"]
    key = next((k for k in ("video", "frames") if k in keys), arrays[0] if len(arrays) == 1 else None)
    if key is None:
        found = ", ".join(keys) or "none"
        raise VideoError(f"{name}: no array named 'video' or 'frames' (found: {found}); expected {ARRAY_LAYOUT}")
    return npz[key], fps


def _natural_key(name: str) -> list:
    """Sort key for natural order: frame2 before frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _from_folder(
    path: Path, name: str, frames: int | None, size: tuple[int, int] | None, fit: str, min_frames: int
) -> Clip:
    """Clip from a folder of image files in natural sort order; only sampled images are decoded."""
    files = _image_files(path, name)
    if len(files) < min_frames:
        raise too_short(name, len(files), min_frames)
    original = _common_image_size(files, name)
    indices = plan(len(files), frames)

    def read(idx: np.ndarray) -> np.ndarray:
        return np.stack([_read_image(files[i], name, original) for i in idx])

    out = gather_random(read, indices, size, fit)
    meta = {**padding_meta(indices), "files": [files[i].name for i in indices if i >= 0]}
    return Clip(out, DEFAULT_FPS, path.name, indices, len(files), original, meta)


def _image_files(path: Path, name: str) -> list[Path]:
    """The folder's image files in natural sort order; VideoError when it has none."""
    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        kinds = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        raise VideoError(f"{name}: the folder has no image files ({kinds})")
    return files


def _common_image_size(files: list[Path], name: str) -> tuple[int, int]:
    """(H, W) shared by all images (read from headers only); VideoError if they differ or one is unreadable."""
    sizes = {}
    for f in files:
        try:
            with Image.open(f) as im:
                sizes[f] = (im.height, im.width)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise VideoError(f"{name}: {f.name} is not a readable image ({describe_error(err)})") from None
    first = sizes[files[0]]
    for f, s in sizes.items():
        if s != first:
            raise VideoError(
                f"{name}: images differ in size ({files[0].name} is {first[1]}x{first[0]}, {f.name} is {s[1]}x{s[0]})"
            )
    return first


def _read_image(file: Path, name: str, expected: tuple[int, int]) -> np.ndarray:
    """uint8 [H,W,3] RGB of one image file."""
    img = cv2.imread(str(file), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise VideoError(f"{name}: {file.name} is not a readable image")
    if img.shape[:2] != expected:
        got, want = f"{img.shape[1]}x{img.shape[0]}", f"{expected[1]}x{expected[0]}"
        raise VideoError(f"{name}: {file.name} decodes to {got}, expected {want}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def sample_clips() -> dict[str, Path]:
    """File name -> path of every bundled sample video (mp4 / avi) in SAMPLES_DIR, sorted by name."""
    if not SAMPLES_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(SAMPLES_DIR.iterdir()) if p.suffix.lower() in _SAMPLE_SUFFIXES}
