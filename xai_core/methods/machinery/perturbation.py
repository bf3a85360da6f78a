"""What masking means: which frames and pixels are replaced, and by what.

A ``Perturbation`` replaces frames ``start..stop-1`` of a clip, inside a box of pixels (the whole
frame by default) and optionally only the pixels of a mask inside it (a superpixel), by the
baseline's content.  Baselines (``MASK_BASELINES``), all in pixel space before normalisation:

* ``zero``: black pixels;
* ``mean``: the clip's mean frame;
* ``blur``: the same frame blurred by a Gaussian of ``blur_sigma`` pixels;
* ``previous``: the last frame before the window, held (frame 0 has none: black).

``apply`` builds the whole perturbed clip: the slow, obvious definition that the fast engines
(``engine``) must reproduce.  ``baseline_clip`` makes whole baseline clips (``BASELINES``: black,
blur, mean), which the per-frame baselines above take their content from and integrated gradients
starts from; ``BASELINE``, ``MEASURE`` and ``BLUR`` are the parameters the masking methods and
TSR share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...explanation import Target
from .registry import Param

BASELINES = ("black", "blur", "mean")  # baseline clips (integrated gradients' reference)
MASK_BASELINES = ("zero", "mean", "blur", "previous")
MEASURES = ("score", "probability")

BASELINE = Param(
    "baseline",
    "choice",
    "zero",
    choices=MASK_BASELINES,
    help="what replaces the masked pixels: black (zero), the clip's mean frame, the frame blurred, or the last frame "
    "before the window (previous)",
)
MEASURE = Param(
    "measure",
    "choice",
    "score",
    choices=MEASURES,
    help="score: the explained score (logit, output or -(output - ref)^2); probability: the target class's",
)
BLUR = Param("blur_sigma", "float", 5.0, minimum=0.5, maximum=50.0, help="blur baseline: Gaussian sigma in pixels")


@dataclass(frozen=True, eq=False)
class Perturbation:
    """Frames ``start``..``stop-1``; ``box`` (y0, y1, x0, x1), None for the whole frame; ``pixels``
    bool [y1-y0, x1-x0] inside the box (None: all of it)."""

    start: int
    stop: int
    box: tuple[int, int, int, int] | None = None
    pixels: torch.Tensor | None = None

    @property
    def frames(self) -> range:
        return range(self.start, self.stop)


def fill_clip(model, x: torch.Tensor, baseline: str, blur_sigma: float = 5.0) -> torch.Tensor | None:
    """The replacement content [1,T,C,H,W] of each frame for the per-frame baselines (None for
    ``previous``, whose content depends on the window)."""
    if baseline not in MASK_BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; choose one of {', '.join(MASK_BASELINES)}")
    if baseline == "previous":
        return None
    return baseline_clip(model, x, "black" if baseline == "zero" else baseline, blur_sigma)


def fill_frames(model, x: torch.Tensor, fill: torch.Tensor | None, p: Perturbation) -> torch.Tensor:
    """The baseline content of the perturbed frames, [stop-start, C, H, W]."""
    if fill is not None:
        return fill[0, p.start : p.stop]
    held = x[0, p.start - 1] if p.start > 0 else model.pixel_value(0, device=x.device)[0, 0].expand_as(x[0, 0])
    return held.unsqueeze(0).expand(p.stop - p.start, -1, -1, -1)


def perturb_frames(frames: torch.Tensor, content: torch.Tensor, p: Perturbation) -> torch.Tensor:
    """frames [k,C,H,W] (the clip's frames start..stop-1) -> the same with the perturbation applied."""
    if p.box is None:
        return content.clone()
    y0, y1, x0, x1 = p.box
    out = frames.clone()
    if p.pixels is None:
        out[..., y0:y1, x0:x1] = content[..., y0:y1, x0:x1]
    else:
        region = out[..., y0:y1, x0:x1]
        out[..., y0:y1, x0:x1] = torch.where(p.pixels, content[..., y0:y1, x0:x1], region)
    return out


def apply(model, x: torch.Tensor, fill: torch.Tensor | None, p: Perturbation) -> torch.Tensor:
    """x [1,T,C,H,W] -> the perturbed clip [1,T,C,H,W] (a copy)."""
    out = x.clone()
    out[0, p.start : p.stop] = perturb_frames(x[0, p.start : p.stop], fill_frames(model, x, fill, p), p)
    return out


def measure_scores(output: torch.Tensor, target: Target, measure: str) -> torch.Tensor:
    """output [B,K] -> [B]: the explained score, or the target class's probability."""
    if measure == "score":
        return target.score(output)
    if measure == "probability":
        if target.kind != "class":
            raise ValueError("the probability is only defined for a class target; measure the score")
        return output.softmax(-1)[:, target.index]
    raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")


def baseline_clip(model, x: torch.Tensor, kind: str, blur_sigma: float = 5.0) -> torch.Tensor:
    """The baseline clip [1,T,C,H,W] (normalised like x): "black" (pixel value 0 before normalisation),
    "blur" (each frame blurred by a Gaussian of ``blur_sigma`` pixels, reflected at the borders) or
    "mean" (the clip's mean frame in every frame)."""
    x = x.detach()
    if kind == "black":
        return model.pixel_value(0, device=x.device).to(x.dtype).expand_as(x).clone()
    if kind == "mean":
        return x.mean(1, keepdim=True).expand_as(x).clone()
    if kind == "blur":
        radius = max(1, math.ceil(3 * blur_sigma))
        radius = min(radius, (min(x.shape[-2:]) - 1) // 2)  # reflection padding needs a smaller radius
        from torchvision.transforms.v2 import functional as TF  # torchvision: a second to import, blur only

        return TF.gaussian_blur(x, kernel_size=[2 * radius + 1] * 2, sigma=[blur_sigma] * 2)
    raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")
