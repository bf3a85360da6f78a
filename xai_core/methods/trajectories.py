"""Trajectory saliency (001): points pushed along the clip's flows, and the saliency a spatial
method puts along each one over a window of frames.

With the flow convention of ``flow.py`` (I_t(p) ~ I_{t-1}(p - f_t(p)), f_t sampled at frame t's
positions) a point's position one frame back is exact: P_{t-1} = P_t - f_t(P_t).  One frame on,
P_{t+1} = P_t + f_{t+1}(P_{t+1}) is implicit; it is solved by fixed-point steps
P <- P_t + f_{t+1}(P), starting from P = P_t, until no point moves more than 1e-4 px (at most 20
steps; where the flow is smooth each step shrinks the error by the flow's slope).  Flows are
sampled bilinearly; positions stay inside the frame.

A sub-trajectory's saliency is the sum over ``window`` consecutive frames of the map's value
(|map| for magnitude methods, its positive part otherwise) at the point's position.  Each
trajectory is scored by its best window; the top ones come back with their whole track.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ..explanation import Attribution, Target
from .machinery.optical_flow import FARNEBACK_PARAMS, clip_flows, sampling_grid
from .machinery.registry import MethodCard, MethodError, Param, get_method, register

FIXED_POINT_STEPS = 20  # at most
FIXED_POINT_TOLERANCE = 1e-4  # pixels


def sample(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """field [C,H,W] at points [N,2] (x, y; pixels, inside the frame) -> [N,C], bilinear."""
    _, h, w = field.shape
    grid = sampling_grid(points[:, 0], points[:, 1], h, w)
    out = F.grid_sample(field[None], grid.view(1, 1, -1, 2).to(field.dtype), mode="bilinear", align_corners=True)
    return out[0, :, 0].T


def _inside(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return torch.stack([points[:, 0].clamp(0, width - 1), points[:, 1].clamp(0, height - 1)], dim=1)


def push(flows: torch.Tensor, points: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """flows [T-1,2,H,W] (flows[i] into frame i+1), points [N,2] (x, y) at frames [N] (long) ->
    every point's track through the whole clip, [N,T,2]."""
    t = flows.shape[0] + 1
    h, w = flows.shape[-2:]
    tracks = torch.empty(len(points), t, 2, dtype=flows.dtype, device=flows.device)
    points = _inside(points.to(flows.dtype), h, w)
    for start in frames.unique().tolist():  # seeds that start in the same frame move together
        rows = (frames == start).nonzero().flatten()
        tracks[rows, start] = points[rows]
        current = points[rows]
        for i in range(start, t - 1):  # forward: frame i -> i + 1, through flows[i]
            target = current
            for _ in range(FIXED_POINT_STEPS):
                previous, target = target, _inside(current + sample(flows[i], target), h, w)
                if float((target - previous).abs().max()) <= FIXED_POINT_TOLERANCE:
                    break
            current = target
            tracks[rows, i + 1] = current
        current = points[rows]
        for i in range(start, 0, -1):  # back: frame i -> i - 1, through flows[i - 1]
            current = _inside(current - sample(flows[i - 1], current), h, w)
            tracks[rows, i - 1] = current
    return tracks


def along(maps: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
    """maps [T,H,W] and tracks [N,T,2] -> the map's value under each point in each frame, [N,T]."""
    return torch.stack([sample(maps[t][None], tracks[:, t])[:, 0] for t in range(maps.shape[0])], dim=1)


def window_sums(values: torch.Tensor, window: int) -> torch.Tensor:
    """values [N,T] -> sums over every ``window`` consecutive frames, [N,T-window+1]."""
    return values.unfold(1, window, 1).sum(-1)


def parse_points(text: str | None, frames: int, height: int, width: int) -> list[tuple[float, float, int]]:
    """ "x,y,t; x,y,t" (pixels of the model input, frame index) -> [(x, y, t)], checked."""
    points = []
    for part in (text or "").replace("\n", ";").split(";"):
        if not part.strip():
            continue
        try:
            x, y, t = (float(v) for v in part.split(","))
        except ValueError:
            raise MethodError(f"points must be 'x,y,t' triples separated by ';', not {part.strip()!r}") from None
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1 and 0 <= t < frames and t == int(t)):
            raise MethodError(f"point {part.strip()!r} is outside the clip ({width}x{height}, {frames} frames)")
        points.append((x, y, int(t)))
    return points


@register(
    "trajectories",
    card=MethodCard(
        computes=(
            "Points pushed along the Farneback flows from a grid (or your points); each track ranked by a"
            " spatial method's saliency summed along it over `window` frames; the top tracks drawn."
        ),
        needs="A spatial base method the model supports.",
        cannot_show="Objects the flow does not follow, and evidence that does not move.",
        failures=(
            "Tracks drift where the flow is wrong, and then collect saliency from the background.",
            "Inherits the base method's flaws.",
        ),
        cost="The flows and the base method, then cheap tracking on the CPU.",
    ),
    family="motion",
    reading="magnitude",
    params=(
        Param(
            "base",
            "str",
            "auto",
            help="the spatial method whose map is read along the trajectories; auto: gradcam where the model "
            "has a cam layer (its maps are smooth enough to follow a point), else saliency",
        ),
        Param("window", "int", 10, minimum=1, maximum=512, help="frames in a sub-trajectory"),
        Param("grid", "int", 8, minimum=2, maximum=64, help="seeds every this many pixels in the first frame"),
        Param("top", "int", 10, minimum=1, maximum=1000, help="trajectories returned"),
        Param("points", "str", None, help="your own seeds: 'x,y,t; x,y,t' (pixels of the model input, frame)"),
        *FARNEBACK_PARAMS,
    ),
    description="Trajectory saliency: points pushed along the Farneback flows, ranked by a spatial method's "
    "saliency summed along them over a window of frames",
    references=("001: trajectories",),
    imports=("captum.attr",),  # its automatic base may be saliency
)
def trajectories(
    model,
    x: torch.Tensor,
    target: Target,
    base: str | None = "auto",
    window: int = 10,
    grid: int = 8,
    top: int = 10,
    points: str | None = None,
    **farneback,
) -> Attribution:
    """x [1,T,C,H,W] -> the base method's maps (spatial [T,H,W], temporal [T]) and extras:
    ``trajectories`` [K,T,2] (x, y of the top K tracks in every frame), ``trajectory_scores`` [K]
    (best window's sum), ``trajectory_windows`` [K,2] (its first frame, one past its last),
    ``trajectory_saliency`` [K,T] (the map under the point per frame), ``flows`` [T-1,2,H,W]
    (a window longer than the clip is cut to it: meta ``window``);
    with ``points``: ``picked`` [P,T,2], ``picked_scores`` [P], ``picked_windows`` [P,2]."""
    if base in (None, "", "auto"):
        base = "gradcam" if get_method("gradcam").unavailable_reason(model) is None else "saliency"
    spec = get_method(base)
    if spec.family != "spatial":
        raise MethodError(f"trajectories read a spatial map; {spec.name} is {spec.family}")
    reason = spec.unavailable_reason(model)
    if reason:
        raise MethodError(reason)
    frames, height, width = x.shape[1], x.shape[3], x.shape[4]
    window = min(window, frames)  # a short clip: the whole clip is the window
    picked = parse_points(points, frames, height, width)
    base_map = spec.fn(model, x, target, **spec.resolve_params({}))
    maps = torch.from_numpy(np.asarray(base_map.spatial, dtype=np.float32))
    maps = maps.abs() if spec.reading == "magnitude" else maps.clamp(min=0)
    flows = clip_flows(model, x, **farneback)[0].float().cpu()
    seeds = torch.from_numpy(np.stack(np.mgrid[grid // 2 : width : grid, grid // 2 : height : grid], -1).reshape(-1, 2))
    seeds = seeds.float()  # (x, y) in the first frame
    tracks = push(flows, seeds, torch.zeros(len(seeds), dtype=torch.long))
    saliency = along(maps, tracks)
    sums = window_sums(saliency, window)
    best, start = sums.max(1)
    order = best.argsort(descending=True)[:top]
    extras = {
        "trajectories": tracks[order],
        "trajectory_scores": best[order],
        "trajectory_windows": torch.stack([start[order], start[order] + window], 1),
        "trajectory_saliency": saliency[order],
        "flows": flows,
    }
    if picked:
        xy = torch.tensor([[px, py] for px, py, _ in picked])
        own = push(flows, xy, torch.tensor([t for _, _, t in picked]))
        own_best, own_start = window_sums(along(maps, own), window).max(1)
        extras.update(
            picked=own, picked_scores=own_best, picked_windows=torch.stack([own_start, own_start + window], 1)
        )
    return Attribution(
        spatial=base_map.spatial,
        temporal=base_map.temporal,
        extras={k: v.numpy() for k, v in extras.items()},
        meta={"base": spec.name, "seeds": len(seeds), "window": window, "farneback": farneback},
    )
