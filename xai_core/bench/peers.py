"""The peers: libraries that compute the same maps as our methods (Captum, pytorch-grad-cam), on the
same model, clip, target and parameters, so that maps can be compared and times set side by side."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch

from ..explanation import Target
from ..methods.machinery.scoring import TargetScore
from ..models.modes import eval_mode

# Methods no library computes, and why (the report says so beside their times).
NO_PEER = {
    "lrp": "no independent peer: the conv layers' rules are zennit's (composite and canonizers), applied by "
    "ours; the LSTM rules are hand-written and checked against slow references in tests/test_lrp.py",
    "attention_cls": "no peer: it reads the model's own attention weights (no library method does this for "
    "a frame Transformer)",
    "attention_rollout": "no peer: rollout of the model's own attention weights, checked against a slow loop "
    "in tests/test_attention.py",
    "attention_pool": "no peer: the model's own attention-pooling weights",
    "flow_gradient": "no peer: no library differentiates through an optical-flow decomposition; checked in "
    "tests/test_flow.py against the clip's own gradient and finite differences (float64), and against Moving "
    "Shapes' true angles",
    "smoothflow": "no peer: SmoothGrad in the flow decomposition (see flow_gradient)",
    "trajectories": "no peer: flows from OpenCV, the base map from the registered method; tracks and window sums "
    "checked against slow loops in tests/test_trajectories.py",
}


def leaf(x: torch.Tensor) -> torch.Tensor:
    """x [1,T,C,H,W] as a new leaf that requires grad (a peer's input)."""
    return x.detach().clone().requires_grad_(True)


def _channel_sum(attribution: torch.Tensor) -> torch.Tensor:
    """Captum's [1,T,C,H,W] -> [T,H,W]."""
    return attribution.detach()[0].sum(1)


def captum_gradcam(model, x: torch.Tensor, target_index: int | None) -> torch.Tensor:
    """Captum's LayerGradCam on the model's Grad-CAM layer, upsampled like ours -> [T,H,W]."""
    from captum.attr import LayerGradCam

    from ..methods.cam import upsample_cam

    layer = model.layer()
    if model.layout == "BCTHW":
        attr = LayerGradCam(lambda v: model.net(v), layer).attribute(x.transpose(1, 2), target=target_index)
        cam = attr.detach()[0, 0]
    else:
        cam = LayerGradCam(model, layer).attribute(x, target=target_index).detach()[:, 0]
    return upsample_cam(cam, x.shape[1], tuple(x.shape[3:]))


def captum_guided_gradcam(model, x: torch.Tensor, target_index: int) -> torch.Tensor:
    """3D layer: Captum's GuidedGradCam (it upsamples the layer's map to [T,H,W] itself).  Per-frame
    layer: Captum's GuidedGradCam cannot upsample a [T,1,h,w] map to a 5-D clip, so its two parts,
    GuidedBackprop times the rectified LayerGradCam upsampled like ours -> [T,H,W]."""
    from captum.attr import GuidedBackprop, GuidedGradCam, LayerGradCam

    from ..methods.cam import upsample_cam

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        if model.layout == "BCTHW":
            attr = GuidedGradCam(model.net, model.layer()).attribute(
                leaf(x.transpose(1, 2)), target=target_index, interpolate_mode="trilinear"
            )
            return attr.detach()[0].sum(0)  # [C,T,H,W] -> [T,H,W]
        guided = _channel_sum(GuidedBackprop(model).attribute(leaf(x), target=target_index))
    cam = LayerGradCam(model, model.layer()).attribute(x, target=target_index).detach()[:, 0]
    return guided * upsample_cam(cam.clamp(min=0), x.shape[1], tuple(x.shape[3:]))


def grad_cam_plus_plus(model, x: torch.Tensor, target_index: int) -> torch.Tensor:
    """pytorch-grad-cam's GradCAMPlusPlus weights (signed map at the layer, before its ReLU, scaling
    and OpenCV resize) on its own activations and gradients, upsampled like ours -> [T,H,W]."""
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from ..methods.cam import upsample_cam

    net, inputs = (model.net, x.transpose(1, 2)) if model.layout == "BCTHW" else (model, x)
    with eval_mode(model):  # GradCAMPlusPlus puts the network in eval mode; the model's own modes come back
        cam = GradCAMPlusPlus(net, target_layers=[model.layer()])
        try:
            outputs = cam.activations_and_grads(inputs)
            sum(ClassifierOutputTarget(target_index)(out) for out in outputs).backward()
            activation = cam.activations_and_grads.activations[0].numpy()
            gradient = cam.activations_and_grads.gradients[0].numpy()
            low = cam.get_cam_image(inputs, model.layer(), None, activation, gradient)
        finally:
            cam.activations_and_grads.release()
            model.zero_grad(set_to_none=True)
    low = torch.from_numpy(low[0] if model.layout == "BCTHW" else low)
    return upsample_cam(low, x.shape[1], tuple(x.shape[3:]))


def captum_saliency(model, x: torch.Tensor, target_index: int) -> torch.Tensor:
    from captum.attr import Saliency

    return _channel_sum(Saliency(model).attribute(leaf(x), target=target_index, abs=False))


def captum_input_x_gradient(model, x: torch.Tensor, target_index: int) -> torch.Tensor:
    from captum.attr import InputXGradient

    return _channel_sum(InputXGradient(model).attribute(leaf(x), target=target_index))


def captum_smoothgrad(model, x: torch.Tensor, target_index: int, samples: int, sigma: float, seed: int) -> torch.Tensor:
    """NoiseTunnel(Saliency) with the same samples, noise, noise seed and clips per pass as ours."""
    from captum.attr import NoiseTunnel, Saliency

    from ..methods.machinery.smoothing import clips_per_pass

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        attr = NoiseTunnel(Saliency(model)).attribute(
            leaf(x),
            nt_type="smoothgrad",
            nt_samples=samples,
            nt_samples_batch_size=clips_per_pass(x.device),
            stdevs=float(sigma * (x.max() - x.min())),
            target=target_index,
            abs=False,
        )
    return _channel_sum(attr)


def captum_integrated_gradients(
    model, x: torch.Tensor, target_index: int, steps: int, baseline: str, blur_sigma: float
) -> torch.Tensor:
    """IntegratedGradients with the same steps, baseline and internal batch as ours (without the
    convergence delta and the two scores ours also records)."""
    from captum.attr import IntegratedGradients

    from ..methods.machinery.perturbation import baseline_clip
    from ..methods.machinery.smoothing import clips_per_pass

    attr = IntegratedGradients(model).attribute(
        leaf(x),
        baselines=baseline_clip(model, x, baseline, blur_sigma),
        target=target_index,
        n_steps=steps,
        internal_batch_size=clips_per_pass(x.device),
    )
    return _channel_sum(attr)


class Peer(NamedTuple):
    name: str
    fn: Callable  # (model, x, target_index, **params) -> [T,H,W]
    params: tuple[str, ...] = ()  # the method's parameters it takes


def peer_for(method: str, model) -> Peer | None:
    """The library computing the same map as ``method`` on ``model`` (None when there is none)."""
    if method == "gradcam":
        return Peer("Captum LayerGradCam", lambda m, x, i: captum_gradcam(m, x, i))
    if method == "gradcam_pp":
        return Peer("pytorch-grad-cam GradCAMPlusPlus", grad_cam_plus_plus)
    if method == "guided_gradcam":
        name = "Captum GuidedGradCam" if model.layout == "BCTHW" else "Captum GuidedBackprop x LayerGradCam"
        return Peer(name, captum_guided_gradcam)
    if method == "saliency":
        return Peer("Captum Saliency", captum_saliency)
    if method == "input_x_gradient":
        return Peer("Captum InputXGradient", captum_input_x_gradient)
    if method == "smoothgrad":
        return Peer("Captum NoiseTunnel(Saliency)", captum_smoothgrad, ("samples", "sigma", "seed"))
    if method == "integrated_gradients":
        return Peer("Captum IntegratedGradients", captum_integrated_gradients, ("steps", "baseline", "blur_sigma"))
    return None


def captum_occlusion(model, x: torch.Tensor, target: Target, fill: torch.Tensor, window, stride) -> torch.Tensor:
    """Captum's Occlusion on the same windows (all colour channels together) -> [T,H,W]."""
    from captum.attr import Occlusion

    forward = TargetScore(model, target)
    shape, strides = (window[0], 3, window[1], window[2]), (stride[0], 3, stride[1], stride[2])
    with torch.no_grad():
        out = Occlusion(forward).attribute(
            x, sliding_window_shapes=shape, strides=strides, baselines=fill, target=0, perturbations_per_eval=1
        )
    return out[0, :, 0]


def captum_frame_ablation(
    model, x: torch.Tensor, target: Target, fill: torch.Tensor, per_eval: int = 1
) -> torch.Tensor:
    """Captum's FeatureAblation with one feature per frame (``per_eval`` perturbed clips a pass) -> [T]."""
    from captum.attr import FeatureAblation

    forward = TargetScore(model, target)
    frame_ids = torch.arange(x.shape[1]).view(1, -1, 1, 1, 1).expand_as(x)
    with torch.no_grad():
        out = FeatureAblation(forward).attribute(
            x, feature_mask=frame_ids, baselines=fill, target=0, perturbations_per_eval=per_eval
        )
    return out[0, :, 0, 0, 0]
