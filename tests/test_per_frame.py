"""Image classifiers over video (issue 20, point 2): ``frames:SPEC`` runs an image network on
every frame, the clip's logits the mean of the frames'; checked against the obvious loop, for a
torchvision name, a user's factory, a TorchScript file and the real ImageNet MobileNetV2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file

import xai_core
from xai_core.cli import main
from xai_core.models.base import ModelError

ROOT = Path(__file__).resolve().parents[1]
BYO = ROOT / "tests" / "byo_models.py"
MOBILENET = ROOT.parent / "shared" / "models" / "mobilenet_v2_imagenet"
SMALL = {"frames": 6, "height": 32, "width": 32}


def frame_by_frame(image_net, model, clip) -> torch.Tensor:
    """The reference: each preprocessed frame through the image network alone, logits averaged."""
    x = model.preprocess(clip)[0]
    with torch.no_grad():
        return torch.stack([image_net(frame[None])[0] for frame in x]).mean(0)


def test_a_factory_image_net_over_frames_is_the_mean_of_its_frames(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("byo", BYO)
    byo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(byo)
    torch.manual_seed(0)
    reference = byo.CifarCNN(3).eval()
    save_file(reference.state_dict(), tmp_path / "cifar.safetensors")
    model = xai_core.load_model(f"frames:{BYO}:CifarCNN", "cpu", weights=tmp_path / "cifar.safetensors",
                                labels=["a", "b", "c"], config={"num_classes": 3}, **SMALL)  # fmt: skip
    assert model.layout == "BTCHW" and model.cam_layer_name == "net.image_net.conv2"
    clip = xai_core.load_video("shapes:4", model=model)
    with torch.no_grad():
        out = model(model.preprocess(clip))[0]
        frames = model.net.frame_logits(model.preprocess(clip))[0]
    torch.testing.assert_close(out, frame_by_frame(reference, model, clip), rtol=1e-5, atol=1e-6)
    assert frames.shape == (6, 3)
    expl = xai_core.explain(model, clip, "gradcam")
    assert expl.spatial.shape == (6, 32, 32) and np.isfinite(expl.spatial).all()


def test_a_torchvision_name_and_a_torchscript_file(tmp_path):
    model = xai_core.load_model("frames:resnet18", "cpu", labels=["x", "y"], frames=4, height=64, width=64)
    assert model.info.notes["weights"] and model.cam_layer_name == "net.image_net.layer4.1.conv2"  # 2x2 at 64 px
    assert model.input_spec.mean == (0.485, 0.456, 0.406)  # ImageNet's normalisation by default
    torch.manual_seed(1)
    net = torchvision.models.resnet18(num_classes=2).eval()
    scripted = torch.jit.script(net)
    scripted.save(str(tmp_path / "net.ts.pt"))
    model = xai_core.load_model(f"frames:{tmp_path / 'net.ts.pt'}", "cpu", **SMALL)
    clip = xai_core.load_video("shapes:5", model=model)
    with torch.no_grad():
        torch.testing.assert_close(model(model.preprocess(clip))[0], frame_by_frame(net, model, clip), rtol=1e-4,
                                   atol=1e-5)  # fmt: skip
    assert xai_core.explain(model, clip, "saliency").spatial.shape == (6, 32, 32)


@pytest.mark.parametrize(
    "spec, statements, message",
    [
        ("frames:not_a_net", {}, "not a torchvision image classifier"),
        ("frames:resnet18", {"layout": "BCTHW"}, "runs frame by frame"),
    ],
)
def test_bad_requests_are_said(spec, statements, message):
    with pytest.raises(ModelError, match=message):
        xai_core.load_model(spec, "cpu", **statements)


@pytest.mark.skipif(not MOBILENET.is_dir(), reason="../shared/models is not beside the checkout")
def test_the_imagenet_mobilenet_over_a_real_clip(capsys):
    weights, labels = MOBILENET / "mobilenet_v2_imagenet.safetensors", MOBILENET / "labels.txt"
    model = xai_core.load_model("frames:mobilenet_v2", "cpu", weights=weights, labels_file=labels, frames=4)
    assert len(model.labels) == 1000 and "crane (class 134)" in model.labels and "crane (class 517)" in model.labels
    reference = torchvision.models.mobilenet_v2()
    from safetensors.torch import load_file

    reference.load_state_dict(load_file(weights))
    reference.eval()
    path = xai_core.video.sample_clips()["moviepy_chaplin.mp4"]
    clip = xai_core.load_video(str(path), model=model)
    with torch.no_grad():
        torch.testing.assert_close(model(model.preprocess(clip))[0], frame_by_frame(reference, model, clip),
                                   rtol=1e-4, atol=1e-4)  # fmt: skip
    prediction = xai_core.predict(model, clip)
    assert prediction["label"] == model.labels[int(frame_by_frame(reference, model, clip).argmax())]
    expl = xai_core.explain(model, clip, "gradcam")
    assert expl.spatial.shape == (4, 224, 224) and expl.spatial.max() > 0
    code = main(["predict", "--model", "frames:mobilenet_v2", "--weights", str(weights), "--labels", str(labels),
                 "--frames", "4", "--video", str(path)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and prediction["label"] in out, err


def test_each_frames_probabilities_for_the_prediction_strip():
    model = xai_core.load_model("frames:resnet18", "cpu", labels=["x", "y", "z"], frames=4, height=64, width=64)
    clip = xai_core.load_video("shapes:6", model=model)
    probabilities = xai_core.api.frame_probabilities(model, clip)
    with torch.no_grad():
        logits = torch.stack([model.net.image_net(f[None])[0] for f in model.preprocess(clip)[0]])
    np.testing.assert_allclose(probabilities, torch.softmax(logits, -1).numpy(), rtol=1e-5, atol=1e-6)
    assert probabilities.shape == (4, 3) and np.allclose(probabilities.sum(1), 1)
    zoo_like = xai_core.load_model("cnn_lstm", "cpu", labels=["a", "b"], frames=4, height=64, width=64)
    assert xai_core.api.frame_probabilities(zoo_like, xai_core.load_video("shapes:6", model=zoo_like)) is None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_explain_page_draws_the_per_frame_prediction_strip(app_zoo):
    import json

    from streamlit.testing.v1 import AppTest

    request = {"spec": "frames:resnet18", "kwargs": {"labels": ["x", "y", "z"], "frames": 4, "height": 64, "width": 64},
               "name": "mine"}  # fmt: skip
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["user_models"] = {"mine": json.dumps(request, sort_keys=True)}
    at.session_state["model_name"] = "mine"
    at.switch_page("pages/explain.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "frame_predictions" in [c.proto.id.split("-")[-1] for c in at.get("plotly_chart")]
    assert any(c.value.startswith("The clip's prediction is the mean of the frames' logits") for c in at.caption)
    assert any(img.proto.imgs[0].caption.startswith("gradcam for") for img in at.get("image"))


def test_a_refusal_says_what_would_make_the_method_available():
    """Issue 20, point 7: a user's network without attention hears what to add for it."""
    from xai_core.methods.machinery.registry import get_method

    model = xai_core.load_model(f"{BYO}:Tiny3D", "cpu", labels=["a", "b", "c"], frames=8, height=32, width=32)
    said = get_method("attention_pool").unavailable_reason(model)
    assert said.startswith("attention_pool needs a model with attention pooling, temporal attention; Tiny3D has none")
    assert "`attention_pool = True`" in said and "`temporal_attention(x [B,T,C,H,W]) -> [B,T]`" in said
    small = xai_core.load_model("frames:resnet18", "cpu", labels=["a", "b"], frames=4, height=32, width=32)
    said = get_method("gradcam").unavailable_reason(small)
    assert "state one with cam_layer= (--cam-layer)" in said and "offers it with" not in said  # the note says it
