"""The gradient family through Captum: saliency, input x gradient, SmoothGrad, integrated gradients.

Captum's forward function is ``TargetScore(model, target)`` (the 5-D clip in, the explained score out
as column 0), so every method explains class logits and regression targets alike.  Attributions
come back as ``[1,T,C,H,W]``; the maps are

* ``spatial`` [T,H,W]: the attribution summed over the three colour channels (signed, raw);
* ``temporal`` [T]: for the gradients (saliency, SmoothGrad) the mean absolute value of ``spatial``
  over each frame (the per-frame gradient magnitude of paper 002); for the attributions (input x
  gradient, integrated gradients) the sum of ``spatial`` over each frame, i.e. the frame's signed
  share of the score (for integrated gradients the shares add up to score(x) - score(baseline)).
"""

from __future__ import annotations

import torch
from captum.attr import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency

from ..explanation import Attribution, Target
from .machinery.perturbation import BASELINES, baseline_clip
from .machinery.registry import Param, register
from .machinery.scoring import TargetScore, gradient_input
from .machinery.smoothing import clips_per_pass, seeded, smoothing_params


def _attribution(attribution: torch.Tensor, temporal: str, meta: dict | None = None) -> Attribution:
    """attribution [1,T,C,H,W] -> Attribution with spatial [T,H,W] (channel sum) and temporal [T]
    (``temporal``: "abs_mean" = mean |spatial| per frame, "sum" = sum of spatial per frame)."""
    spatial = attribution.detach()[0].sum(1).float()
    per_frame = spatial.abs().mean((1, 2)) if temporal == "abs_mean" else spatial.sum((1, 2))
    return Attribution(
        spatial=spatial.cpu().numpy(),
        temporal=per_frame.cpu().numpy(),
        meta=meta or {},
    )


@register(
    "saliency",
    family="spatial",
    reading="magnitude",
    description="Vanilla gradient of the target score w.r.t. the clip (signed), summed over colour channels",
    references=("Simonyan et al. 2014", "002: feature saliency with input gradients"),
)
def saliency(model, x: torch.Tensor, target: Target) -> Attribution:
    """x [1,T,C,H,W] -> spatial d score / d x summed over C [T,H,W]; temporal: mean |spatial| per frame."""
    forward = TargetScore(model, target)
    grad = Saliency(forward).attribute(gradient_input(x), target=forward.captum_target, abs=False)
    return _attribution(grad, "abs_mean")


@register(
    "input_x_gradient",
    family="spatial",
    description="Input times gradient (signed), summed over colour channels",
    references=("Shrikumar et al. 2016",),
)
def input_x_gradient(model, x: torch.Tensor, target: Target) -> Attribution:
    """x [1,T,C,H,W] -> spatial (x * d score / d x) summed over C [T,H,W]; temporal: its sum per frame.

    x is the normalised clip, so a pixel at the channel mean (grey 0.45) contributes nothing."""
    forward = TargetScore(model, target)
    attr = InputXGradient(forward).attribute(gradient_input(x), target=forward.captum_target)
    return _attribution(attr, "sum")


@register(
    "smoothgrad",
    family="spatial",
    reading="magnitude",
    params=(*smoothing_params("the clip", "the clip's"),),
    description="SmoothGrad: the signed gradient averaged over noisy copies of the clip (Captum NoiseTunnel)",
    references=("Smilkov et al. 2017", "001: smoothflow"),
)
def smoothgrad(
    model, x: torch.Tensor, target: Target, samples: int = 16, sigma: float = 0.15, seed: int = 0
) -> Attribution:
    """x [1,T,C,H,W] -> spatial: mean over ``samples`` noisy clips x + N(0, s^2), s = sigma * (max x - min x),
    of the signed gradient, summed over C [T,H,W]; temporal: mean |spatial| per frame."""
    forward = TargetScore(model, target)
    inputs = gradient_input(x)
    stdev = float(sigma * (x.max() - x.min()))
    with seeded(seed, inputs.device):
        grad = NoiseTunnel(Saliency(forward)).attribute(
            inputs,
            nt_type="smoothgrad",
            nt_samples=samples,
            nt_samples_batch_size=clips_per_pass(inputs.device),
            stdevs=stdev,
            target=forward.captum_target,
            abs=False,
        )
    meta = {"noise_std": stdev, "clips_per_pass": clips_per_pass(inputs.device)}  # the noise depends on both
    return _attribution(grad, "abs_mean", meta=meta)


@register(
    "integrated_gradients",
    family="spatial",
    params=(
        Param("steps", "int", 32, minimum=2, maximum=512, help="points on the path (Gauss-Legendre)"),
        Param(
            "baseline",
            "choice",
            "black",
            choices=BASELINES,
            help="black: black pixels; blur: each frame Gaussian-blurred; mean: the clip's mean frame",
        ),
        Param("blur_sigma", "float", 5.0, minimum=0.5, maximum=50.0, help="blur baseline: Gaussian sigma in pixels"),
    ),
    description="Integrated gradients from a black, blurred or mean-frame baseline, summed over colour channels",
    references=("Sundararajan et al. 2017",),
)
def integrated_gradients(
    model, x: torch.Tensor, target: Target, steps: int = 32, baseline: str = "black", blur_sigma: float = 5.0
) -> Attribution:
    """x [1,T,C,H,W] -> spatial: (x - x') * mean gradient on the path from the baseline x' to x, summed
    over C [T,H,W]; temporal: its sum per frame.  meta: score, baseline_score and the convergence
    delta (sum of the attributions minus the score difference; Gauss-Legendre quadrature)."""
    forward = TargetScore(model, target)
    inputs = gradient_input(x)
    reference = baseline_clip(model, inputs, baseline, blur_sigma)
    attr, delta = IntegratedGradients(forward).attribute(
        inputs,
        baselines=reference,
        target=forward.captum_target,
        n_steps=steps,
        internal_batch_size=clips_per_pass(inputs.device),
        return_convergence_delta=True,
    )
    with torch.inference_mode():
        score, base_score = forward(torch.cat([inputs, reference]))[:, 0].tolist()
    meta = {
        "score": score,
        "baseline_score": base_score,
        "convergence_delta": float(delta.sum()),
        "clips_per_pass": clips_per_pass(inputs.device),
    }
    return _attribution(attr, "sum", meta=meta)
