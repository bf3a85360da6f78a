"""Grad-CAM against Captum's LayerGradCam on the same layer, per frame and in 3D."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam
from conftest import SMALL_SPEC, small_input, small_model
from torch.nn import functional as F

from xai_core import explain
from xai_core.explanation import Target
from xai_core.methods.machinery.hooks import count_hooks
from xai_core.methods.machinery.maps import frame_importance
from xai_core.methods.machinery.registry import MethodError
from xai_core.models.base import InputSpec
from xai_core.models.registry import build_model


def captum_cam(forward, layer, x, target=None) -> torch.Tensor:
    """Captum's signed Grad-CAM at the layer's resolution (channel dim squeezed)."""
    attr = LayerGradCam(forward, layer).attribute(x, target=target, relu_attributions=False)
    return attr.detach()[:, 0]


@pytest.mark.parametrize("arch", ["cnn_transformer", "cnn_lstm", "convlstm"])
@pytest.mark.parametrize("target", [0, 2])
def test_per_frame_gradcam_matches_captum(arch, target):
    model, x = small_model(arch), small_input()
    expl = explain(model, x, "gradcam", target=target)
    reference = captum_cam(model, model.layer(), x, target=target)  # [T,h,w]: frames are the layer's batch
    ours = torch.from_numpy(expl.extras["cam_lowres"])
    cells = 8 if arch == "convlstm" else 16  # 64x64 input: 8-pixel cells (ConvLSTM) or 4-pixel cells
    assert ours.shape == reference.shape == (SMALL_SPEC.frames, cells, cells)
    assert torch.allclose(ours, reference, atol=1e-6, rtol=1e-4)
    assert expl.spatial.shape == (SMALL_SPEC.frames, SMALL_SPEC.height, SMALL_SPEC.width)
    upsampled = F.interpolate(reference[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    assert np.allclose(expl.spatial, upsampled.numpy(), atol=1e-5)


@pytest.mark.parametrize("arch", ["r3d", "r3d_18"])
def test_3d_gradcam_matches_captum_and_is_upsampled_in_time(arch):
    model = build_model(arch, labels=["a", "b", "c"], input_spec=InputSpec(frames=16, height=64, width=64)).eval()
    x = small_input(spec=model.input_spec)
    expl = explain(model, x, "gradcam", target=1)
    reference = captum_cam(lambda v: model.net(v), model.layer(), x.transpose(1, 2), target=1)[0]  # [t,h,w]
    ours = torch.from_numpy(expl.extras["cam_lowres"])
    assert ours.shape == reference.shape and ours.shape[0] < 16  # coarse in time
    assert torch.allclose(ours, reference, atol=1e-6, rtol=1e-4)
    expected = F.interpolate(reference[None, None], size=(16, 64, 64), mode="trilinear", align_corners=False)[0, 0]
    assert expl.spatial.shape == (16, 64, 64)
    assert np.allclose(expl.spatial, expected.numpy(), atol=1e-5)


def test_regression_targets_output_and_reference():
    model, x = small_model("cnn_transformer", task="regression"), small_input()
    out = explain(model, x, "gradcam")  # the output itself
    ref_out = captum_cam(model, model.layer(), x, target=None)
    assert torch.allclose(torch.from_numpy(out.extras["cam_lowres"]), ref_out, atol=1e-6, rtol=1e-4)
    assert out.target["kind"] == "output"

    value = 40.0
    neg_sq_error = explain(model, x, "gradcam", target=f"ref={value}")
    reference = captum_cam(lambda v: -((model(v) - value) ** 2), model.layer(), x, target=None)
    assert torch.allclose(torch.from_numpy(neg_sq_error.extras["cam_lowres"]), reference, atol=1e-5, rtol=1e-4)
    assert neg_sq_error.target == {"kind": "reference", "index": None, "value": 40.0, "label": "angle"}
    # d(-(y-r)^2)/dA = -2 (y - r) dy/dA: the two maps differ by exactly that factor
    with torch.no_grad():
        y = model(x).item()
    assert np.allclose(
        neg_sq_error.extras["cam_lowres"], -2 * (y - value) * out.extras["cam_lowres"], rtol=1e-3, atol=1e-6
    )


def test_maps_are_signed_and_not_rescaled():
    model, x = small_model("cnn_lstm"), small_input()
    expl = explain(model, x, "gradcam", target=1)
    assert (expl.spatial < 0).any() and (expl.spatial > 0).any()
    assert not np.isclose(np.abs(expl.spatial).max(), 1.0)


def test_other_classes_give_other_maps_and_default_is_predicted():
    model, x = small_model("cnn_transformer"), small_input()
    with torch.no_grad():
        predicted = int(model(x).argmax())
    default = explain(model, x, "gradcam")
    assert default.target["index"] == predicted and default.prediction["index"] == predicted
    other = explain(model, x, "gradcam", target=(predicted + 1) % 3)
    assert not np.allclose(default.spatial, other.spatial)
    by_label = explain(model, x, "gradcam", target=model.labels[predicted])
    assert np.array_equal(by_label.spatial, default.spatial)


def test_frame_importance_is_mean_positive_evidence():
    spatial = torch.tensor([[[1.0, -3.0], [0.0, 3.0]], [[-1.0, -1.0], [-1.0, -1.0]]])
    assert torch.allclose(frame_importance(spatial), torch.tensor([1.0, 0.0]))
    model, x = small_model("r3d"), small_input()
    expl = explain(model, x, "gradcam")
    assert np.allclose(expl.temporal, np.maximum(expl.spatial, 0).mean((1, 2)), atol=1e-7)


@pytest.mark.parametrize("arch", ["cnn_transformer", "r3d"])
def test_no_hooks_left_and_mode_restored(arch):
    model = small_model(arch).train()
    before = count_hooks(model)
    explain(model, small_input(), "gradcam")
    assert count_hooks(model) == before == 0
    assert model.training  # explain() ran in eval mode and restored the mode


def test_hooks_removed_even_when_the_method_fails():
    model = small_model("cnn_lstm")
    with pytest.raises(MethodError):
        explain(model, small_input(), "gradcam", layer="net.head.0")  # a Linear: not a conv map
    assert count_hooks(model) == 0


def test_layer_choice():
    model, x = small_model("cnn_transformer"), small_input()
    early = explain(model, x, "gradcam", layer="net.frame_encoder.backbone.features.1")
    assert early.extras["cam_lowres"].shape == (8, 16, 16) and early.spatial.shape == (8, 64, 64)
    assert early.params["layer"] == "net.frame_encoder.backbone.features.1"
    with pytest.raises(Exception, match="no layer 'net.nothing'"):
        explain(model, x, "gradcam", layer="net.nothing")


def test_target_errors():
    model, x = small_model("cnn_transformer"), small_input()
    with pytest.raises(ValueError, match="out of range"):
        explain(model, x, "gradcam", target=7)
    with pytest.raises(ValueError, match="neither a class index"):
        explain(model, x, "gradcam", target="hexagon")
    reg = small_model("cnn_lstm", task="regression")
    with pytest.raises(ValueError, match="'output' or 'ref=VALUE'"):
        explain(reg, x, "gradcam", target="ref=abc")
    assert Target("class", 1, label="b").score(torch.tensor([[1.0, 5.0]])).item() == 5.0


def test_a_model_with_frozen_weights_gets_the_same_map():
    """The layer's gradient needs no input gradient unless the weights are frozen; then the input
    carries it, and the map is the same."""
    model, x = small_model("cnn_transformer"), small_input()
    trainable = explain(model, x, "gradcam", target=1).extras["cam_lowres"]
    for p in model.parameters():
        p.requires_grad_(False)
    frozen = explain(model, x, "gradcam", target=1).extras["cam_lowres"]
    np.testing.assert_allclose(frozen, trainable, rtol=1e-5, atol=1e-8)
    assert np.abs(trainable).max() > 0 and count_hooks(model) == 0


# ---------------------------------------------------------------------------- Grad-CAM++, guided Grad-CAM

CAM_METHODS = ["gradcam_pp", "guided_gradcam"]


def layer_activation_and_gradient_by_hand(forward, layer, x, score) -> tuple[np.ndarray, np.ndarray]:
    """A forward hook of the test's own; activation and d score / d activation, float64."""
    store = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
    try:
        value = score(forward(x)).sum()
        (grad,) = torch.autograd.grad(value, store["a"])
    finally:
        handle.remove()
    return store["a"].detach().double().numpy(), grad.double().numpy()


def gradcam_pp_by_loops(activation: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Chattopadhay et al. eq. 19, one channel and one position at a time: alpha = g^2 / (2 g^2 +
    sum(A) g^3), w = sum alpha relu(g), map = sum_k w_k A_k.  [N,C,*pos] -> [N,*pos]."""
    cam = np.zeros((activation.shape[0], *activation.shape[2:]))
    for n in range(activation.shape[0]):
        for k in range(activation.shape[1]):
            a, g = activation[n, k], gradient[n, k]
            total = a.sum()
            weight = 0.0
            for g_p in g[g > 0]:  # relu(g) is 0 elsewhere
                weight += g_p**2 / (2 * g_p**2 + total * g_p**3) * g_p
            cam[n] += weight * a
    return cam


@pytest.mark.parametrize(
    "arch, task, target",
    [("cnn_transformer", "classification", 2), ("r3d", "classification", 0), ("cnn_lstm", "regression", "ref=90")],
)
def test_gradcam_pp_matches_a_slow_reference(arch, task, target):
    model, x = small_model(arch, task=task), small_input()
    expl = explain(model, x, "gradcam_pp", target=target)
    if task == "regression":
        score = lambda out: -((out[:, 0] - 90.0) ** 2)  # noqa: E731
    else:
        score = lambda out: out[:, target]  # noqa: E731
    activation, gradient = layer_activation_and_gradient_by_hand(model, model.layer(), x, score)
    reference = gradcam_pp_by_loops(activation, gradient)
    if arch == "r3d":
        reference = reference[0]  # [t,h,w] of the one clip
    ours = expl.extras["cam_lowres"]
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max())
    expected = torch.from_numpy(reference).float()
    if arch == "r3d":
        expected = F.interpolate(expected[None, None], size=(8, 64, 64), mode="trilinear", align_corners=False)[0, 0]
    else:
        expected = F.interpolate(expected[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(expl.spatial, expected.numpy(), rtol=1e-4, atol=1e-5 * np.abs(reference).max())
    np.testing.assert_allclose(expl.temporal, np.maximum(expl.spatial, 0).mean((1, 2)), rtol=1e-5, atol=1e-12)
    assert not np.allclose(ours, explain(model, x, "gradcam", target=target).extras["cam_lowres"], rtol=0.05)


@pytest.mark.parametrize("arch", ["cnn_transformer", "r3d"])
def test_gradcam_pp_matches_pytorch_grad_cam(arch):
    """pytorch-grad-cam's GradCAMPlusPlus weights on its own captured activations and gradients.  It
    adds 1e-6 to the alpha denominator, so the outputs are scaled up (x 1e4) to make g^2 >> 1e-6."""
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, x = small_model(arch, output_scale=1e4), small_input()
    expl = explain(model, x, "gradcam_pp", target=1)
    net, inputs = (model.net, x.transpose(1, 2)) if arch == "r3d" else (model, x)
    cam = pgc.GradCAMPlusPlus(net, target_layers=[model.layer()])
    try:
        outputs = cam.activations_and_grads(inputs)
        sum(ClassifierOutputTarget(1)(out) for out in outputs).backward()
        activation = cam.activations_and_grads.activations[0].numpy()
        gradient = cam.activations_and_grads.gradients[0].numpy()
        reference = cam.get_cam_image(inputs, model.layer(), None, activation, gradient)  # signed, layer resolution
    finally:
        cam.activations_and_grads.release()
        model.zero_grad(set_to_none=True)
    if arch == "r3d":
        reference = reference[0]
    assert count_hooks(model) == 0 and reference.shape == expl.extras["cam_lowres"].shape
    np.testing.assert_allclose(expl.extras["cam_lowres"], reference, rtol=1e-3, atol=1e-4 * np.abs(reference).max())


class GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients, and only where the input was positive."""

    @staticmethod
    def forward(ctx, x):
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad.clamp(min=0) * (out > 0)


class GuidedReLUModule(torch.nn.Module):
    def forward(self, x):
        return GuidedReLU.apply(x)


def guided_backprop_by_module_swap(model, x, index: int) -> np.ndarray:
    """Guided backprop with every nn.ReLU (in-place ones included) swapped for GuidedReLU in a copy of
    the model: [T,H,W], summed over colour channels."""
    import copy

    guided = copy.deepcopy(model)
    for parent in list(guided.modules()):
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.ReLU):
                setattr(parent, name, GuidedReLUModule())
    inputs = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(guided(inputs)[0, index], inputs)
    return grad[0].sum(1).numpy()


@pytest.mark.parametrize("arch", ["cnn_transformer", "cnn_lstm", "r3d"])
def test_guided_gradcam_matches_captum_and_a_module_swap(arch):
    from captum.attr import GuidedBackprop, GuidedGradCam

    model, x = small_model(arch), small_input()
    expl = explain(model, x, "guided_gradcam", target=1)
    guided = guided_backprop_by_module_swap(model, x, 1)
    np.testing.assert_allclose(expl.extras["guided_backprop"], guided, rtol=1e-4, atol=1e-6 * np.abs(guided).max())
    assert not np.allclose(guided, explain(model, x, "saliency", target=1).spatial, rtol=0.05)  # guided differs

    if arch == "r3d":  # Captum's GuidedGradCam upsamples a 3D layer's map to [T,H,W] itself
        captum = GuidedGradCam(model.net, model.layer()).attribute(
            x.transpose(1, 2).requires_grad_(True), target=1, interpolate_mode="trilinear"
        )
        reference = captum.detach()[0].sum(0).numpy()  # [C,T,H,W] -> [T,H,W]
    else:  # per-frame layer: Captum's GuidedGradCam cannot upsample [T,1,h,w] to a 5-D clip; its two parts can
        gbp = GuidedBackprop(model).attribute(x.clone().requires_grad_(True), target=1).detach()[0].sum(1)
        cam = captum_cam(model, model.layer(), x, target=1).clamp(min=0)
        reference = (
            gbp * F.interpolate(cam[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
        ).numpy()
    assert expl.spatial.shape == reference.shape == (8, 64, 64)
    np.testing.assert_allclose(expl.spatial, reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max())
    np.testing.assert_allclose(expl.temporal, np.abs(expl.spatial).mean((1, 2)), rtol=1e-5)


@pytest.mark.parametrize("arch", ["cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm", "convlstm", "r3d"])
def test_cam_methods_on_every_zoo_architecture(arch):
    for task, target in [("classification", 2), ("regression", "ref=90")]:
        model = small_model(arch, task=task).train()
        for method in CAM_METHODS:
            expl = explain(model, small_input(), method, target=target)
            assert expl.spatial.shape == (8, 64, 64) and expl.temporal.shape == (8,)
            assert np.isfinite(expl.spatial).all() and np.isfinite(expl.temporal).all()
            assert np.abs(expl.spatial).max() > 0 and expl.params["layer"] == model.cam_layer_name
            assert count_hooks(model) == 0 and model.training, (method, task)


def test_cam_methods_take_a_layer_and_clean_up_on_errors():
    model, x = small_model("cnn_transformer"), small_input()
    for method in CAM_METHODS:
        early = explain(model, x, method, layer="net.frame_encoder.backbone.features.1")
        assert early.extras["cam_lowres"].shape == (8, 16, 16)
        with pytest.raises(MethodError):
            explain(model, x, method, layer="net.head.0")
        assert count_hooks(model) == 0
