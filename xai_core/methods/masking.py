"""Masking methods: how much the explained score drops when frames (``frame_mask``, 002's time
contribution) or spatio-temporal windows (``occlusion``, Zeiler & Fergus) are replaced by a
baseline.  The scores of the perturbed clips come from ``machinery.engine.PerturbationEngine``:
the same numbers as running every perturbed clip through the model, much faster.

The attribution of a frame or pixel is the mean drop ``score(x) - score(perturbed x)`` over the
windows that cover it (Captum's convention for Occlusion; a single frame mask gives its own drop).
"""

from __future__ import annotations

import torch

from .. import jobs
from ..explanation import Attribution, Target
from .machinery.engine import PerturbationEngine
from .machinery.maps import frame_importance
from .machinery.perturbation import BASELINE, BLUR, MEASURE, Perturbation
from .machinery.registry import MethodCard, Param, register
from .machinery.windows import frame_windows, occlusion_windows


def spread(perturbations: list[Perturbation], drops: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Each window's drop spread over the elements it covers, divided by their cover counts -> [T,H,W]
    (float64); elements no window covers get 0."""
    total = torch.zeros(shape, dtype=torch.float64)
    count = torch.zeros(shape, dtype=torch.float64)
    for p, drop in zip(perturbations, drops.tolist(), strict=True):
        y0, y1, x0, x1 = p.box or (0, shape[1], 0, shape[2])
        total[p.start : p.stop, y0:y1, x0:x1] += drop
        count[p.start : p.stop, y0:y1, x0:x1] += 1
    return torch.where(count > 0, total / count.clamp(min=1), 0.0)


def _report(what: str):
    return lambda done, total: jobs.report(done, total, what)


@register(
    "frame_mask",
    card=MethodCard(
        computes=(
            "The drop of the score when each frame (or window of `window` frames) is replaced by the "
            "baseline: a curve over time, no map."
        ),
        needs="Only forward passes: any model.",
        cannot_show=(
            "Where in the frame the evidence is; evidence spread over several frames that any one of them"
            " can stand in for."
        ),
        failures=(
            (
                "A model that integrates over time recovers a masked frame from its neighbours, so single"
                " frames look unimportant: use windows."
            ),
            (
                "A black or blurred frame is an unnatural input, so part of the drop is surprise rather "
                "than missing evidence."
            ),
        ),
        cost="One forward pass per frame or window.",
    ),
    family="temporal",
    params=(
        Param("window", "int", 1, minimum=1, maximum=512, help="frames masked together (every start)"),
        BASELINE,
        MEASURE,
        BLUR,
    ),
    description="Frame masking: the drop in the score when each frame (or window of frames) is replaced",
    references=("002: time contribution by frame masking", "Ismail et al. 2020"),
)
def frame_mask(
    model,
    x: torch.Tensor,
    target: Target,
    window: int = 1,
    baseline: str = "zero",
    measure: str = "score",
    blur_sigma: float = 5.0,
) -> Attribution:
    """x [1,T,C,H,W] -> temporal [T]: the mean drop of the windows covering each frame.

    extras: ``window_drops`` [W] (score(x) - score with window w masked, w = its first frame),
    ``window_scores`` [W]; meta: ``base_score``, ``evaluations`` (perturbed clips)."""
    frames = x.shape[1]
    if window > frames:
        raise ValueError(f"a window of {window} frames does not fit in a clip of {frames}")
    engine = PerturbationEngine(model, x, target, baseline, measure, blur_sigma)
    windows = frame_windows(frames, window)
    scores = engine.scores(windows, progress=_report("frame_mask"))
    drops = engine.base_score - scores
    curve = spread(windows, drops, (frames, 1, 1))[:, 0, 0]
    return Attribution(
        spatial=None,
        temporal=curve.float().numpy(),
        extras={"window_drops": drops.float().numpy(), "window_scores": scores.float().numpy()},
        meta={
            "base_score": engine.base_score,
            "evaluations": len(windows),
            "strategy": engine.strategy,
            "incremental": engine.incremental is not None,
        },
    )


@register(
    "occlusion",
    card=MethodCard(
        computes=(
            "The drop of the score when a window of `window` (frames, height, width) sliding by `stride` "
            "is replaced by the baseline (zero, a blurred copy or the mean), each pixel given the mean "
            "drop of the windows that cover it."
        ),
        needs="Only forward passes: any model.",
        cannot_show=(
            "Anything smaller than the window, and evidence that only counts together with a region elsewhere."
        ),
        failures=(
            (
                "A replaced window is an input the model never saw; the drop can come from the artefact "
                "rather than the missing evidence."
            ),
            "Another window size or baseline gives another map.",
        ),
        cost=(
            "One forward pass per window position: hundreds to tens of thousands; the page shows a plan "
            "and runs it in the background."
        ),
    ),
    family="spatial",
    params=(
        Param("window", "ints", (1, 10, 10), minimum=1, size=3, help="occluding window: frames, rows, columns"),
        Param("stride", "ints", (1, 10, 10), minimum=1, size=3, help="steps between windows: frames, rows, columns"),
        BASELINE,
        MEASURE,
        BLUR,
    ),
    description="Occlusion: the drop in the score when a sliding spatio-temporal window is replaced",
    references=("Zeiler & Fergus 2014", "Captum Occlusion"),
)
def occlusion(
    model,
    x: torch.Tensor,
    target: Target,
    window: tuple = (1, 10, 10),
    stride: tuple = (1, 10, 10),
    baseline: str = "zero",
    measure: str = "score",
    blur_sigma: float = 5.0,
) -> Attribution:
    """x [1,T,C,H,W] -> spatial [T,H,W]: the mean drop of the windows covering each pixel (all
    colour channels occluded together); temporal [T]: the mean positive part per frame.
    meta: ``base_score``, ``evaluations``."""
    shape = (x.shape[1], x.shape[3], x.shape[4])
    windows = occlusion_windows(shape, tuple(window), tuple(stride))
    engine = PerturbationEngine(model, x, target, baseline, measure, blur_sigma)
    drops = engine.base_score - engine.scores(windows, progress=_report("occlusion"))
    spatial = spread(windows, drops, shape).float()
    return Attribution(
        params={"window": list(window), "stride": list(stride)},
        spatial=spatial.numpy(),
        temporal=frame_importance(spatial).numpy(),
        meta={
            "base_score": engine.base_score,
            "evaluations": len(windows),
            "strategy": engine.strategy,
            "incremental": engine.incremental is not None,
        },
    )
