"""Read any clip source into a :class:`Clip`; sample, pad and resize it; write H.264 mp4 and GIF.

Sources: a video file (anything FFmpeg or OpenCV decodes), a folder of frames, a ``.npy`` /
``.npz`` array, a numpy array, or ``shapes:SEED[?options]`` (Moving Shapes).  Video files are
decoded once, streaming: only the sampled frames are converted to RGB and they are resized at
once, so memory stays at about ``T`` frames of the target size whatever the source's length or
resolution.  Every bad source raises :class:`VideoError` with one line that names it.

Sampling is uniform over the whole video (the centre of each of ``T`` equal segments); videos
shorter than ``T`` are padded at the end with black (null) frames whose index is ``-1``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image

SAMPLES_DIR = Path(__file__).parent / "data" / "samples"
DEFAULT_SHAPES_OPTIONS: dict = {"noise": 8.0, "distractors": 2}
DEFAULT_FPS = 25.0  # when the source says nothing (folders, arrays, streams without a rate)
SHAPES_FPS = 8.0
FITS = ("crop", "pad", "stretch")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv", ".3gp", ".ts"}
)
_SAMPLE_SUFFIXES = (".mp4", ".avi")
_NOT_VIDEO_FORMATS = frozenset({"tty"})  # FFmpeg "decodes" .txt files as ANSI art: not a video
_ARRAY_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}
_ARRAY_LAYOUT = "a uint8 array [T,H,W,3] RGB (or grey [T,H,W], or floats in [0,1] or [0,255])"
# OpenCV's FFmpeg prints its own log lines ("moov atom not found") when the fallback probes a bad
# file; errors reach users as one VideoError line instead. An explicit setting wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "0")
_DECODE_ERRORS = (av.error.FFmpegError, OSError, ValueError, EOFError, cv2.error, zipfile.BadZipFile)


class VideoError(ValueError):
    """A clip source that cannot be read; the message is one line naming the source."""


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


# ----------------------------------------------------------------------------- sampling, resizing


def sample_indices(n_source: int, n_target: int) -> np.ndarray:
    """int64 [n_target]: uniform indices into n_source frames, or all of them then -1 padding.

    With n_source >= n_target, output frame i is the centre of the i-th of n_target equal
    segments, floor((i + 0.5) * n_source / n_target)."""
    if n_source < 0 or n_target < 1:
        raise ValueError(f"need n_source >= 0 and n_target >= 1, got {n_source} and {n_target}")
    if n_source < n_target:
        return np.concatenate([np.arange(n_source), np.full(n_target - n_source, -1)]).astype(np.int64)
    i = np.arange(n_target, dtype=np.int64)
    return (2 * i + 1) * n_source // (2 * n_target)  # exact integer form of floor((i + 0.5) * N / T)


def _check_fit(fit: str) -> None:
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}")


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if len(size) != 2 or min(int(size[0]), int(size[1])) < 1:
        raise ValueError(f"size must be (H, W) with positive sides, got {size!r}")
    return int(size[0]), int(size[1])


def _geometry(src: tuple[int, int], dst: tuple[int, int], fit: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """How `fit` maps an (h, w) image onto (H, W): the scaled size (h', w') and the offset (oy, ox)
    of the output window in the scaled image (positive: crop, negative: black border)."""
    (h, w), (th, tw) = src, dst
    if fit == "stretch":
        return (th, tw), (0, 0)
    if fit == "crop":
        s = max(th / h, tw / w)
        sh, sw = max(th, round(h * s)), max(tw, round(w * s))
        return (sh, sw), ((sh - th) // 2, (sw - tw) // 2)
    s = min(th / h, tw / w)
    sh, sw = min(th, max(1, round(h * s))), min(tw, max(1, round(w * s)))
    return (sh, sw), (-((th - sh) // 2), -((tw - sw) // 2))


def _fit_image(img: np.ndarray, size: tuple[int, int], fit: str, nearest: bool = False) -> np.ndarray:
    """Resize one image [h,w] or [h,w,C] to size (H, W) with `fit`; returns a new C-contiguous array."""
    src = img.shape[:2]
    if src == tuple(size):
        return np.array(img, order="C", copy=True)
    (sh, sw), (oy, ox) = _geometry(src, size, fit)
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if sh * sw < src[0] * src[1] else cv2.INTER_LINEAR
    scaled = cv2.resize(img, (sw, sh), interpolation=interp).reshape(sh, sw, *img.shape[2:])
    out = np.zeros((*size, *img.shape[2:]), img.dtype)
    sy0, sx0, dy0, dx0 = max(oy, 0), max(ox, 0), max(-oy, 0), max(-ox, 0)
    h, w = min(size[0] - dy0, sh - sy0), min(size[1] - dx0, sw - sx0)
    out[dy0 : dy0 + h, dx0 : dx0 + w] = scaled[sy0 : sy0 + h, sx0 : sx0 + w]
    return out


def _map_points(xy: np.ndarray, src: tuple[int, int], size: tuple[int, int], fit: str) -> np.ndarray:
    """Map pixel coordinates [..., 2] (x, y) of an (h, w) image through the resize of `_fit_image`."""
    (sh, sw), (oy, ox) = _geometry(src, size, fit)
    scale = np.array([sw / src[1], sh / src[0]], np.float32)
    return ((xy + 0.5) * scale - 0.5 - np.array([ox, oy], np.float32)).astype(np.float32)


def resize_frames(frames: np.ndarray, size: tuple[int, int], fit: str = "crop") -> np.ndarray:
    """Resize frames [T,h,w,3] (or [T,h,w]) to [T,H,W,...] with size = (H, W).

    fit "stretch": exactly H x W; "crop": cover H x W keeping the aspect ratio, centre-crop;
    "pad": fit inside keeping the aspect ratio, centred on black. INTER_AREA when shrinking,
    INTER_LINEAR when enlarging."""
    _check_fit(fit)
    size = _check_size(size)
    frames = np.asarray(frames)
    out = np.empty((len(frames), *size, *frames.shape[3:]), frames.dtype)
    for i, frame in enumerate(frames):
        out[i] = _fit_image(frame, size, fit)
    return out


# ----------------------------------------------------------------------------- array layout


def _check_layout(arr: np.ndarray, name: str) -> None:
    """Raise VideoError unless arr is [T,H,W,3] or [T,H,W] of an integer or float dtype."""
    shape, dtype = tuple(arr.shape), arr.dtype
    got = f"got shape {shape} dtype {dtype}"
    if dtype.kind not in "uif":
        raise VideoError(f"{name}: expected {_ARRAY_LAYOUT}; {got}")
    if arr.ndim == 3 and shape[-1] in (3, 4):
        raise VideoError(f"{name}: looks like one image [H,W,C], not a video; expected {_ARRAY_LAYOUT}; {got}")
    if arr.ndim == 4 and shape[-1] != 3:
        raise VideoError(f"{name}: frames have {shape[-1]} channels, expected 3 (RGB); expected {_ARRAY_LAYOUT}")
    if arr.ndim not in (3, 4):
        raise VideoError(f"{name}: expected {_ARRAY_LAYOUT}; {got}")
    if min(shape[1:3]) < 1:
        raise VideoError(f"{name}: frames of size {shape[1]}x{shape[2]} are empty")


def _value_scale(arr: np.ndarray, name: str) -> float:
    """Factor that brings arr's values to 0..255 (255 for floats in [0,1]); VideoError when out of range."""
    if arr.dtype == np.uint8 or arr.size == 0:
        return 1.0
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise VideoError(f"{name}: the array holds NaN or infinite values; expected {_ARRAY_LAYOUT}")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255:
        raise VideoError(f"{name}: values span [{lo:g}, {hi:g}], outside 0..255; expected {_ARRAY_LAYOUT}")
    return 255.0 if arr.dtype.kind == "f" and hi <= 1.0 else 1.0


def _as_rgb_uint8(frame: np.ndarray, scale: float) -> np.ndarray:
    """One frame [H,W] or [H,W,3] of any accepted dtype -> uint8 [H,W,3]."""
    if frame.dtype != np.uint8:
        frame = np.clip(np.rint(frame.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    return frame


# ----------------------------------------------------------------------------- load_video


def load_video(
    source: str | os.PathLike | np.ndarray,
    model: Any = None,
    *,
    frames: int | None = None,
    size: tuple[int, int] | None = None,
    fit: str = "crop",
    min_frames: int = 2,
) -> Clip:
    """Read a clip source into a Clip of uint8 frames [T,H,W,3] RGB.

    With a model (an object with ``input_spec.frames/.height/.width``) frames and size default to
    its input; without one, frames=None keeps every frame and size=None the original size.
    Sources: video file, folder of frames, .npy/.npz, numpy array, ``shapes:SEED[?k=v&...]``.
    Raises VideoError (one line, naming the source) for anything unreadable."""
    if model is not None:
        spec = model.input_spec
        frames = spec.frames if frames is None else frames
        size = (spec.height, spec.width) if size is None else size
    _check_fit(fit)
    size = _check_size(size)
    if frames is not None and int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    frames = None if frames is None else int(frames)
    min_frames = max(1, int(min_frames))
    name = "array" if isinstance(source, np.ndarray) else os.fspath(source)
    try:
        return _load(source, name, frames, size, fit, min_frames)
    except VideoError:
        raise
    except MemoryError:
        raise VideoError(f"{name}: too large to hold in memory; ask for fewer frames or a smaller size") from None
    except _DECODE_ERRORS as err:
        raise VideoError(f"{name}: {_describe(err)}") from err


def _describe(err: BaseException) -> str:
    """One line for an OS / decoder error."""
    if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (cannot read it)"
    if isinstance(err, av.error.InvalidDataError):
        return "not a readable video (corrupt or unknown format)"
    text = " ".join(str(err).split()) or type(err).__name__
    return f"cannot be read ({text})"


def _load(source, name: str, frames: int | None, size, fit: str, min_frames: int) -> Clip:
    if isinstance(source, np.ndarray):
        return _from_array(source, name, frames, size, fit, min_frames)
    if isinstance(source, str) and source.startswith("shapes:"):
        return _from_shapes(source, frames, size, fit)
    path = Path(source)
    if not path.exists():
        raise VideoError(f"{name}: no such file or folder")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{name}: permission denied (cannot read it)")
    if path.is_dir():
        return _from_folder(path, name, frames, size, fit, min_frames)
    if path.stat().st_size == 0:
        raise VideoError(f"{name}: the file is empty")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        arr, fps = _read_array_file(path, name)
        clip = _from_array(arr, name, frames, size, fit, min_frames)
        clip.source, clip.fps = path.name, fps
        return clip
    return _from_video_file(path, name, frames, size, fit, min_frames)


def _too_short(name: str, n: int, min_frames: int) -> VideoError:
    if n == 0:
        return VideoError(f"{name}: has no frames")
    noun = "frame" if n == 1 else "frames"
    return VideoError(f"{name}: has only {n} {noun}; a video needs at least {min_frames}")


def _plan(n: int, frames: int | None) -> np.ndarray:
    """int64 [T]: which source frames to keep (all of them when frames is None)."""
    return np.arange(n, dtype=np.int64) if frames is None else sample_indices(n, frames)


def _padding_meta(indices: np.ndarray) -> dict:
    return {"padded_frames": int((indices < 0).sum())}


# ----------------------------------------------------------------------------- random-access sources


def _gather_random(
    read: Callable[[np.ndarray], np.ndarray], indices: np.ndarray, size: tuple[int, int] | None, fit: str
) -> np.ndarray:
    """uint8 [T,H,W,3]: read(valid_indices) -> uint8 [t,h,w,3] frames, resized; zeros where index < 0."""
    valid = indices >= 0
    got = read(indices[valid])
    target = size or got.shape[1:3]
    out = np.zeros((len(indices), *target, 3), np.uint8)
    out[valid] = got if size is None else resize_frames(got, target, fit)
    return out


def _from_array(
    arr: np.ndarray, name: str, frames: int | None, size: tuple[int, int] | None, fit: str, min_frames: int
) -> Clip:
    """Clip from an array [T,H,W,3] / [T,H,W] (memory-mapped arrays: only sampled frames are read)."""
    _check_layout(arr, name)
    n = int(arr.shape[0])
    if n < min_frames:
        raise _too_short(name, n, min_frames)
    indices = _plan(n, frames)

    def read(idx: np.ndarray) -> np.ndarray:
        sub = np.asarray(arr[idx])  # fancy indexing reads only these frames of a memmap
        scale = _value_scale(sub, name)
        return np.stack([_as_rgb_uint8(f, scale) for f in sub])

    out = _gather_random(read, indices, size, fit)
    return Clip(out, DEFAULT_FPS, name, indices, n, (int(arr.shape[1]), int(arr.shape[2])), _padding_meta(indices))


def _read_array_file(path: Path, name: str) -> tuple[np.ndarray, float]:
    """The video array of a .npy (memory-mapped) or .npz file (key video, frames, or the only array), and fps."""
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        if not f.read(6).startswith(_ARRAY_MAGIC[suffix]):
            raise VideoError(f"{name}: not a {suffix} file (corrupt or another format); expected {_ARRAY_LAYOUT}")
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
                f"{name}: holds Python objects, which are never unpickled (unsafe); expected {_ARRAY_LAYOUT}"
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
        raise VideoError(f"{name}: no array named 'video' or 'frames' (found: {found}); expected {_ARRAY_LAYOUT}")
    return npz[key], fps


def _natural_key(name: str) -> list:
    """Sort key for natural order: frame2 before frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _from_folder(
    path: Path, name: str, frames: int | None, size: tuple[int, int] | None, fit: str, min_frames: int
) -> Clip:
    """Clip from a folder of image files in natural sort order; only sampled images are decoded."""
    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        kinds = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        raise VideoError(f"{name}: the folder has no image files ({kinds})")
    if len(files) < min_frames:
        raise _too_short(name, len(files), min_frames)
    original = _common_image_size(files, name)
    indices = _plan(len(files), frames)

    def read(idx: np.ndarray) -> np.ndarray:
        return np.stack([_read_image(files[i], name, original) for i in idx])

    out = _gather_random(read, indices, size, fit)
    meta = {**_padding_meta(indices), "files": [files[i].name for i in indices if i >= 0]}
    return Clip(out, DEFAULT_FPS, path.name, indices, len(files), original, meta)


def _common_image_size(files: list[Path], name: str) -> tuple[int, int]:
    """(H, W) shared by all images (read from headers only); VideoError if they differ or one is unreadable."""
    sizes = {}
    for f in files:
        try:
            with Image.open(f) as im:
                sizes[f] = (im.height, im.width)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise VideoError(f"{name}: {f.name} is not a readable image ({_describe(err)})") from None
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


def _from_shapes(spec: str, frames: int | None, size: tuple[int, int] | None, fit: str) -> Clip:
    """Moving Shapes clip with its ground truth sampled (and resized) like the frames."""
    from xai_core.data.moving_shapes import generate, parse_source

    try:
        seed, options = parse_source(spec)
        sample = generate(seed, **{**DEFAULT_SHAPES_OPTIONS, **options})
    except (ValueError, TypeError) as err:
        text = " ".join(str(err).split())
        raise VideoError(text if spec in text else f"{spec}: {text}") from None
    video = sample.video
    n, original = len(video), video.shape[1:3]
    indices = _plan(n, frames)
    out = _gather_random(lambda idx: video[idx], indices, size, fit)
    gt, notes = _sample_ground_truth(sample.ground_truth(), indices, original, size, fit)
    meta = {**sample.metadata(), **_padding_meta(indices)}
    if notes:
        meta["notes"] = notes
    return Clip(out, SHAPES_FPS, spec, indices, n, (int(original[0]), int(original[1])), meta, gt)


def _sample_ground_truth(
    gt: dict[str, np.ndarray], indices: np.ndarray, original: tuple[int, int], size, fit: str
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Sample ground-truth arrays [N,...] with indices [T] (masks [T,H,W] bool, positions [T,2],
    pause_frames [T]); resize masks and map positions like the frames; padding: False / NaN."""
    valid = indices >= 0
    resized = size is not None and tuple(size) != tuple(original)
    out: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for key, arr in gt.items():
        if key == "flow":
            if np.array_equal(indices, np.arange(len(arr) + 1)) and not resized:
                out[key] = arr
            else:
                notes.append("flow ground truth dropped: it holds only for consecutive frames at the original size")
            continue
        fill = np.nan if arr.dtype.kind == "f" else 0
        sampled = np.full((len(indices), *arr.shape[1:]), fill, arr.dtype)
        sampled[valid] = arr[indices[valid]]
        if resized and key.endswith("_masks"):
            sampled = np.stack([_fit_image(m.view(np.uint8), size, fit, nearest=True) for m in sampled]).view(bool)
        elif resized and key == "positions":
            sampled = _map_points(sampled, original, size, fit)
        out[key] = sampled
    return out, notes


# ----------------------------------------------------------------------------- video files (streaming)


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


def _open_source(path: Path, name: str) -> _PyAVSource | _CV2Source:
    """The first backend (PyAV, then OpenCV) that opens a file with a video stream."""
    try:
        src: _PyAVSource | _CV2Source = _PyAVSource(path)
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
    plan: np.ndarray | None,
    size: tuple[int, int] | None,
    fit: str,
) -> _Decoded:
    """Walk decoded items once, converting and resizing only those in plan (None: all of them).

    Memory: the output [T,H,W,3] plus one full-size frame at a time. Stops after the last index."""
    keep_all = plan is None
    position = {} if keep_all else {int(idx): i for i, idx in enumerate(plan) if idx >= 0}
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
            frame = _fit_image(rgb, target, fit)
            del rgb  # release the full-size frame before the next decode
            if keep_all:
                kept.append(frame)
            else:
                if out is None:
                    out = np.zeros((len(plan), *target, 3), np.uint8)
                out[position[index]] = frame
        if not keep_all and index >= last:
            break
    if keep_all:
        frames = np.stack(kept) if kept else np.zeros((0, *target, 3), np.uint8)
    else:
        frames = out if out is not None else np.zeros((len(plan), *target, 3), np.uint8)
    return _Decoded(frames, count, original, keep_all or count > last)


def _from_video_file(
    path: Path, name: str, frames: int | None, size: tuple[int, int] | None, fit: str, min_frames: int
) -> Clip:
    """Clip from a video file, decoded once and streaming (see module docstring)."""
    src = _open_source(path, name)
    notes: list[str] = []
    n = None
    if frames is not None:
        n = src.claimed if src.claimed > 0 else _count_frames(src, notes)
        if n < min_frames:
            raise _too_short(name, n, min_frames)
    plan = None if n is None else _plan(n, frames)
    with src.frames(notes) as items:
        got = _gather_stream(items, src.to_rgb, src.size_of, plan, size, fit)
    if not got.complete:  # fewer frames than claimed: sample from those that decoded
        if got.count < min_frames:
            raise _decode_failure(name, got.count, min_frames, notes)
        notes.append(f"the file claimed {n} frames but only {got.count} decoded; sampled from those")
        n, plan = got.count, _plan(got.count, frames)
        with src.frames([]) as items:
            got = _gather_stream(items, src.to_rgb, src.size_of, plan, size, fit)
    if plan is None:  # kept every frame
        if got.count < min_frames:
            raise _decode_failure(name, got.count, min_frames, notes)
        n, plan = got.count, np.arange(got.count, dtype=np.int64)
    meta = {**_padding_meta(plan), "codec": src.codec}
    if notes:
        meta["notes"] = notes
    return Clip(got.frames, src.fps, path.name, plan, n, got.original_size, meta)


def _count_frames(src: _PyAVSource | _CV2Source, notes: list[str]) -> int:
    """Frames in the file when the container does not say: count packets, else decode and count."""
    try:
        n = src.count()
    except _DECODE_ERRORS:
        n = 0
    if n > 0:
        return n
    with src.frames(notes) as items:
        return sum(1 for _ in items)


def _decode_failure(name: str, count: int, min_frames: int, notes: list[str]) -> VideoError:
    if count == 0:
        why = f" ({notes[0]})" if notes else ""
        return VideoError(f"{name}: no decodable video frames; the file may be truncated or corrupt{why}")
    return _too_short(name, count, min_frames)


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
        src = _open_source(path, name)
        frames = src.claimed if src.claimed > 0 else src.count()
        height, width = src.display_shape()
    except VideoError:
        raise
    except _DECODE_ERRORS as err:
        raise VideoError(f"{name}: {_describe(err)}") from err
    duration = src.duration if src.duration else (frames / src.fps if frames else None)
    return {
        "frames": int(frames),
        "fps": float(src.fps),
        "width": int(width),
        "height": int(height),
        "codec": src.codec,
        "duration": None if duration is None else float(duration),
    }


# ----------------------------------------------------------------------------- writing


def _iter_rgb(frames: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """uint8 [H,W,3] frames from an array [T,H,W(,3)] (one value scale for all) or an iterable of frames."""
    if isinstance(frames, np.ndarray):
        _check_layout(frames, "frames to write")
        scale = _value_scale(frames, "frames to write")
        for frame in frames:
            yield _as_rgb_uint8(frame, scale)
        return
    for frame in frames:
        frame = np.asarray(frame)
        _check_layout(frame[None], "frame to write")
        yield _as_rgb_uint8(frame, _value_scale(frame, "frame to write"))


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


def sample_clips() -> dict[str, Path]:
    """File name -> path of every bundled sample video (mp4 / avi) in SAMPLES_DIR, sorted by name."""
    if not SAMPLES_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(SAMPLES_DIR.iterdir()) if p.suffix.lower() in _SAMPLE_SUFFIXES}
