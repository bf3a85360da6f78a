"""Grad-CAM (Selvaraju et al.) for video: per frame on a 2D backbone, or on a 3D conv layer.

For a layer with activations A and the target score y:
  weights  w_k = mean over the layer's spatial (and, for 3D layers, temporal) positions of dy/dA_k
  map      M   = sum_k w_k A_k                      (kept signed; ReLU is a rendering choice)
A per-frame 2D layer sees the B*T frames as a batch, so each frame gets its own weights.  A 3D
layer's map has the layer's coarse time resolution and is upsampled in time and space.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..explanation import Explanation, Target
from .hooks import capture_output
from .registry import MethodError, Param, register


def frame_importance(spatial: torch.Tensor) -> torch.Tensor:
    """[T,H,W] signed map -> [T] frame importance: the mean positive evidence in each frame."""
    return spatial.clamp(min=0).mean(dim=(1, 2))


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
            output = model(x)
            if captured.output is None:
                raise MethodError(f"layer {layer or model.cam_layer_name!r} was not used in the forward pass")
            if not captured.output.requires_grad:
                continue
            score = target.score(output).sum()
            (grad,) = torch.autograd.grad(score, captured.output)
            return captured.output.detach(), grad.detach()
    raise MethodError(f"layer {layer or model.cam_layer_name!r} does not depend on the input")


def cam_from(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM map of the layer: [N,C,h,w] -> [N,h,w] (per frame) or [B,C,t,h,w] -> [B,t,h,w]."""
    weights = gradient.mean(dim=tuple(range(2, gradient.dim())), keepdim=True)
    return (weights * activation).sum(1)


def upsample_cam(cam: torch.Tensor, frames: int, size: tuple[int, int]) -> torch.Tensor:
    """Low-resolution map -> [T,H,W]: bilinear per frame ([T,h,w]) or trilinear ([t,h,w], t != T)."""
    if cam.shape[0] == frames:
        return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return F.interpolate(cam[None, None], size=(frames, *size), mode="trilinear", align_corners=False)[0, 0]


def layer_cam(model, x: torch.Tensor, target: Target, layer) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's Grad-CAM at its own resolution, and upsampled to the clip [T,H,W]."""
    _, frames, _, height, width = x.shape
    activation, gradient = layer_activation_and_gradient(model, x, target, layer)
    if activation.dim() == 4 and activation.shape[0] == x.shape[0] * frames:
        cam = cam_from(activation, gradient)  # [T,h,w]: one map per frame
    elif activation.dim() == 5 and activation.shape[0] == x.shape[0]:
        cam = cam_from(activation, gradient)[0]  # [t,h,w]
    else:
        raise MethodError(
            f"Grad-CAM needs a 2D conv layer applied per frame or a 3D conv layer; layer "
            f"{layer or model.cam_layer_name!r} gives activations of shape {tuple(activation.shape)}"
        )
    return cam, upsample_cam(cam, frames, (height, width))


LAYER = Param("layer", "layer", None, help="conv layer to explain (default: the model's last conv block)")


@register(
    "gradcam",
    family="spatial",
    requires=("cam_layer",),
    params=(LAYER,),
    description="Grad-CAM: gradient-weighted activations of a conv layer, per frame or in 3D",
    references=("Selvaraju et al. 2017", "003: Grad-CAM for video and regression"),
)
def gradcam(model, x: torch.Tensor, target: Target, layer: str | None = None) -> Explanation:
    """x [1,T,C,H,W] -> spatial [T,H,W] (signed), temporal [T]; extras: the map at the layer's
    resolution (``cam_lowres``, [T,h,w] or [t,h,w])."""
    cam, spatial = layer_cam(model, x, target, layer)
    return Explanation(
        method="gradcam",
        params={"layer": layer or model.cam_layer_name},
        target=target.to_dict(),
        task=model.task,
        prediction={},
        spatial=spatial.cpu().numpy(),
        temporal=frame_importance(spatial).cpu().numpy(),
        extras={"cam_lowres": cam.cpu().numpy()},
    )
