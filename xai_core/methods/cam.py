"""Class activation maps for video: Grad-CAM, Grad-CAM++ and guided Grad-CAM, per frame on a 2D
backbone or on a 3D conv layer.

For a layer with activations A (channels k, positions p: (y, x) per frame, or (t, y, x) for a 3D
layer) and g = dS/dA, the gradient of the explained score S (``TargetScore``):

* Grad-CAM (Selvaraju et al.):  w_k = mean_p g_kp
* Grad-CAM++ (Chattopadhay et al., eq. 19, with the exponential output Y = exp(S) whose higher
  derivatives are powers of g for a piecewise-linear network, as pytorch-grad-cam computes it):
      alpha_kp = g_kp^2 / (2 g_kp^2 + (sum_q A_kq) g_kp^3),    w_k = sum_p alpha_kp relu(g_kp)
  The common factor exp(S) of the paper's weights is left out (a positive constant per clip), as
  in pytorch-grad-cam.  For g > 0 the term is alpha relu(g) = g / (2 + g sum_q A_kq), computed in
  that form (no epsilon; pytorch-grad-cam adds 1e-6 to the denominator); positions with g <= 0,
  or with 2 + g sum_q A_kq <= 0 (only possible where the activations sum to a negative number),
  contribute nothing.
* map M = sum_k w_k A_k, kept signed (ReLU is a rendering choice).

A per-frame 2D layer sees the B*T frames as a batch, so each frame gets its own weights and sums.
A 3D layer's map has the layer's coarse time resolution and is upsampled in time and space.
Guided Grad-CAM multiplies guided backpropagation (Captum's ``GuidedBackprop`` on the 5-D clip)
by Grad-CAM rectified at the layer's resolution and then upsampled (the paper's order, and
Captum's ``GuidedGradCam``'s, which cannot itself upsample a per-frame layer's [B*T,1,h,w] map to a
5-D clip).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch.nn import functional as F

from ..explanation import Attribution, Target
from .machinery.hooks import capture_output
from .machinery.maps import frame_importance
from .machinery.registry import MethodCard, MethodError, Param, register
from .machinery.scoring import TargetScore, gradient_input

CamFormula = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def layer_activation_and_gradient(model, x: torch.Tensor, target: Target, layer) -> tuple[torch.Tensor, torch.Tensor]:
    """Activation of ``layer`` and the gradient of the target score w.r.t. it (same shape).

    The input is not made to require a gradient unless the layer's output would otherwise have
    none (a model with frozen weights): tracking the input costs the zoo's cnn_transformer about
    a third more time, in the motion channels it computes from the clip."""
    module = model.layer(layer)
    x = x.detach()
    for track_input in (False, True):
        if track_input:
            x = x.clone().requires_grad_(True)
        with torch.enable_grad(), capture_output(module) as captured:
            output = TargetScore(model, target)(x)  # [B,1]
            if captured.output is None:
                raise MethodError(f"layer {layer or model.cam_layer_name!r} was not used in the forward pass")
            if not captured.output.requires_grad:
                continue
            score = output.sum()
            (grad,) = torch.autograd.grad(score, captured.output)
            return captured.output.detach(), grad.detach()
    raise MethodError(f"layer {layer or model.cam_layer_name!r} does not depend on the input")


def cam_from(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM map of the layer: [N,C,h,w] -> [N,h,w] (per frame) or [B,C,t,h,w] -> [B,t,h,w]."""
    weights = gradient.mean(dim=tuple(range(2, gradient.dim())), keepdim=True)
    return (weights * activation).sum(1)


def cam_pp_from(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ map of the layer (formula in the module docstring): [N,C,h,w] -> [N,h,w] or
    [B,C,t,h,w] -> [B,t,h,w]."""
    positions = tuple(range(2, gradient.dim()))
    sums = activation.sum(dim=positions, keepdim=True)  # sum_q A_kq
    denominator = 2 + gradient * sums
    use = (gradient > 0) & (denominator > 0)
    terms = torch.where(use, gradient / torch.where(use, denominator, 1.0), 0.0)  # alpha * relu(g)
    weights = terms.sum(dim=positions, keepdim=True)
    return (weights * activation).sum(1)


def upsample_cam(cam: torch.Tensor, frames: int, size: tuple[int, int]) -> torch.Tensor:
    """Low-resolution map -> [T,H,W]: bilinear per frame ([T,h,w]) or trilinear ([t,h,w], t != T)."""
    if cam.shape[0] == frames:
        return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return F.interpolate(cam[None, None], size=(frames, *size), mode="trilinear", align_corners=False)[0, 0]


def layer_cam(
    model, x: torch.Tensor, target: Target, layer, combine: CamFormula | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's class activation map at its own resolution, and upsampled to the clip [T,H,W].
    ``combine(activation, gradient)`` makes the map (default ``cam_from``: Grad-CAM)."""
    combine = combine or cam_from
    _, frames, _, height, width = x.shape
    activation, gradient = layer_activation_and_gradient(model, x, target, layer)
    if activation.dim() == 4 and activation.shape[0] == x.shape[0] * frames:
        cam = combine(activation, gradient)  # [T,h,w]: one map per frame
    elif activation.dim() == 5 and activation.shape[0] == x.shape[0]:
        cam = combine(activation, gradient)[0]  # [t,h,w]
    else:
        raise MethodError(
            f"Grad-CAM needs a 2D conv layer applied per frame or a 3D conv layer; layer "
            f"{layer or model.cam_layer_name!r} gives activations of shape {tuple(activation.shape)}"
        )
    return cam, upsample_cam(cam, frames, (height, width))


LAYER = Param("layer", "layer", None, help="conv layer to explain (default: the model's last conv block)")


@register(
    "gradcam",
    card=MethodCard(
        computes=(
            "Σₖ αₖ Aᵏ: the activation maps Aᵏ of a convolutional layer weighted by αₖ, the mean gradient "
            "of the score over map k, then upsampled to the frame; per frame for a per-frame CNN, over "
            "space and time for a 3D CNN. The map is kept signed; the paper applies a ReLU, which the "
            "positive view shows."
        ),
        needs=(
            "A convolutional layer (the last one with spatial extent, found by probing, or the one named in `layer`)."
        ),
        cannot_show=(
            "Detail finer than the layer's grid; for a per-frame model, how the temporal part weighs the frames."
        ),
        failures=(
            ("Coarse: the last layer of a small network has a grid of a few cells, so the map is blobs."),
            "Another layer gives another map; an early layer mostly shows edges.",
            (
                "A model with a fixed mask or gate in its architecture passes localisation tests with any"
                " weights: the sanity check tells such maps apart."
            ),
        ),
        cost="One forward and one backward pass.",
    ),
    family="spatial",
    requires=("cam_layer",),
    params=(LAYER,),
    description="Grad-CAM: gradient-weighted activations of a conv layer, per frame or in 3D",
    references=("Selvaraju et al. 2017", "003: Grad-CAM for video and regression"),
)
def gradcam(model, x: torch.Tensor, target: Target, layer: str | None = None) -> Attribution:
    """x [1,T,C,H,W] -> spatial [T,H,W] (signed), temporal [T]; extras: the map at the layer's
    resolution (``cam_lowres``, [T,h,w] or [t,h,w])."""
    cam, spatial = layer_cam(model, x, target, layer)
    return Attribution(
        params={"layer": layer or model.cam_layer_name},
        spatial=spatial.cpu().numpy(),
        temporal=frame_importance(spatial).cpu().numpy(),
        extras={"cam_lowres": cam.cpu().numpy()},
    )


@register(
    "gradcam_pp",
    card=MethodCard(
        computes=(
            "Grad-CAM with per-position weights built from positive second- and third-order gradient "
            "terms (in the exponential-score approximation), meant to cover several instances of the "
            "evidence."
        ),
        needs="A convolutional layer, as Grad-CAM.",
        cannot_show=(
            "As Grad-CAM: nothing finer than the layer's grid; only positive gradients enter its weights,"
            " so evidence against the target does not."
        ),
        failures=(
            (
                "Its weights come from the exponential-score approximation, not from the network's own "
                "second derivatives, and positions where 2 + g·ΣA ≤ 0 (a negative activation sum) are "
                "dropped."
            ),
            (
                "Like Grad-CAM, it can look right on a model whose architecture fixes where to look: "
                "check the sanity result."
            ),
        ),
        cost="One forward and one backward pass.",
    ),
    family="spatial",
    requires=("cam_layer",),
    params=(LAYER,),
    description="Grad-CAM++: activations weighted by positive gradients with per-position weights, per frame or in 3D",
    references=("Chattopadhay et al. 2018", "003: Grad-CAM for video and regression"),
)
def gradcam_pp(model, x: torch.Tensor, target: Target, layer: str | None = None) -> Attribution:
    """x [1,T,C,H,W] -> spatial [T,H,W] (signed, upsampled like Grad-CAM), temporal [T] (mean positive
    evidence per frame); extras: ``cam_lowres`` at the layer's resolution."""
    cam, spatial = layer_cam(model, x, target, layer, combine=cam_pp_from)
    return Attribution(
        params={"layer": layer or model.cam_layer_name},
        spatial=spatial.cpu().numpy(),
        temporal=frame_importance(spatial).cpu().numpy(),
        extras={"cam_lowres": cam.cpu().numpy()},
    )


def guided_backprop(model, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Captum's guided backpropagation (ReLU modules pass only positive gradients) of the target score:
    x [1,T,C,H,W] -> [1,T,C,H,W].  Captum clones each ReLU's input in a forward pre-hook, so the
    zoo's in-place ReLUs are safe; its hooks are removed when it returns."""
    from captum.attr import GuidedBackprop  # captum imports matplotlib (0.7 s): only when a method that uses it runs

    forward = TargetScore(model, target)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        return GuidedBackprop(forward).attribute(gradient_input(x), target=forward.captum_target).detach()


@register(
    "guided_gradcam",
    card=MethodCard(
        computes=(
            "Guided backpropagation (only positive gradients passed back through positive activations) "
            "multiplied by the upsampled Grad-CAM map."
        ),
        needs="A convolutional layer for the Grad-CAM factor, and ReLU activations for the guided pass.",
        cannot_show=(
            "Which edges matter to the model more than others: the guided factor mostly reconstructs the image."
        ),
        failures=(
            (
                "Guided backpropagation largely reconstructs the input's edges and changes little when "
                "the top layers are randomised (Adebayo et al. 2018), so the product can pass for an "
                "explanation of a model that learned nothing."
            ),
            "Most of what the map owes to the learned weights comes through its Grad-CAM factor.",
        ),
        cost="Two forward and backward passes.",
    ),
    family="spatial",
    reading="magnitude",
    requires=("cam_layer",),
    params=(LAYER,),
    description="Guided Grad-CAM: guided backpropagation times the rectified, upsampled Grad-CAM",
    references=("Selvaraju et al. 2017", "Springenberg et al. 2015"),
    imports=("captum.attr",),
)
def guided_gradcam(model, x: torch.Tensor, target: Target, layer: str | None = None) -> Attribution:
    """x [1,T,C,H,W] -> spatial [T,H,W] = (guided backprop summed over colour channels) * (Grad-CAM
    rectified at the layer, then upsampled to [T,H,W] like Grad-CAM, as in Selvaraju et al.);
    temporal [T]: mean |spatial| per frame; extras: ``cam_lowres`` (signed Grad-CAM at the layer)
    and ``guided_backprop`` [T,H,W] (channel sum)."""
    cam, _ = layer_cam(model, x, target, layer)
    rectified = upsample_cam(cam.clamp(min=0), x.shape[1], tuple(x.shape[-2:]))  # ReLU at the layer, then upsampled
    guided = guided_backprop(model, x, target)[0].sum(1)  # [T,H,W]
    spatial = guided * rectified
    return Attribution(
        params={"layer": layer or model.cam_layer_name},
        spatial=spatial.cpu().numpy(),
        temporal=spatial.abs().mean((1, 2)).cpu().numpy(),
        extras={"cam_lowres": cam.cpu().numpy(), "guided_backprop": guided.cpu().numpy()},
    )
