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
from xai_core.methods.cam import frame_importance
from xai_core.methods.hooks import count_hooks
from xai_core.methods.registry import MethodError
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
