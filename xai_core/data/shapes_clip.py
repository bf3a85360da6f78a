"""A ``shapes:SEED[?k=v&...]`` source as a Clip: a Moving Shapes sample whose ground truth is
sampled and resized like its frames (masks by nearest neighbour, positions mapped through the
same resize), so that it stays true of the clip the model sees."""

from __future__ import annotations

import numpy as np

from ..video.clip import Clip, VideoError
from ..video.sampling import fit_image, gather_random, map_points, padding_meta, plan
from .moving_shapes import DEFAULT_SHAPES_OPTIONS, SHAPES_FPS, generate, parse_source


def shapes_clip(spec: str, frames: int | None, size: tuple[int, int] | None, fit: str) -> Clip:
    """Moving Shapes clip of ``frames`` frames (None: all) at ``size`` (None: as generated), with
    its ground truth sampled (and resized) like the frames; VideoError for a spec that does not parse."""
    seed, options = parse_spec(spec)
    try:
        sample = generate(seed, **{**DEFAULT_SHAPES_OPTIONS, **options})
    except (ValueError, TypeError) as err:
        raise _spec_error(spec, err) from None
    video = sample.video
    n, original = len(video), video.shape[1:3]
    indices = plan(n, frames)
    out = gather_random(lambda idx: video[idx], indices, size, fit)
    gt, notes = sample_ground_truth(sample.ground_truth(), indices, original, size, fit)
    meta = {**sample.metadata(), **padding_meta(indices)}
    if notes:
        meta["notes"] = notes
    return Clip(out, SHAPES_FPS, spec, indices, n, (int(original[0]), int(original[1])), meta, gt)


def parse_spec(spec: str) -> tuple[int, dict]:
    """``shapes:SEED[?k=v&...]`` -> (seed, options); VideoError (one line, naming the spec) when it
    does not parse."""
    try:
        return parse_source(spec)
    except (ValueError, TypeError) as err:
        raise _spec_error(spec, err) from None


def _spec_error(spec: str, err: Exception) -> VideoError:
    text = " ".join(str(err).split())
    return VideoError(text if spec in text else f"{spec}: {text}")


def sample_ground_truth(
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
            sampled = np.stack([fit_image(m.view(np.uint8), size, fit, nearest=True) for m in sampled]).view(bool)
        elif resized and key == "positions":
            sampled = map_points(sampled, original, size, fit)
        out[key] = sampled
    return out, notes
