"""Motion explanations through a flow decomposition of the clip (001): gradients of the explained
score with respect to the optical flow between frames, not only the pixels.

The model's input ``x [T,C,H,W]`` (normalised frames) is written as

* ``first`` = I_0, the first frame;
* ``flows`` f_i (i = 1..T-1) [2,H,W]: Farneback flows between frames i-1 and i of the model
  input, in pixels, x then y.  f_i(p) is where the content now at p came from, as a forward
  displacement: I_i(p) ~ I_{i-1}(p - f_i(p)), so it points the way things move;
* ``errors`` E_i = I_i - g(I_{i-1}, f_i) [C,H,W]: what the warp does not explain (new content,
  lighting, noise),

with the warp g(I, f)(p) = I(p - f(p)): bilinear sampling (``grid_sample``); a position outside
the frame takes the value of the nearest edge pixel (``padding_mode="border"``).  The rebuild
Î_0 = I_0, Î_i = g(Î_{i-1}, f_i) + E_i gives the clip back (to float rounding), and the model's
score differentiated through it gives d score / d I_0, d score / d f_i and d score / d E_i.

Appearance then reaches a later frame two ways: carried along the flows from the frame before
(the flow gradient), or added there (the error gradient).  ``motion_share`` compares the two per
frame, in the score's units: sum_p |f_i(p) . d score / d f_i(p)| against
sum_p |E_i(p) . d score / d E_i(p)| (gradient x value, a first-order share of the score).
``motion_reliance`` (meta) is the clip-level, finite counterpart: how much the score changes when
every flow is set to zero (nothing moves) against when every error is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..explanation import Attribution, Target
from .machinery.optical_flow import FARNEBACK_PARAMS, clip_flows, sampling_grid
from .machinery.registry import MethodCard, Param, register
from .machinery.scoring import TargetScore
from .machinery.smoothing import clips_per_pass, seeded, smoothing_params

NOISE_TARGETS = ("all", "first", "flows", "errors")


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """g(I, f): image [N,C,H,W], flow [N,2,H,W] (pixels, x then y) -> [N,C,H,W] with
    out(p) = I(p - f(p)), bilinear; outside the frame the nearest edge pixel."""
    n, _, h, w = image.shape
    ys = torch.arange(h, device=image.device, dtype=image.dtype).view(1, h, 1)
    xs = torch.arange(w, device=image.device, dtype=image.dtype).view(1, 1, w)
    grid = sampling_grid(xs - flow[:, 0], ys - flow[:, 1], h, w)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


@dataclass
class Decomposition:
    """A clip as first frame, flows and errors (module docstring); leading batch dimension B."""

    first: torch.Tensor  # [B,C,H,W]
    flows: torch.Tensor  # [B,T-1,2,H,W]
    errors: torch.Tensor  # [B,T-1,C,H,W]


def decompose(x: torch.Tensor, flows: torch.Tensor) -> Decomposition:
    """x [B,T,C,H,W] and flows [B,T-1,2,H,W] -> I_0, the flows, E_i = I_i - g(I_{i-1}, f_i)."""
    b, t = x.shape[:2]
    if flows.shape[:2] != (b, t - 1) or flows.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"flows {tuple(flows.shape)} do not fit a clip {tuple(x.shape)}")
    flows = flows.to(x.dtype)
    predicted = warp(x[:, :-1].flatten(0, 1), flows.flatten(0, 1)).view_as(x[:, 1:])
    return Decomposition(x[:, 0], flows, x[:, 1:] - predicted)


def rebuild(d: Decomposition) -> torch.Tensor:
    """Î_0 = I_0, Î_i = g(Î_{i-1}, f_i) + E_i -> [B,T,C,H,W] (differentiable in all three)."""
    frames = [d.first]
    for i in range(d.flows.shape[1]):
        frames.append(warp(frames[-1], d.flows[:, i]) + d.errors[:, i])
    return torch.stack(frames, dim=1)


def decomposition_gradients(
    model, target: Target, d: Decomposition
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The explained score of each rebuilt clip [B] and its gradients w.r.t. I_0 [B,C,H,W], the
    flows [B,T-1,2,H,W] and the errors [B,T-1,C,H,W]."""
    leaves = [t.detach().clone().requires_grad_(True) for t in (d.first, d.flows, d.errors)]
    with torch.enable_grad():
        scores = TargetScore(model, target)(rebuild(Decomposition(*leaves)))[:, 0]
        grads = torch.autograd.grad(scores.sum(), leaves)
    return scores.detach(), *grads


def attribution_parts(
    d: Decomposition, flow_grad: torch.Tensor, error_grad: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame i >= 1, the gradient x value attribution of the flows and of the errors,
    sum_p |f_i(p) . d score / d f_i(p)| and sum_p |E_i(p) . d score / d E_i(p)|, [B,T-1] each."""
    flow_part = (d.flows * flow_grad).sum(2).abs().flatten(2).sum(-1)
    error_part = (d.errors * error_grad).sum(2).abs().flatten(2).sum(-1)
    return flow_part, error_part


def share_of(part: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """|part| / (|part| + |other|), elementwise, in [0, 1] (0 where both are 0)."""
    part, other = part.abs(), other.abs()
    total = part + other
    return torch.where(total > 0, part / total.clamp(min=torch.finfo(total.dtype).tiny), 0.0)


def motion_share(d: Decomposition, flow_grad: torch.Tensor, error_grad: torch.Tensor) -> torch.Tensor:
    """Per frame i >= 1, the flows' part of the gradient x value attribution, [B,T-1] in [0, 1]
    (0 where neither has any)."""
    return share_of(*attribution_parts(d, flow_grad, error_grad))


@torch.no_grad()
def motion_reliance(model, target: Target, d: Decomposition, score: float | None = None) -> dict[str, float]:
    """How much the score rests on the motion, by two ablations of the decomposition (batch of
    one): every flow set to zero (the errors kept: the first frame stays where it is, so nothing
    moves) and every error set to zero (the first frame carried along the flows alone).
    -> ``score``, ``without_motion`` and ``without_errors`` (the scores), and ``motion_reliance``
    = |score - without_motion| / (|score - without_motion| + |score - without_errors|), in [0, 1]
    (0 where neither changes it).

    Unlike ``motion_share`` (first order, frame by frame) this is a finite change: a model that
    reads every frame's appearance on its own barely changes when the clip stands still, while
    the flows' gradient x value is large for it too, because the flows carry the shape's
    appearance from frame to frame.  ``score``: the clip's own score when the caller has it (one
    model pass fewer)."""
    clips = [
        rebuild(Decomposition(d.first, torch.zeros_like(d.flows), d.errors)),
        rebuild(Decomposition(d.first, d.flows, torch.zeros_like(d.errors))),
    ]
    if score is None:
        clips.insert(0, rebuild(d))
    values = [float(v) for v in TargetScore(model, target)(torch.cat(clips))[:, 0]]
    if score is not None:
        values.insert(0, float(score))
    motion, errors = abs(values[0] - values[1]), abs(values[0] - values[2])
    total = motion + errors
    return {
        "score": values[0],
        "without_motion": values[1],
        "without_errors": values[2],
        "motion_reliance": motion / total if total > 0 else 0.0,
    }


def _attribution(d: Decomposition, grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor], meta: dict) -> Attribution:
    """Gradients (batch of one) -> spatial [T,H,W]: |d score / d f_t| per pixel (frame 0: zero,
    nothing flows into it); temporal [T]: each frame's gradient x value attribution, |.| summed
    over its flow and error (frame 0: I_0); extras as listed in ``flow_gradient``."""
    flow_part, error_part = (part[0].float() for part in attribution_parts(d, grads[1], grads[2]))
    first_grad, flow_grad, error_grad = (g[0].float() for g in grads)
    magnitude = flow_grad.norm(dim=1)  # [T-1,H,W]
    spatial = torch.cat([torch.zeros_like(magnitude[:1]), magnitude])
    first_part = (d.first[0].float() * first_grad).sum(0).abs().sum()
    temporal = torch.cat([first_part[None], flow_part + error_part])
    extras = {
        "flows": d.flows[0].float(),
        "flow_grad": flow_grad,
        "flow_grad_magnitude": magnitude,
        "first_grad": first_grad.sum(0),
        "errors": d.errors[0].float().abs().mean(1),
        "error_grad": error_grad.sum(1),
        "motion_share": share_of(flow_part, error_part),
    }
    return Attribution(
        spatial=spatial.cpu().numpy(),
        temporal=temporal.cpu().numpy(),
        extras={k: v.detach().cpu().numpy() for k, v in extras.items()},
        meta=meta,
    )


def _decomposed(model, x: torch.Tensor, options: dict) -> tuple[Decomposition, dict]:
    if x.shape[0] != 1:
        raise ValueError("explain one clip at a time: x must be [1,T,C,H,W]")
    if x.shape[1] < 2:
        raise ValueError("a flow decomposition needs a clip of at least two frames")
    start = time.perf_counter()
    flows = clip_flows(model, x, **options)
    d = decompose(x.detach(), flows)
    rebuilt_error = float((rebuild(d) - x).abs().max())
    meta = {"farneback": options, "flow_seconds": time.perf_counter() - start, "rebuild_max_error": rebuilt_error}
    return d, meta


@register(
    "flow_gradient",
    card=MethodCard(
        computes=(
            "The clip rebuilt from its first frame, the Farneback optical flows and the warp errors; the "
            "score differentiated through that rebuild with respect to the flows (motion) and the errors "
            "(appearance), with the share of each."
        ),
        needs="Gradients through the whole model, and a clip of at least two frames.",
        cannot_show=(
            "Motion the flow estimator misses (fast, large or occluded motion), and the model's use of "
            "motion beyond first order."
        ),
        failures=(
            ("Farneback flows are wrong on textureless or fast objects, and the map inherits the error."),
            (
                "Gradients are noisy, as plain saliency's; a model that ignores motion still gets "
                "non-zero flow gradients, so read the share curve, not the map alone."
            ),
        ),
        cost="The flows on the CPU, plus one forward and one backward pass.",
    ),
    family="motion",
    reading="magnitude",
    params=FARNEBACK_PARAMS,
    description="Gradients w.r.t. optical flow: the clip rebuilt from its first frame, Farneback flows and "
    "warp errors, differentiated through the rebuild",
    references=("001: flow decomposition and flow gradients", "Farneback 2003"),
)
def flow_gradient(model, x: torch.Tensor, target: Target, **farneback) -> Attribution:
    """x [1,T,C,H,W] -> spatial [T,H,W]: |d score / d f_t| (0 for frame 0); temporal [T]:
    gradient x value per frame (flow and error; frame 0: I_0).  extras: ``flows`` [T-1,2,H,W],
    ``flow_grad`` [T-1,2,H,W], ``flow_grad_magnitude`` [T-1,H,W], ``first_grad`` [H,W] (I_0's
    gradient, channel sum), ``errors`` [T-1,H,W] (mean |E_i| over channels), ``error_grad``
    [T-1,H,W] (channel sum), ``motion_share`` [T-1].  meta: ``motion_reliance`` and the scores
    without motion and without errors (``motion_reliance()``)."""
    d, meta = _decomposed(model, x, farneback)
    start = time.perf_counter()
    score, *grads = decomposition_gradients(model, target, d)
    meta["gradient_seconds"] = time.perf_counter() - start
    meta.update(motion_reliance(model, target, d, score=float(score[0])))
    return _attribution(d, tuple(grads), meta)


@register(
    "smoothflow",
    card=MethodCard(
        computes=(
            "SmoothGrad in the decomposed space: the flow and error gradients averaged over `samples` "
            "copies with Gaussian noise on the first frame, the flows and the errors (as chosen in "
            "`noise_on`)."
        ),
        needs="Gradients through the whole model and a clip of at least two frames, as flow gradients.",
        cannot_show="As flow gradients: no information the flow decomposition lacks.",
        failures=(
            "Too much noise moves the rebuilt clip far from the real one.",
            "A smoother map is not a more faithful one.",
        ),
        cost="The flows, plus `samples` forward and backward passes (16 by default).",
    ),
    family="motion",
    reading="magnitude",
    params=(
        *smoothing_params("the decomposition", "each part's"),
        Param("noise_on", "choice", "all", choices=NOISE_TARGETS, help="which parts get the noise"),
        *FARNEBACK_PARAMS,
    ),
    description="SmoothGrad in the decomposed space: flow gradients averaged over noisy first frames, flows and errors",
    references=("001: smoothflow", "Smilkov et al. 2017"),
)
def smoothflow(
    model,
    x: torch.Tensor,
    target: Target,
    samples: int = 16,
    sigma: float = 0.15,
    noise_on: str = "all",
    seed: int = 0,
    **farneback,
) -> Attribution:
    """As ``flow_gradient``, each gradient the mean over ``samples`` decompositions with Gaussian
    noise N(0, s^2), s = sigma * (max - min) of the part, on I_0, the flows and / or the errors
    (``noise_on``); the maps and shares are computed from the noise-free decomposition's values."""
    if noise_on not in NOISE_TARGETS:
        raise ValueError(f"noise_on must be one of {', '.join(NOISE_TARGETS)}, not {noise_on!r}")
    d, meta = _decomposed(model, x, farneback)
    parts = {"first": d.first, "flows": d.flows, "errors": d.errors}
    stdevs = {
        name: float(sigma * (part.max() - part.min())) if noise_on in ("all", name) else 0.0
        for name, part in parts.items()
    }
    sums = [torch.zeros_like(p) for p in parts.values()]
    batch = clips_per_pass(x.device)
    start = time.perf_counter()
    with seeded(seed, x.device):
        for done in range(0, samples, batch):
            n = min(batch, samples - done)
            noisy = [
                part.expand(n, *part.shape[1:])
                + stdevs[name] * torch.randn(n, *part.shape[1:], device=x.device, dtype=part.dtype)
                for name, part in parts.items()
            ]
            _, *grads = decomposition_gradients(model, target, Decomposition(*noisy))
            for total, grad in zip(sums, grads, strict=True):
                total += grad.sum(0, keepdim=True)
    meta.update(gradient_seconds=time.perf_counter() - start, noise_std=stdevs, clips_per_pass=batch)
    meta.update(motion_reliance(model, target, d))
    grads = tuple(total / samples for total in sums)
    return _attribution(d, grads, meta)
