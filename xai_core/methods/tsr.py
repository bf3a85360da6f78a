"""Temporal Saliency Rescaling (Ismail et al. 2020; algorithm 1 of 002) and its one-step variant.

With a base attribution R (any registered spatial method; saliency by default):

1. Time relevance: mask each frame t (``machinery.perturbation``'s baselines) and measure
   ``dt = sum |R(x) - R(x with frame t masked)|`` over every frame and pixel.
2. ``tsr``: for the frames with ``dt > alpha`` (a value, or the ``alpha_quantile`` of the dt), mask
   each feature i of frame t (a block of ``block`` x ``block`` pixels, the last ones cut at the
   border, or a SLIC superpixel of that frame) and measure ``di`` the same way.  The map is
   ``di * dt`` on the feature's pixels; frames at or below alpha get 0.
   ``tsr_onestep`` (002's one-step rescaling): the base map of frame t times ``dt``.

The sums come from ``machinery.relevance_change``: exact and fast for saliency and input x
gradient on the zoo's decoupled models (re-used per-frame Jacobians), a loop of base attributions
otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import jobs
from ..explanation import Attribution, Target
from .machinery.perturbation import BASELINE, BLUR, Perturbation
from .machinery.registry import MethodCard, Param, register
from .machinery.relevance_change import change_engine
from .machinery.windows import grid_features

FEATURES = ("grid", "slic")
BASE = Param("base", "str", "saliency", help="the base attribution R: any spatial method the model supports")
ENGINE = Param(
    "engine",
    "choice",
    "auto",
    choices=("auto", "reference"),
    help="auto: the fast exact engines where they apply (saliency, input_x_gradient: per-frame Jacobians on "
    "decoupled models, several masked clips a backward pass on 3D CNNs and your own); reference: one base "
    "attribution per mask",
)


def slic_features(frame: np.ndarray, segments: int) -> np.ndarray:
    """uint8-like frame [H,W,3] -> SLIC superpixel labels [H,W] (0..n-1)."""
    from skimage.segmentation import slic

    labels = slic(frame, n_segments=segments, compactness=10.0, start_label=0, channel_axis=-1)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def superpixel_perturbations(t: int, labels: np.ndarray) -> list[Perturbation]:
    """One perturbation per superpixel of frame t: its bounding box and its pixels."""
    out = []
    for label in range(int(labels.max()) + 1):
        ys, xs = np.nonzero(labels == label)
        box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
        pixels = torch.from_numpy(labels[box[0] : box[1], box[2] : box[3]] == label)
        out.append(Perturbation(t, t + 1, box, pixels))
    return out


def _progress(offset: int, total: int):
    return lambda done, _: jobs.report(offset + done, total, "tsr")


def time_relevance(engine, frames: int, total: int | None = None) -> torch.Tensor:
    """Step 1: dt for every frame, float64 [T]."""
    return engine.deltas([Perturbation(t, t + 1) for t in range(frames)], progress=_progress(0, total or frames))


@register(
    "tsr_onestep",
    card=MethodCard(
        computes=(
            "Each frame's base map (saliency by default) multiplied by that frame's time relevance: the "
            "total change of the base attribution, Σ|R(x) − R(x with frame t masked)|, when the frame is "
            "masked (temporal saliency rescaling in one step)."
        ),
        needs="A spatial base method the model supports, run once more for each masked frame.",
        cannot_show=(
            "Which parts of a frame matter beyond what the base method shows: it only rescales the base map per frame."
        ),
        failures=(
            "Inherits every flaw of the base method.",
            (
                "A frame whose masking changes the attribution little gets little time relevance, even "
                "when the model relies on it together with its neighbours."
            ),
        ),
        cost=(
            "T + 1 base attributions (a forward and a backward pass each for a gradient base); the "
            "gradient engine makes saliency and input × gradient cheaper."
        ),
    ),
    family="spatial",
    params=(BASE, BASELINE, BLUR, ENGINE),
    description="One-step temporal saliency rescaling: the base map of each frame times its time relevance",
    references=("002: one-step rescaling", "Ismail et al. 2020"),
)
def tsr_onestep(
    model,
    x: torch.Tensor,
    target: Target,
    base: str = "saliency",
    baseline: str = "zero",
    blur_sigma: float = 5.0,
    engine: str = "auto",
) -> Attribution:
    """x [1,T,C,H,W] -> spatial [T,H,W] = R(x)_t * dt; temporal [T] = dt (the time relevance).
    extras: ``base_map`` [T,H,W] (R(x)); meta: ``evaluations`` (base attributions' worth: T + 1)."""
    change = change_engine(model, x, target, base, baseline, blur_sigma, engine)
    dt = time_relevance(change, x.shape[1])
    spatial = change.relevance * dt[:, None, None]
    return _attribution(spatial, dt, {"base_map": change.relevance}, x.shape[1] + 1, change)


@register(
    "tsr",
    card=MethodCard(
        computes=(
            "Two-step temporal saliency rescaling: each frame's time relevance (the total change of the "
            "base attribution when the frame is masked); then, in the frames above the `alpha_quantile`, "
            "each feature group's relevance the same way (grid blocks or SLIC superpixels); the map is "
            "their product, painted on the group's pixels."
        ),
        needs="A spatial base method the model supports, run once for each mask (or the gradient engine).",
        cannot_show="Frames below the threshold (their maps are zero) and structure finer than a feature group.",
        failures=(
            "The threshold decides which frames are explained at all.",
            "Masking baselines create unnatural inputs, as for occlusion.",
            "Inherits the base method's flaws.",
        ),
        cost=(
            "1 + T + (feature groups × frames above the threshold) base attributions, each a forward and "
            "a backward pass for a gradient base: minutes on a CPU; plan it first (the page shows the "
            "estimate)."
        ),
    ),
    family="spatial",
    params=(
        BASE,
        Param("features", "choice", "grid", choices=FEATURES, help="grid: square blocks; slic: superpixels per frame"),
        Param("block", "int", 10, minimum=1, maximum=512, help="grid features: block side in pixels"),
        Param("segments", "int", 100, minimum=2, maximum=2000, help="slic features: about this many per frame"),
        Param(
            "alpha_quantile",
            "float",
            0.55,
            minimum=0.0,
            maximum=1.0,
            help="frames whose time relevance exceeds this quantile of all frames' get feature relevance",
        ),
        Param("alpha", "float", None, minimum=0.0, help="a fixed threshold instead of the quantile"),
        BASELINE,
        BLUR,
        ENGINE,
    ),
    description="Two-step temporal saliency rescaling (TSR): time relevance x feature relevance, by masking",
    references=("Ismail et al. 2020, algorithm 1 of 002",),
)
def tsr(
    model,
    x: torch.Tensor,
    target: Target,
    base: str = "saliency",
    features: str = "grid",
    block: int = 10,
    segments: int = 100,
    alpha_quantile: float = 0.55,
    alpha: float | None = None,
    baseline: str = "zero",
    blur_sigma: float = 5.0,
    engine: str = "auto",
) -> Attribution:
    """x [1,T,C,H,W] -> spatial [T,H,W] = di * dt on each feature's pixels (0 in frames with dt <= alpha);
    temporal [T] = dt.  extras: ``time_relevance`` [T], ``selected`` [T] (dt > alpha), ``feature_relevance``
    [T,F] (di; grid) or ``segments`` [T,H,W] labels and ``feature_relevance`` [T,F] (NaN past a frame's
    last superpixel), ``base_map`` [T,H,W]; meta: ``alpha``, ``evaluations``."""
    frames, (height, width) = x.shape[1], x.shape[-2:]
    change = change_engine(model, x, target, base, baseline, blur_sigma, engine)
    grid = grid_features(height, width, block) if features == "grid" else None
    expected = frames + math.ceil((1 - alpha_quantile) * frames) * (len(grid) if grid else segments)
    dt = time_relevance(change, frames, expected)
    threshold = float(alpha) if alpha is not None else float(torch.quantile(dt, alpha_quantile))
    selected = (dt > threshold).nonzero().flatten().tolist()
    labels = None
    if grid is not None:
        per_frame = {t: [Perturbation(t, t + 1, box) for box in grid] for t in selected}
    else:
        pictures = model.frames_of(x)  # the frames as the user sees them, for SLIC
        labels = np.stack([slic_features(pictures[t], segments) for t in range(frames)])
        per_frame = {t: superpixel_perturbations(t, labels[t]) for t in selected}
    masks = [p for t in selected for p in per_frame[t]]
    total = frames + len(masks)
    di = change.deltas(masks, progress=_progress(frames, total)) if masks else torch.zeros(0, dtype=torch.float64)
    spatial = torch.zeros(frames, height, width, dtype=torch.float64)
    width_f = max((len(v) for v in per_frame.values()), default=len(grid or []))
    relevance = torch.full((frames, width_f), float("nan") if grid is None else 0.0, dtype=torch.float64)
    k = 0
    for t in selected:
        for j, p in enumerate(per_frame[t]):
            y0, y1, x0, x1 = p.box
            value = di[k] * dt[t]
            if p.pixels is None:
                spatial[t, y0:y1, x0:x1] = value
            else:
                spatial[t, y0:y1, x0:x1][p.pixels] = value
            relevance[t, j] = di[k]
            k += 1
    extras = {
        "time_relevance": dt,
        "selected": torch.tensor([t in selected for t in range(frames)]),
        "feature_relevance": relevance,
        "base_map": change.relevance,
    }
    if labels is not None:
        extras["segments"] = torch.from_numpy(labels)
    result = _attribution(spatial, dt, extras, total + 1, change)
    result.meta["alpha"] = threshold
    return result


def _attribution(spatial: torch.Tensor, dt: torch.Tensor, extras: dict, evaluations: int, change) -> Attribution:
    """spatial [T,H,W] and the time relevance dt [T] (float64) -> the Attribution (float32 maps)."""
    return Attribution(
        spatial=spatial.float().numpy(),
        temporal=dt.float().numpy(),
        extras={k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in extras.items()},
        meta={"evaluations": evaluations, "engine": type(change).__name__},
    )
