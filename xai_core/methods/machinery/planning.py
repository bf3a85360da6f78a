"""Before a long method runs: how many model evaluations it needs and about how long it takes.

``plan(model, x, target, name, params)`` for the masking methods times the engine on an evenly
spread sample of the perturbations (so the figure is this machine's and this model's).  For TSR
on the gradient engine (saliency or input x gradient on a decoupled model) it times the clip's
setup, two batches of Jacobian rows and a sample of masks; on the reference loop, one base
attribution (each mask costs one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...explanation import Target
from ...models.modes import eval_mode
from .clock import now
from .engine import PerturbationEngine
from .perturbation import Perturbation
from .relevance_change import (
    CHUNK,
    JACOBIAN_CHUNK,
    BatchedGradients,
    GradientChange,
    base_method,
    uses_batched_gradients,
    uses_gradient_engine,
)
from .windows import frame_windows, grid_features, occlusion_windows, window_starts

LONG_METHODS = ("frame_mask", "occlusion", "tsr_onestep", "tsr")


@dataclass(frozen=True)
class Plan:
    evaluations: int  # perturbed clips scored, or base attributions computed
    seconds: float
    note: str

    def __str__(self) -> str:
        return f"{self.evaluations:,} model evaluations, about {seconds_text(self.seconds)} here ({self.note})"


def seconds_text(seconds: float) -> str:
    """An estimate as it is said: tenths under 10 s, whole seconds above."""
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


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
    return _tsr_plan(model, x, target, name, params)


def _tsr_plan(model, x: torch.Tensor, target: Target, name: str, params: dict) -> Plan:
    """TSR's masks: on ``GradientChange``, the Jacobian passes (two timed, the clip's setup
    timed) and a timed sample of the masks; else one base attribution per mask, one timed."""
    frames, height, width = x.shape[1], x.shape[3], x.shape[4]
    base = base_method(model, params.get("base"))  # refused here, before a run, as the run would
    if name == "tsr_onestep":
        masks = frames
    else:
        features = len(grid_features(height, width, params["block"])) if params["features"] == "grid" else None
        per_frame = features if features is not None else params["segments"]
        masks = frames + math.ceil((1 - params["alpha_quantile"]) * frames) * per_frame
    count = masks + 1  # base attributions' worth: the clip's own map and one per mask
    if uses_gradient_engine(model, x, base.name, params.get("engine", "auto")):
        start = now(x.device)
        sample = GradientChange(
            model, x, target, base.name, params["baseline"], params["blur_sigma"], jacobian_rows=2 * JACOBIAN_CHUNK
        )
        timed = sample.jacobian_chunk_seconds
        setup = now(x.device) - start - sum(timed)
        passes = math.ceil(sample.feature_dim / JACOBIAN_CHUNK)
        jacobians = setup + sum(timed) / max(1, len(timed)) * passes
        sampled = sample_masks(frames, height, width, params.get("block", 10))
        sample.deltas(sampled[:1])  # once-only work (each frame's Jacobian columns gathered) not timed
        start = now(x.device)
        sample.deltas(sampled)
        each = (now(x.device) - start) / len(sampled)
        return Plan(
            count,
            jacobians + masks * each,
            f"gradient engine: {passes} Jacobian passes ({jacobians:.1f} s), then {masks} masks of "
            f"{each * 1000:.0f} ms",
        )
    if uses_batched_gradients(model, base.name, params.get("engine", "auto")):
        engine = BatchedGradients(model, x, target, base.name, params["baseline"], params["blur_sigma"])
        sampled = sample_masks(frames, height, width, params.get("block", 10), size=engine.clips)
        start = now(x.device)
        engine.deltas(sampled)
        each = (now(x.device) - start) / len(sampled)
        return Plan(
            count, count * each, f"{count} {base.name} maps, {engine.clips} a backward pass, {each * 1000:.0f} ms each"
        )
    start = now(x.device)
    base.fn(model, x, target, **base.resolve_params({}))
    each = now(x.device) - start
    return Plan(count, count * each, f"{count} {base.name} attributions of {each * 1000:.0f} ms")


def sample_masks(frames: int, height: int, width: int, block: int, size: int = CHUNK) -> list[Perturbation]:
    """``size`` single-frame masks spread over the clip, as TSR makes them: whole frames and
    ``block``-sided blocks (a timing sample)."""
    boxes = grid_features(height, width, block)
    out = []
    for i in range(size):
        t = i * frames // size
        out.append(Perturbation(t, t + 1) if i % 2 == 0 else Perturbation(t, t + 1, boxes[(i * 7) % len(boxes)]))
    return out


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
    start = now(engine.x.device)
    engine.scores(chosen)
    return (now(engine.x.device) - start) / len(chosen) * len(perturbations)
