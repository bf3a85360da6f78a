"""Scores of one explanation against Moving Shapes' ground truth, on plain arrays.

Maps are read the way their method declares (``MethodSpec.reading``): the positive part, or the
magnitude for the plain gradients.  Spatial scores are per frame (``[T]`` arrays) so that a caller
can leave frames out (frame 0 holds no motion evidence for a frame-difference model) and average.

* Pointing game (``pointing_game``): where each frame's peak lies: within the game's tolerance of
  the target shape (``pointing``), on the target shape itself, within 2 / 4 pixels of it, on a
  static distractor; the share of the frame within the tolerance (what a peak placed at random
  would score); and the share of the map's mass on the target.  Zhang et al. (2016) count a hit
  within 15 pixels of the object on PASCAL VOC and COCO images, a few hundred pixels a side; the
  tolerance here is our scaling of it, 15 pixels per 224 of the frame's shorter side (the input
  size of the networks they explained): 7.5 pixels on a 112-pixel frame (``pointing_tolerance``).
* Ranks (``rank_scores``, report 001): every pixel's percentile rank in its frame's map (ties
  share their mean rank; 1 = the largest value); the target pixels' mean rank over the mean rank
  of all shape pixels (target and distractors: "target over union") and over the mean rank of
  all pixels ("target over all", 1 for a map that ignores the target).
* Sanity (``spearman``): Spearman rank correlation between two maps of the same clip (Adebayo
  et al. 2018): near 1 means the map does not depend on what was randomised; over all pixels, and
  over the pixels where either map is non-zero; with a third map held fixed (``partial_spearman``),
  e.g. nearness to the shapes (``shape_nearness``).
* Temporal (``temporal_scores``): the evidence frames' mean percentile rank on a frame curve and
  the share of them among the curve's top-k frames (k = their number).
"""

from __future__ import annotations

import cv2
import numpy as np


def read_map(values: np.ndarray, reading: str) -> np.ndarray:
    """A signed map or curve as scored: its positive part or its magnitude."""
    if reading == "magnitude":
        return np.abs(values)
    if reading == "positive":
        return np.maximum(values, 0)
    raise ValueError(f"unknown reading {reading!r}")


POINTING_TOLERANCE_AT_224 = 15.0  # pixels per 224 of the frame's side: Zhang et al.'s 15 pixels, scaled


def pointing_tolerance(height: int, width: int) -> float:
    """The pointing game's tolerance in pixels for a frame of this size: 15 pixels per 224 of its
    shorter side (a 112-pixel clip gets 7.5; see the module's docstring)."""
    return POINTING_TOLERANCE_AT_224 * min(height, width) / 224


def pointing_game(view: np.ndarray, target: np.ndarray, distractors: np.ndarray | None = None) -> dict:
    """view float [T,H,W] (already read), target / distractors bool [T,H,W] -> per-frame arrays [T]:
    ``pointing`` (the peak within ``pointing_tolerance`` of the target: the game's hit), ``inside``
    (on the target itself), ``within_2px``, ``within_4px``, ``on_distractor`` (bool, with
    distractors), ``pointing_chance`` (the share of the frame within the tolerance of the target)
    and ``mass_on_shape`` (float).  A frame whose map is constant has no peak: it scores no hit
    anywhere; so does a frame without target pixels."""
    frames = len(view)
    flat = view.reshape(frames, -1)
    ys, xs = np.unravel_index(flat.argmax(1), view.shape[1:])
    peaked = flat.max(1) > flat.min(1)
    # Euclidean distance of every pixel to the nearest target pixel (0 on the target; inf without one).
    distance = np.stack(
        [
            cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            if m.any()
            else np.full(m.shape, np.inf, np.float32)
            for m in target
        ]
    )
    at_peak = np.where(peaked, distance[np.arange(frames), ys, xs], np.inf)
    tolerance = pointing_tolerance(*view.shape[1:])
    scores = {
        "pointing": at_peak <= tolerance,
        "inside": at_peak == 0,
        "within_2px": at_peak <= 2,
        "within_4px": at_peak <= 4,
    }
    if distractors is not None:
        scores["on_distractor"] = peaked & distractors[np.arange(frames), ys, xs]
    scores["pointing_chance"] = (distance <= tolerance).mean((1, 2))
    total = view.sum((1, 2))
    scores["mass_on_shape"] = np.where(total > 0, (view * target).sum((1, 2)) / np.maximum(total, 1e-30), 0.0)
    return scores


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """values [N] -> ranks in (0, 1]: 1 for the largest, ties sharing their mean rank."""
    from scipy.stats import rankdata  # scipy.stats: half a second to import, for the evaluation only

    return rankdata(values, method="average") / values.size


def rank_scores(view: np.ndarray, target: np.ndarray, shapes: np.ndarray) -> dict:
    """view float [T,H,W], target bool [T,H,W], shapes bool [T,H,W] (target or distractor) ->
    per-frame float arrays [T] (NaN where the target is absent): ``target_rank``, ``shapes_rank``,
    ``target_over_union``, ``target_over_all``."""
    frames = len(view)
    out = {k: np.full(frames, np.nan) for k in ("target_rank", "shapes_rank", "target_over_union", "target_over_all")}
    for t in range(frames):
        if not target[t].any():
            continue
        ranks = percentile_ranks(view[t].ravel()).reshape(view.shape[1:])
        everything = ranks.mean()  # (N + 1) / 2N
        out["target_rank"][t] = ranks[target[t]].mean()
        out["shapes_rank"][t] = ranks[shapes[t] | target[t]].mean()
        out["target_over_union"][t] = out["target_rank"][t] / out["shapes_rank"][t]
        out["target_over_all"][t] = out["target_rank"][t] / everything
    return out


def spearman(a: np.ndarray, b: np.ndarray, support: bool = False) -> float:
    """Spearman rank correlation of two maps of the same shape (NaN when one is constant).

    ``support``: only over the pixels where either map is non-zero.  Maps that are exactly zero
    wherever the architecture passes no gradient (an object-gated readout) share their zeros
    whatever the weights, and those ties alone lift the correlation over all pixels towards 1."""
    if a.shape != b.shape:
        raise ValueError(f"maps of different shapes: {a.shape} and {b.shape}")
    a, b = a.ravel(), b.ravel()
    if support:
        keep = (a != 0) | (b != 0)
        a, b = a[keep], b[keep]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def partial_spearman(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Spearman correlation of maps ``a`` and ``b`` with ``c`` held fixed (the partial correlation
    of their ranks): what the two maps share beyond what each shares with ``c``,
    (r_ab - r_ac r_bc) / sqrt((1 - r_ac^2)(1 - r_bc^2)); NaN when a map is constant or ``c``
    ranks one of them exactly."""
    r_ab, r_ac, r_bc = spearman(a, b), spearman(a, c), spearman(b, c)
    if not np.isfinite([r_ab, r_ac, r_bc]).all() or max(abs(r_ac), abs(r_bc)) > 1.0 - 1e-9:
        return float("nan")
    scale = np.sqrt((1.0 - r_ac**2) * (1.0 - r_bc**2))
    return float((r_ab - r_ac * r_bc) / scale)


def shape_nearness(shapes: np.ndarray) -> np.ndarray:
    """How near each pixel is to a shape, bool [T,H,W] -> float [T,H,W]: minus its Euclidean
    distance in pixels to the nearest shape pixel of its frame (0 on a shape; 0 everywhere in a
    frame without one)."""
    from scipy.ndimage import distance_transform_edt

    out = np.zeros(shapes.shape, dtype=np.float64)
    for t, frame in enumerate(np.asarray(shapes, dtype=bool)):
        if frame.any():
            out[t] = -distance_transform_edt(~frame)
    return out


def spearman_per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of two [T,H,W] maps frame by frame -> [T] (NaN for a frame where either
    map is constant).  Over the whole clip, two maps can correlate only because their size changes
    alike from frame to frame (``size_trend``) while each frame's pattern differs; frame by frame,
    only where in the frame the maps are high counts."""
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"two [T,H,W] maps of the same shape expected, got {a.shape} and {b.shape}")
    return np.array([spearman(a[t], b[t]) for t in range(a.shape[0])])


def size_trend(values: np.ndarray) -> float:
    """How a map's size follows time: the Spearman correlation of its mean magnitude per frame
    (a [T,H,W] map; the magnitude itself for a [T] curve) with the frame index; +1 when it grows
    steadily toward the last frame, -1 when it shrinks (NaN when the size is constant)."""
    size = np.abs(np.asarray(values, dtype=np.float64)).reshape(values.shape[0], -1).mean(1)
    return spearman(size, np.arange(size.size, dtype=np.float64))


def temporal_scores(curve: np.ndarray, evidence: np.ndarray) -> dict:
    """curve float [T] (already read), evidence bool [T] -> ``evidence_rank`` (the evidence frames'
    mean percentile rank, 0.5 for a random curve) and ``top_k_share`` (share of the k highest frames
    that are evidence frames, k = their number; the evidence share of the clip for a random curve)."""
    k = int(evidence.sum())
    if k == 0:
        raise ValueError("no evidence frames to score against")
    ranks = percentile_ranks(np.asarray(curve, dtype=np.float64))
    top = np.argsort(-np.asarray(curve), kind="stable")[:k]
    return {"evidence_rank": float(ranks[evidence].mean()), "top_k_share": float(evidence[top].mean())}
