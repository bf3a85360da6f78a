"""Motion explanations against Moving Shapes' ground truth (001, issue 6).

* ``flow_direction_error``: on a model of the movement angle, where the score is most sensitive
  to the flow (the largest |d score / d f| of each frame), does the flow there point the way the
  shape moves?  Mean angular error in degrees (a random direction scores 90 on average).
* ``mean_motion_share``: the share of the gradient x value attribution that lies in the flows
  rather than the warp errors, averaged over the frames where the shape moved.
* ``trajectories_on_target``: how many of the top trajectories are on the moving shape in the
  middle of their best window.
"""

from __future__ import annotations

import numpy as np

from ..angles import angular_difference, screen_angle

MIN_SPEED = 0.25  # pixels per frame: slower flow has no usable direction
TRACK_REACH = 3  # pixels: a track this close to the target's mask is on it


def flow_direction_error(
    flows: np.ndarray, magnitude: np.ndarray, angle: float, moving: np.ndarray | None = None, top: int = 20
) -> dict:
    """flows [T-1,2,H,W], flow-gradient magnitude [T-1,H,W], the true angle (degrees), ``moving``
    bool [T-1] (the shape moved into frame i+1; None: every frame) -> ``error``: the mean angular
    error of the flow at each frame's ``top`` pixels of largest magnitude (pixels whose flow is
    slower than MIN_SPEED left out), ``frames``: how many frames had such pixels,
    ``slow_share``: the share of top pixels left out."""
    errors, used, slow = [], 0, 0
    frames = range(len(flows)) if moving is None else np.flatnonzero(moving)
    for i in frames:
        flat = np.argsort(magnitude[i].ravel(), kind="stable")[::-1][:top]
        vectors = flows[i].reshape(2, -1)[:, flat].T  # [top,2]
        fast = np.hypot(vectors[:, 0], vectors[:, 1]) >= MIN_SPEED
        slow += int((~fast).sum())
        if fast.any():
            errors.append(angular_difference(screen_angle(vectors[fast]), angle))
            used += 1
    total = sum(len(e) for e in errors) + slow
    return {
        "error": float(np.concatenate(errors).mean()) if errors else float("nan"),
        "frames": used,
        "slow_share": slow / total if total else float("nan"),
    }


def mean_motion_share(share: np.ndarray, moving: np.ndarray | None = None) -> float:
    """share [T-1] (``motion_share``) -> its mean over the frames the shape moved into."""
    share = np.asarray(share, dtype=float)
    chosen = share if moving is None else share[np.asarray(moving, dtype=bool)]
    return float(chosen.mean()) if chosen.size else float("nan")


def trajectories_on_target(
    tracks: np.ndarray, windows: np.ndarray, masks: np.ndarray, reach: int = TRACK_REACH
) -> float:
    """tracks [K,T,2] (x, y), their best windows [K,2] (first frame, one past the last) and the
    target's masks bool [T,H,W] -> the share of tracks that are within ``reach`` pixels of the
    target in the middle frame of their window."""
    if len(tracks) == 0:
        return float("nan")
    height, width = masks.shape[1:]
    hits = []
    for track, (first, stop) in zip(tracks, windows, strict=True):
        t = int(first + stop - 1) // 2
        x, y = (int(round(float(v))) for v in track[t])
        x, y = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
        box = masks[t, max(y - reach, 0) : y + reach + 1, max(x - reach, 0) : x + reach + 1]
        hits.append(bool(box.any()))
    return float(np.mean(hits))
