"""Temporal saliency against the slow way: occlusion against Captum's Occlusion, frame masking
against Captum's FeatureAblation, TSR against its reference loop (one base attribution per mask),
the same values checked and the times set side by side."""

from __future__ import annotations

import numpy as np

from ..methods.machinery.registry import get_method
from .peers import captum_frame_ablation, captum_occlusion
from .subjects import DEFAULT_MODEL, Subject
from .timing import side_by_side

# Issue 5: frame masking, occlusion and TSR against the slow way, side by side.
TEMPORAL_MODELS = (DEFAULT_MODEL, "r3d-sides")
TEMPORAL_CASES = {  # method: (parameters, peer, speed-up target on the default model)
    "occlusion": ({"window": (1, 10, 10), "stride": (1, 10, 10)}, "Captum Occlusion (perturbations_per_eval=1)", 30),
    "frame_mask": ({}, "Captum FeatureAblation (a feature per frame)", 10),
    "tsr": ({"base": "saliency", "block": 10, "alpha_quantile": 0.55}, "reference loop (one saliency per mask)", 5),
}
TSR_SECONDS = 60  # issue 5: TSR under a minute on this CPU for the default model
TEMPORAL_REPEATS = 3  # the slow peers take minutes a run


def bench_temporal_case(s: Subject, method: str, repeats: int) -> dict:
    """One temporal method on one model against its slow peer, timed side by side; the difference
    is the largest |ours - peer| over the range of the peer's values."""
    from ..methods.machinery.perturbation import fill_clip

    user_params, peer_name, target_ratio = TEMPORAL_CASES[method]
    spec = get_method(method)
    params = spec.resolve_params(user_params)
    model, x, target = s.model, s.x, s.target
    fill = fill_clip(model, x, params.get("baseline", "zero"))

    def ours():
        return spec.fn(model, x, target, **params)

    if method == "occlusion":
        peer = lambda: captum_occlusion(model, x, target, fill, params["window"], params["stride"])  # noqa: E731
    elif method == "frame_mask":
        peer = lambda: captum_frame_ablation(model, x, target, fill)  # noqa: E731
    else:
        peer = lambda: spec.fn(model, x, target, **{**params, "engine": "reference"})  # noqa: E731
    mine, theirs = ours(), peer()  # warm-up, and the values compared
    ours_values = mine.temporal if method == "frame_mask" else mine.spatial
    peer_values = theirs.spatial if method == "tsr" else np.asarray(theirs, dtype=np.float64)
    scale = float(np.ptp(peer_values)) or 1.0
    difference = float(np.abs(np.asarray(ours_values, dtype=np.float64) - peer_values).max()) / scale
    times = side_by_side({"ours": ours, "peer": peer}, repeats)
    return {
        "model": s.name,
        "method": method,
        "params": params,
        "evaluations": int(mine.meta.get("evaluations", 0)),
        "engine": mine.meta.get("strategy") or mine.meta.get("engine"),
        "peer": peer_name,
        "ours": times["ours"],
        "peer_seconds": times["peer"],
        "ratio": times["peer"]["median"] / times["ours"]["median"],
        "max_difference_over_range": difference,
        "target_ratio": target_ratio if s.name == DEFAULT_MODEL else None,
    }


def bench_temporal(subjects: dict[str, Subject], repeats: int) -> list[dict]:
    return [
        bench_temporal_case(subjects[name], method, repeats)
        for name in TEMPORAL_MODELS
        if name in subjects
        for method in TEMPORAL_CASES
    ]
