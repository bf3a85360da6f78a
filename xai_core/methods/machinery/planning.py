"""Before a long method runs: how many model evaluations it needs and about how long it takes.

``plan(model, x, target, name, params)`` for the masking methods times the engine on an evenly
spread sample of the perturbations (so the figure is this machine's and this model's); for TSR it
counts the base attributions and times one, which bounds the time from above (the exact fast
engine for saliency and input x gradient takes a fraction of it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ...explanation import Target
from ...models.modes import eval_mode
from .engine import PerturbationEngine
from .perturbation import Perturbation
from .registry import get_method
from .windows import frame_windows, grid_features, occlusion_windows, window_starts

LONG_METHODS = ("frame_mask", "occlusion", "tsr_onestep", "tsr")


@dataclass(frozen=True)
class Plan:
    evaluations: int  # perturbed clips scored, or base attributions computed
    seconds: float
    note: str


def plan(model, x: torch.Tensor, target: Target, name: str, params: dict) -> Plan:
    """The cost of ``name`` with (resolved) ``params`` on the clip x [1,T,C,H,W] (timed in eval
    mode, as ``explain`` runs it; the model's modes are handed back as found)."""
    with eval_mode(model):
        return _plan(model, x, target, name, params)


def _plan(model, x: torch.Tensor, target: Target, name: str, params: dict) -> Plan:
    frames, height, width = x.shape[1], x.shape[3], x.shape[4]
    if name in ("frame_mask", "occlusion"):
        engine = PerturbationEngine(model, x, target, params["baseline"], params["measure"], params["blur_sigma"])
        if name == "frame_mask":
            perturbations = frame_windows(frames, params["window"])
        else:
            perturbations = occlusion_windows((frames, height, width), params["window"], params["stride"])
        count = evaluations(name, frames, height, width, params)
        return Plan(count, estimate(engine, perturbations), f"{count} perturbed clips ({engine.strategy} engine)")
    if name not in ("tsr", "tsr_onestep"):
        raise ValueError(f"no plan for {name}")
    base = get_method(params.get("base") or "saliency")
    if name == "tsr_onestep":
        count = frames + 1
    else:
        features = len(grid_features(height, width, params["block"])) if params["features"] == "grid" else None
        per_frame = features if features is not None else params["segments"]
        count = frames + 1 + math.ceil((1 - params["alpha_quantile"]) * frames) * per_frame
    start = time.perf_counter()
    base.fn(model, x, target, **base.resolve_params({}))
    each = time.perf_counter() - start
    return Plan(count, count * each, f"{count} {base.name} attributions of {each * 1000:.0f} ms (at most)")


def evaluations(name: str, frames: int, height: int, width: int, params: dict) -> int:
    """How many perturbed clips ``frame_mask`` / ``occlusion`` score with these parameters."""
    if name == "frame_mask":
        return max(0, frames - int(params.get("window", 1)) + 1)
    window, stride = tuple(params.get("window", (1, 10, 10))), tuple(params.get("stride", (1, 10, 10)))
    return int(np.prod([len(window_starts(n, w, s)) for n, w, s in zip((frames, height, width), window, stride)]))


def estimate(engine: PerturbationEngine, perturbations: list[Perturbation], sample: int = 8) -> float:
    """Seconds the engine should take for all ``perturbations``, from timing an evenly spread sample."""
    if not perturbations:
        return 0.0
    step = max(1, len(perturbations) // sample)
    chosen = perturbations[::step][:sample]
    start = time.perf_counter()
    engine.scores(chosen)
    return (time.perf_counter() - start) / len(chosen) * len(perturbations)
