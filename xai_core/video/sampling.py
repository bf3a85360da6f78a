"""Which frames a clip keeps and how they are resized.

Sampling is uniform over the whole video (the centre of each of ``T`` equal segments); videos
shorter than ``T`` are padded at the end with black (null) frames whose index is ``-1``.  Resizing
fits an image into (H, W) by cropping, padding or stretching; the same geometry maps pixel
coordinates, so ground truth can follow the frames.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

FITS = ("crop", "pad", "stretch")


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


def plan(n: int, frames: int | None) -> np.ndarray:
    """int64 [T]: which of ``n`` source frames to keep (all of them when frames is None)."""
    return np.arange(n, dtype=np.int64) if frames is None else sample_indices(n, frames)


def padding_meta(indices: np.ndarray) -> dict:
    """The clip's record of its padding: how many of indices [T] are null frames."""
    return {"padded_frames": int((indices < 0).sum())}


def check_fit(fit: str) -> None:
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}")


def check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    """(H, W) as two positive ints, or None."""
    if size is None:
        return None
    if len(size) != 2 or min(int(size[0]), int(size[1])) < 1:
        raise ValueError(f"size must be (H, W) with positive sides, got {size!r}")
    return int(size[0]), int(size[1])


def geometry(src: tuple[int, int], dst: tuple[int, int], fit: str) -> tuple[tuple[int, int], tuple[int, int]]:
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


def fit_image(img: np.ndarray, size: tuple[int, int], fit: str, nearest: bool = False) -> np.ndarray:
    """Resize one image [h,w] or [h,w,C] to size (H, W) with `fit`; returns a new C-contiguous array."""
    src = img.shape[:2]
    if src == tuple(size):
        return np.array(img, order="C", copy=True)
    (sh, sw), (oy, ox) = geometry(src, size, fit)
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


def map_points(xy: np.ndarray, src: tuple[int, int], size: tuple[int, int], fit: str) -> np.ndarray:
    """Map pixel coordinates [..., 2] (x, y) of an (h, w) image through the resize of `fit_image`."""
    (sh, sw), (oy, ox) = geometry(src, size, fit)
    scale = np.array([sw / src[1], sh / src[0]], np.float32)
    return ((xy + 0.5) * scale - 0.5 - np.array([ox, oy], np.float32)).astype(np.float32)


def resize_frames(frames: np.ndarray, size: tuple[int, int], fit: str = "crop") -> np.ndarray:
    """Resize frames [T,h,w,3] (or [T,h,w]) to [T,H,W,...] with size = (H, W).

    fit "stretch": exactly H x W; "crop": cover H x W keeping the aspect ratio, centre-crop;
    "pad": fit inside keeping the aspect ratio, centred on black. INTER_AREA when shrinking,
    INTER_LINEAR when enlarging."""
    check_fit(fit)
    size = check_size(size)
    frames = np.asarray(frames)
    out = np.empty((len(frames), *size, *frames.shape[3:]), frames.dtype)
    for i, frame in enumerate(frames):
        out[i] = fit_image(frame, size, fit)
    return out


def gather_random(
    read: Callable[[np.ndarray], np.ndarray], indices: np.ndarray, size: tuple[int, int] | None, fit: str
) -> np.ndarray:
    """uint8 [T,H,W,3]: read(valid_indices) -> uint8 [t,h,w,3] frames, resized; zeros where index < 0."""
    valid = indices >= 0
    got = read(indices[valid])
    target = size or got.shape[1:3]
    out = np.zeros((len(indices), *target, 3), np.uint8)
    out[valid] = got if size is None else resize_frames(got, target, fit)
    return out
