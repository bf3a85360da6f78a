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

from ..explanation import Attribution, Target
from .machinery.perturbation import BASELINES, baseline_clip
from .machinery.registry import MethodCard, Param, register
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
    card=MethodCard(
        computes=(
            "The gradient of the target score with respect to every input pixel, summed over the colour "
            "channels: how much an infinitesimal change of that pixel would move the score."
        ),
        needs="Gradients through the whole model (any differentiable network).",
        cannot_show=(
            "What happens when a region is removed or changed by more than an infinitesimal amount; the "
            "map is a local, linear view of this one clip."
        ),
        failures=(
            "Speckled, noisy maps in which neighbouring pixels flip sign.",
            (
                "Gradients vanish where the score saturates (a confident prediction), so the map can be "
                "weak exactly where the evidence is."
            ),
            (
                "A sharp-looking map is not a faithful one: read it beside the sanity result measured for"
                " the model (the model-randomisation test of Adebayo et al. 2018)."
            ),
        ),
        cost="One forward and one backward pass.",
    ),
    family="spatial",
    reading="magnitude",
    description="Vanilla gradient of the target score w.r.t. the clip (signed), summed over colour channels",
    references=("Simonyan et al. 2014", "002: feature saliency with input gradients"),
    imports=("captum.attr",),
)
def saliency(model, x: torch.Tensor, target: Target) -> Attribution:
    """x [1,T,C,H,W] -> spatial d score / d x summed over C [T,H,W]; temporal: mean |spatial| per frame."""
    from captum.attr import Saliency  # captum imports matplotlib (0.7 s): only when a method that uses it runs

    forward = TargetScore(model, target)
    grad = Saliency(forward).attribute(gradient_input(x), target=forward.captum_target, abs=False)
    return _attribution(grad, "abs_mean")


@register(
    "input_x_gradient",
    card=MethodCard(
        computes=(
            "The normalised input times the gradient of the score, summed over the colour channels: each "
            "pixel's first-order contribution relative to an input at the channel means."
        ),
        needs="Gradients through the whole model.",
        cannot_show="The role of pixels at the channel mean: they get zero whatever the model does with them.",
        failures=(
            (
                "Multiplying by the input copies the image's own structure into the map, so part of what "
                "it shows is the picture, not the model."
            ),
            "Inherits the gradient's noise and saturation.",
        ),
        cost="One forward and one backward pass.",
    ),
    family="spatial",
    description="Input times gradient (signed), summed over colour channels",
    references=("Shrikumar et al. 2016",),
    imports=("captum.attr",),
)
def input_x_gradient(model, x: torch.Tensor, target: Target) -> Attribution:
    """x [1,T,C,H,W] -> spatial (x * d score / d x) summed over C [T,H,W]; temporal: its sum per frame.

    x is the normalised clip, so a pixel at the channel mean (grey 0.45) contributes nothing."""
    from captum.attr import InputXGradient

    forward = TargetScore(model, target)
    attr = InputXGradient(forward).attribute(gradient_input(x), target=forward.captum_target)
    return _attribution(attr, "sum")


@register(
    "smoothgrad",
    card=MethodCard(
        computes=(
            "The gradient averaged over `samples` copies of the clip with Gaussian noise of standard "
            "deviation `sigma` × the clip's value range."
        ),
        needs="Gradients through the whole model.",
        cannot_show=(
            "More than the gradient can: the average removes noise, it adds no information about regions "
            "removed or changed."
        ),
        failures=(
            (
                "Too little noise gives the speckle of plain saliency; too much blurs the map into shapes"
                " the model never weighed."
            ),
            "A cleaner-looking map is not a more faithful one: check it against the sanity result.",
        ),
        cost="`samples` forward and backward passes (16 by default).",
    ),
    family="spatial",
    reading="magnitude",
    params=(*smoothing_params("the clip", "the clip's"),),
    description="SmoothGrad: the signed gradient averaged over noisy copies of the clip (Captum NoiseTunnel)",
    references=("Smilkov et al. 2017", "001: smoothflow"),
    imports=("captum.attr",),
)
def smoothgrad(
    model, x: torch.Tensor, target: Target, samples: int = 16, sigma: float = 0.15, seed: int = 0
) -> Attribution:
    """x [1,T,C,H,W] -> spatial: mean over ``samples`` noisy clips x + N(0, s^2), s = sigma * (max x - min x),
    of the signed gradient, summed over C [T,H,W]; temporal: mean |spatial| per frame."""
    from captum.attr import NoiseTunnel, Saliency

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
    card=MethodCard(
        computes=(
            "(x − x′) times the gradient averaged along the straight path from a baseline x′ (black, "
            "blurred or the mean frame) to the clip x, at `steps` points; the attributions add up to "
            "score(x) − score(x′) (completeness)."
        ),
        needs="Gradients through the whole model.",
        cannot_show=(
            "Anything about inputs off the path: the answer is relative to the baseline chosen, and a "
            "pixel equal to the baseline gets zero."
        ),
        failures=(
            (
                "Another baseline gives another map (a black baseline gives black pixels zero; a blurred "
                "one favours edges)."
            ),
            "Too few steps break completeness: the meta's completeness gap says how far.",
            (
                "It multiplies by x − x′, so part of the map follows the image itself; on several zoo "
                "models its maps keep much of their structure after the weights are randomised: read it "
                "beside the sanity result."
            ),
        ),
        cost="`steps` forward and backward passes (32 by default).",
    ),
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
    imports=("captum.attr",),
)
def integrated_gradients(
    model, x: torch.Tensor, target: Target, steps: int = 32, baseline: str = "black", blur_sigma: float = 5.0
) -> Attribution:
    """x [1,T,C,H,W] -> spatial: (x - x') * mean gradient on the path from the baseline x' to x, summed
    over C [T,H,W]; temporal: its sum per frame.  meta: score, baseline_score and the convergence
    delta (sum of the attributions minus the score difference; Gauss-Legendre quadrature)."""
    from captum.attr import IntegratedGradients

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
