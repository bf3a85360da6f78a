"""Checks of a frame ranking: deletion and insertion curves, and key frames (002).

* Deletion: frames are replaced by the baseline one by one, most important first; the score after
  each step gives a curve over the share of frames removed (0..1).  A ranking that finds the
  evidence makes it fall early: a small area under the curve (AUC).  Insertion starts from the
  all-baseline clip and puts frames back in the same order: a large AUC is good.  Both are set
  against random orders (the mean of their AUCs and curves).
* Masked accuracy (002): the accuracy over a set of clips when frame t (or a window from t) is
  replaced by the baseline, for every t.
* Key frames: the frames whose difference to the previous frame (mean absolute pixel change)
  exceeds ``threshold`` of the range of those differences (30% in 002), and their overlap with the
  top-k frames of a ranking (k = the number of key frames).
"""

from __future__ import annotations

import numpy as np
import torch

from ..explanation import Target
from ..methods.machinery.engine import PerturbationEngine
from ..methods.machinery.windows import frame_windows
from ..models.modes import eval_mode


def auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at shares 0, 1/T, ..., 1 (trapezoids)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float(np.trapezoid(curve, np.linspace(0.0, 1.0, len(curve))))


def order_masks(order: np.ndarray, insertion: bool) -> torch.Tensor:
    """A frame order [T] -> which frames are masked at each step [T+1,T]: deletion masks the first k
    of the order; insertion masks all but them."""
    frames = len(order)
    steps = torch.zeros(frames + 1, frames, dtype=torch.bool)
    for k in range(1, frames + 1):
        steps[k, torch.as_tensor(order[:k])] = True
    return ~steps if insertion else steps


def deletion_insertion(
    model,
    x: torch.Tensor,
    target: Target,
    curve: np.ndarray,
    baseline: str = "zero",
    measure: str = "score",
    random_orders: int = 10,
    seed: int = 0,
    padded: np.ndarray | None = None,
) -> dict:
    """x [1,T,C,H,W], a frame ranking ``curve`` [T] (higher: more important; padding frames, when
    ``padded`` [T] says so, go last) -> {"deletion", "insertion": curves [T+1]; their "..._auc";
    "random_deletion", "random_insertion": mean curves of random orders; their "..._auc"; "order"}."""
    frames = x.shape[1]
    curve = np.asarray(curve, dtype=np.float64)
    if curve.shape != (frames,):
        raise ValueError(f"the ranking has {curve.shape} values for a clip of {frames} frames")
    key = -curve.copy()
    if padded is not None:
        key[np.asarray(padded, bool)] = np.inf
    order = np.argsort(key, kind="stable")
    rng = np.random.default_rng(seed)
    randoms = [rng.permutation(frames) for _ in range(random_orders)]
    masks = [order_masks(o, insertion) for o in (order, *randoms) for insertion in (False, True)]
    with eval_mode(model):
        engine = PerturbationEngine(model, x, target, baseline, measure)
        scores = engine.subset_scores(torch.cat(masks)).numpy().reshape(len(masks), frames + 1)
    result = {"order": order.tolist(), "deletion": scores[0], "insertion": scores[1]}
    if random_orders:
        result["random_deletion"] = scores[2::2].mean(0)
        result["random_insertion"] = scores[3::2].mean(0)
    for name in ("deletion", "insertion", "random_deletion", "random_insertion"):
        if name in result:
            result[f"{name}_auc"] = auc(result[name])
    return result


def masked_accuracy(
    model, clips: list[np.ndarray], labels: list[int], window: int = 1, baseline: str = "zero", progress=None
) -> dict:
    """uint8 clips [T,H,W,3] of the model's size and their true class indices -> {"accuracy": on the
    clips as they are, "masked": [T-window+1] accuracy with the window starting at t masked}."""
    if not clips:
        raise ValueError("masked accuracy needs at least one clip")
    correct_base, correct = 0.0, None
    for i, (clip, label) in enumerate(zip(clips, labels, strict=True)):
        x = model.preprocess(clip)

        def right(output: torch.Tensor, label: int = int(label)) -> torch.Tensor:
            return (output.argmax(1) == label).double()

        with eval_mode(model):
            engine = PerturbationEngine(model, x, Target("class", int(label)), baseline, measure=right)
            scores = engine.scores(frame_windows(x.shape[1], window))
        correct = scores if correct is None else correct + scores
        correct_base += engine.base_score
        if progress is not None:
            progress(i + 1, len(clips))
    return {"accuracy": correct_base / len(clips), "masked": (correct / len(clips)).numpy()}


def frame_differences(frames: np.ndarray) -> np.ndarray:
    """uint8 frames [T,H,W,3] -> mean absolute change from the previous frame per frame [T] (0 for the first)."""
    values = frames.astype(np.float32)
    out = np.zeros(len(frames), dtype=np.float64)
    out[1:] = np.abs(values[1:] - values[:-1]).mean(axis=(1, 2, 3))
    return out


def key_frames(frames: np.ndarray, threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames [T,H,W,3] -> (differences [T], key bool [T]): frames 1.. whose difference exceeds
    min + threshold * (max - min) of the differences of frames 1.. (none when they are all equal)."""
    diffs = frame_differences(frames)
    rest = diffs[1:]
    key = np.zeros(len(frames), dtype=bool)
    if len(rest) and np.ptp(rest) > 0:
        key[1:] = rest > rest.min() + threshold * np.ptp(rest)
    return diffs, key


def key_frame_overlap(curve: np.ndarray, key: np.ndarray) -> float:
    """The share of the key frames among the k highest frames of ``curve`` (k = number of key frames)."""
    k = int(np.sum(key))
    if k == 0:
        return float("nan")
    top = np.argsort(-np.asarray(curve, dtype=np.float64), kind="stable")[:k]
    return float(np.asarray(key)[top].mean())
