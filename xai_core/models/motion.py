"""Motion channels: what makes movement visible to a network that looks at one frame at a time.

All functions take a normalised clip ``x [B,T,3,H,W]`` and look at each frame and the one before
it only (zero motion for the first frame), so a frame's motion channels depend on two frames.

Kinds (``MOTION_KINDS``):

* ``"difference"``: the signed difference to the previous frame; a moving shape shows as a
  signed edge pair.
* ``"block"``: motion-gated appearance with a block gate: each pixel's distance from the frame's
  background colour, kept within 4-8 pixels of pixels that changed.  A large shape's interior
  can lie outside the gate, so the channels show a band along its moving edges.
* ``"object"``: motion-gated appearance with an object gate: the gate is the whole moving object,
  found by geodesic reconstruction (grow the changed blocks through the foreground, never
  through background).  Static shapes that do not touch the moving one stay dark, however
  strong the pixel noise.

Thresholds are in units of the normalised input; with the zoo's std of 0.225 one unit is about
57 grey levels.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

MOTION_KINDS = ("difference", "block", "object")

# Soft thresholds (start, width) in normalised units, applied to 2x2-block means.  Measured on
# 40 training-range clips at noise 20 (the top of the training range): pixel noise moved a
# distractor block by at most 39.5 grey levels between frames (99.99th percentile 34), while
# the moving shape's most changed block changed by at least 41.5 (1st percentile 46).
FOREGROUND_THRESHOLD = (0.5, 0.5)  # distance from the background colour: 29 grey levels start, 57 full
CHANGE_THRESHOLD = (0.65, 0.15)  # change since the previous frame: 37 grey levels start, 46 full
RECONSTRUCTION_STEPS = 12  # each step grows the object by one 2x2 block: 24 pixels in all


def max3x3(x: torch.Tensor) -> torch.Tensor:
    """x [...,h,w] -> the largest value in each position's 3x3 neighbourhood (the border padded
    with -inf): ``F.max_pool2d(x, 3, stride=1, padding=1)``, exactly.  Two passes of shifted
    maxima, several times faster than max_pool2d on this CPU for one-channel maps."""
    padded = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(padded[..., :-2, :], padded[..., 1:-1, :]), padded[..., 2:, :])
    return torch.maximum(torch.maximum(rows[..., :-2], rows[..., 1:-1]), rows[..., 2:])


def block_means(x: torch.Tensor) -> torch.Tensor:
    """x [...,H,W] -> the mean of each 2x2 block [...,H//2,W//2] (an odd last row or column is
    dropped, as ``F.avg_pool2d(x, 2)``; equal to it up to float rounding, several times faster)."""
    h, w = x.shape[-2:]
    x = x[..., : h - h % 2, : w - w % 2]
    rows = x[..., ::2, :] + x[..., 1::2, :]
    return (rows[..., ::2] + rows[..., 1::2]) * 0.25


def frame_difference(x: torch.Tensor) -> torch.Tensor:
    """x [B,T,C,H,W] -> x_t - x_{t-1} [B,T,C,H,W] (zero for the first frame)."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)


def frame_pairs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B,T,C,H,W] -> (previous, current) frames [B*T,C,H,W]; the first frame is its own
    previous frame (so it shows no motion)."""
    prev = torch.cat([x[:, :1], x[:, :-1]], dim=1)
    return prev.flatten(0, 1), x.flatten(0, 1)


def background_colour(x: torch.Tensor) -> torch.Tensor:
    """x [...,3,H,W] -> each frame's median colour over a 4-pixel grid, [...,3,1,1]."""
    return x[..., ::4, ::4].flatten(-2).median(-1).values[..., None, None]


def _soft_step(value: torch.Tensor, threshold: tuple[float, float]) -> torch.Tensor:
    start, width = threshold
    return ((value - start) / width).clamp(0.0, 1.0)


def geodesic_reconstruction(seed: torch.Tensor, foreground: torch.Tensor, steps: int) -> torch.Tensor:
    """Grow ``min(seed, foreground)`` through ``foreground``, one 8-neighbour step at a time:
    ``mask <- min(max3x3(mask), foreground)``, ``steps`` times.  seed, foreground [N,1,h,w] in
    [0, 1] -> mask [N,1,h,w]; for binary inputs, the foreground pixels that a path of at most
    ``steps`` foreground steps links to a seed pixel.  The step never lowers the mask, so once a
    step changes nothing none of the later ones does: the loop stops there (the same result)."""
    mask = torch.minimum(seed, foreground)
    for _ in range(steps):
        grown = torch.minimum(max3x3(mask), foreground)
        if torch.equal(grown, mask):
            break
        mask = grown
    return mask


def pair_object_mask(prev: torch.Tensor, cur: torch.Tensor, steps: int = RECONSTRUCTION_STEPS) -> torch.Tensor:
    """Frames prev, cur [N,3,H,W] (H, W even) -> soft mask of the object that moved from prev to
    cur, as it is in cur, at half resolution [N,1,H/2,W/2] in [0, 1].

    On 2x2-block means (which quarter the noise): ``seed`` = blocks that changed since the previous
    frame, ``foreground`` = blocks away from the background colour.  Geodesic reconstruction of
    the seed inside the foreground fills the object that moved, interior included, and stops at
    the background."""
    return geodesic_reconstruction(*object_evidence(prev, cur, background_colour(cur)), steps)


def object_evidence(
    prev: torch.Tensor, cur: torch.Tensor, background: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The seed (2x2 blocks that changed) and the foreground (blocks away from ``background``
    [N,3,1,1]) of ``pair_object_mask``, [N,1,H/2,W/2] each.  Each block depends on its own 2x2
    pixels only, so a crop aligned to the blocks gives the same values as the whole frame."""
    blocks = block_means(cur)
    change = (blocks - block_means(prev)).abs().mean(1, keepdim=True)
    foreground = _soft_step((blocks - background).abs().mean(1, keepdim=True), FOREGROUND_THRESHOLD)
    return _soft_step(change, CHANGE_THRESHOLD), foreground


def moving_object_mask(x: torch.Tensor, steps: int = RECONSTRUCTION_STEPS) -> torch.Tensor:
    """x [B,T,3,H,W] (H, W even) -> the moving object's soft mask per frame (``pair_object_mask``
    of each frame and the one before it; none in the first frame), [B,T,1,H/2,W/2] in [0, 1]."""
    b, t, _, h, w = x.shape
    return pair_object_mask(*frame_pairs(x), steps).reshape(b, t, 1, h // 2, w // 2)


def gate_from_object_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """mask [N,1,H/2,W/2] -> [N,1,H,W]: grown by one 2x2 block so that the object's anti-aliased
    outline is inside, at full resolution."""
    grown = max3x3(mask)
    return F.interpolate(grown, size=size, mode="nearest")


def object_gate(x: torch.Tensor) -> torch.Tensor:
    """x [B,T,3,H,W] -> [B,T,1,H,W]: the moving object's mask (``gate_from_object_mask``)."""
    b, t, _, h, w = x.shape
    return gate_from_object_mask(moving_object_mask(x).flatten(0, 1), (h, w)).reshape(b, t, 1, h, w)


def pair_block_gate(prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
    """prev, cur [N,3,H,W] -> [N,1,H,W]: the largest change in each 4x4 block's 3x3 neighbourhood."""
    h, w = cur.shape[-2:]
    changed = (cur - prev).abs().mean(1, keepdim=True)
    coarse = F.max_pool2d(changed, 4, stride=4, ceil_mode=True)
    coarse = max3x3(coarse)
    return F.interpolate(coarse, scale_factor=4, mode="nearest")[..., :h, :w]


def block_gate(x: torch.Tensor) -> torch.Tensor:
    """x [B,T,3,H,W] -> [B,T,1,H,W]: ``pair_block_gate`` of each frame and the one before it."""
    b, t, _, h, w = x.shape
    return pair_block_gate(*frame_pairs(x)).reshape(b, t, 1, h, w)


def pair_motion_channels(
    prev: torch.Tensor,
    cur: torch.Tensor,
    kind: str,
    object_mask: torch.Tensor | None = None,
    background: torch.Tensor | None = None,
) -> torch.Tensor:
    """prev, cur [N,3,H,W] -> the three motion channels of cur [N,3,H,W]; ``object_mask`` (the
    pair's ``pair_object_mask``, kind "object") and ``background`` (``background_colour(cur)``):
    when the caller has them already."""
    if kind == "difference":
        return cur - prev
    if background is None and kind in ("block", "object"):
        background = background_colour(cur)
    if kind == "block":
        return (cur - background).abs() * pair_block_gate(prev, cur)
    if kind == "object":
        if cur.shape[-1] % 2 or cur.shape[-2] % 2:
            raise ValueError(f"the object gate needs an even frame size, got {tuple(cur.shape[-2:])}")
        if object_mask is None:
            object_mask = geodesic_reconstruction(*object_evidence(prev, cur, background), RECONSTRUCTION_STEPS)
        return (cur - background).abs() * gate_from_object_mask(object_mask, tuple(cur.shape[-2:]))
    raise ValueError(f"unknown motion kind {kind!r}; choose one of {', '.join(MOTION_KINDS)}")


def motion_channels(x: torch.Tensor, kind: str) -> torch.Tensor:
    """x [B,T,3,H,W] -> three motion channels [B,T,3,H,W] of the given kind (none in the first frame)."""
    b, t = x.shape[:2]
    return pair_motion_channels(*frame_pairs(x), kind).reshape(b, t, *x.shape[2:])
