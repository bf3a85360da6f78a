"""Bring your own model (xai_core.models.external): TorchScript, file.py:factory + weights,
architectures by name + weights; statements, layout and Grad-CAM layer inference, refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import xai_core
from xai_core.cli import main
from xai_core.methods.machinery.hooks import count_hooks
from xai_core.methods.machinery.registry import MethodError
from xai_core.models.base import InputSpec, ModelError
from xai_core.models.external import is_torchscript, make_user_card, save_user_model

HERE = Path(__file__).resolve().parent
BYO = HERE / "byo_models.py"
SIZE = {"frames": 8, "height": 64, "width": 64}
KINETICS = Path(xai_core.__file__).parent / "data" / "samples" / "kinetics400_labels.txt"

sys.path.insert(0, str(HERE))
import byo_models  # noqa: E402  (the same code the factory form imports, built in memory here)


def clip_tensor(seed: int = 1) -> torch.Tensor:
    """A normalised random clip [1,8,3,64,64]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 8, 3, 64, 64, generator=g)


def in_memory(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(3)
    return getattr(byo_models, name)(**kwargs).eval()


def save_weights(net: torch.nn.Module, path: Path) -> Path:
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


# ---------------------------------------------------------------------------- file.py:factory
@pytest.mark.parametrize(
    "factory, layout, cam, suffix",
    [
        ("frame_cnn", "BTCHW", "net.frame_net.conv2", ".safetensors"),
        ("frame_cnn", "BTCHW", "net.frame_net.conv2", ".pt"),
        ("tiny_3d", "BCTHW", "net.features.2", ".safetensors"),
        ("tiny_3d", "BCTHW", "net.features.2", ".pth"),
    ],
)
def test_factory_with_weights_predicts_like_the_model_in_memory(tmp_path, factory, layout, cam, suffix):
    net = in_memory(factory)
    weights = save_weights(net, tmp_path / f"w{suffix}")
    model = xai_core.load_model(f"{BYO}:{factory}", "cpu", weights=weights, **SIZE)
    x = clip_tensor()
    with torch.no_grad():
        expected = net(x if layout == "BTCHW" else x.transpose(1, 2))
        assert torch.equal(model(x), expected)
    assert model.layout == layout and model.cam_layer_name == cam
    assert model.labels == [f"class {i}" for i in range(expected.shape[1])]
    assert "weights" not in model.info.notes and count_hooks(model) == 0
    card = make_user_card(model)
    assert card["source"] == "factory" and card["factory"] == f"{BYO}:{factory}"
    assert card["weights"]["file"] == weights.name and len(card["weights"]["sha256"]) == 64
    assert card["layout"] == layout and card["cam_layer"] == cam.removeprefix("net.")
    json.dumps(card)


@pytest.mark.parametrize("factory, cam_shape", [("frame_cnn", (8, 32, 32)), ("tiny_3d", (4, 32, 32))])
def test_gradcam_on_the_inferred_layer(factory, cam_shape):
    model = xai_core.load_model(f"{BYO}:{factory}", "cpu", **SIZE)
    clip = xai_core.load_video("shapes:3", model=model)
    expl = xai_core.explain(model, clip, "gradcam")
    assert expl.spatial.shape == (8, 64, 64) and expl.extras["cam_lowres"].shape == cam_shape
    assert np.isfinite(expl.spatial).all() and np.abs(expl.spatial).max() > 0
    assert count_hooks(model) == 0


def test_without_weights_the_model_says_its_weights_are_random():
    model = xai_core.load_model(f"{BYO}:frame_cnn", "cpu", **SIZE)
    assert "random weights" in model.describe()["notes"]["weights"]
    assert "random weights" in make_user_card(model)["notes"]["weights"]


def test_a_label_file_sets_the_class_names_and_config_reaches_the_factory(tmp_path):
    names = ["cat", "dog", "bird"]
    (tmp_path / "labels.txt").write_text("\n".join(names) + "\n\n")
    model = xai_core.load_model(
        f"{BYO}:frame_cnn", "cpu", labels_file=tmp_path / "labels.txt", config={"num_classes": 3}, **SIZE
    )
    assert model.labels == names
    prediction = xai_core.predict(model, clip_tensor())
    assert prediction["label"] in names and len(prediction["probabilities"]) == 3
    with pytest.raises(ModelError, match="gives 10 outputs on a dummy clip.*but 3 labels were given"):
        xai_core.load_model(f"{BYO}:frame_cnn", "cpu", labels_file=tmp_path / "labels.txt", **SIZE)


def test_input_spec_statements():
    model = xai_core.load_model(
        f"{BYO}:tiny_3d", "cpu", frames=6, height=40, width=48, mean=[0.5, 0.4, 0.3], std=(0.2, 0.2, 0.2)
    )
    assert model.input_spec == InputSpec(6, 40, 48, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    assert model.layout == "BCTHW"
    with pytest.raises(ModelError, match="std takes three numbers"):
        xai_core.load_model(f"{BYO}:tiny_3d", "cpu", std=[1, 2])


def test_a_conv_head_leaves_no_cam_layer_and_the_methods_say_which_layers_could_be():
    model = xai_core.load_model(f"{BYO}:ConvHead", "cpu", **SIZE)
    assert model.cam_layer_name is None and "cam_layer" not in model.capabilities
    with pytest.raises(MethodError, match=r"gradcam needs a model with cam layer.*'head'.*\[8, 2, 1, 1\].*"):
        xai_core.explain(model, clip_tensor(), "gradcam")
    assert "candidate layers: conv1, conv2" in model.info.notes["cam_layer"]
    named = xai_core.load_model(f"{BYO}:ConvHead", "cpu", cam_layer="conv2", **SIZE)
    assert named.cam_layer_name == "net.conv2"
    assert xai_core.explain(named, clip_tensor(), "gradcam").extras["cam_lowres"].shape == (8, 64, 64)
    with pytest.raises(ModelError, match=r"cam_layer 'head' gives activations \[8, 2, 1, 1\]"):
        xai_core.load_model(f"{BYO}:ConvHead", "cpu", cam_layer="head", **SIZE)
    with pytest.raises(ModelError, match="cam_layer 'conv9' is not a layer.*conv1, conv2, head"):
        xai_core.load_model(f"{BYO}:ConvHead", "cpu", cam_layer="conv9", **SIZE)


def test_saved_factory_model_comes_back_with_its_statements(tmp_path):
    model = xai_core.load_model(f"{BYO}:ConvHead", "cpu", labels=["no", "yes"], cam_layer="conv1", **SIZE)
    save_user_model(model, tmp_path / "mine")
    with pytest.raises(ModelError, match=rf"built by your own code.*load_model\('{re.escape(str(BYO))}:ConvHead'"):
        xai_core.load_model(tmp_path / "mine", "cpu")
    again = xai_core.load_model(f"{BYO}:ConvHead", "cpu", weights=tmp_path / "mine.safetensors")
    assert again.labels == ["no", "yes"] and again.input_spec == model.input_spec
    assert again.cam_layer_name == "net.conv1" and make_user_card(again)["card"] == "mine.json"
    with torch.no_grad():
        assert torch.equal(again(clip_tensor()), model(clip_tensor()))


# ---------------------------------------------------------------------------- refusals
def test_wrong_weights_are_refused_with_what_differs(tmp_path):
    other_arch = save_weights(in_memory("tiny_3d"), tmp_path / "tiny3d.safetensors")
    with pytest.raises(ModelError, match=r"weights tiny3d.safetensors do not fit byo_models.py:frame_cnn: .*missing"):
        xai_core.load_model(f"{BYO}:frame_cnn", "cpu", weights=other_arch, **SIZE)
    five = save_weights(in_memory("frame_cnn", num_classes=5), tmp_path / "five.pt")
    with pytest.raises(ModelError, match=r"have 5 outputs in their final layer \(frame_net.fc\).* has 10"):
        xai_core.load_model(f"{BYO}:frame_cnn", "cpu", weights=five, **SIZE)


def test_missing_factory_and_failing_import(tmp_path):
    with pytest.raises(ModelError, match=r"byo_models.py has no 'resnet9000'; it defines: .*frame_cnn"):
        xai_core.load_model(f"{BYO}:resnet9000", "cpu")
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise RuntimeError('this file is broken')\n")
    with pytest.raises(ModelError, match="importing broken.py failed: RuntimeError: this file is broken"):
        xai_core.load_model(f"{broken}:net", "cpu")
    with pytest.raises(ModelError, match="name the function or class"):
        xai_core.load_model(str(BYO), "cpu")


def test_ambiguous_layout_asks_for_it():
    small = {"frames": 4, "height": 8, "width": 8}
    with pytest.raises(ModelError, match="layout is ambiguous.*state it with layout="):
        xai_core.load_model(f"{BYO}:flat_linear", "cpu", **small)
    model = xai_core.load_model(f"{BYO}:flat_linear", "cpu", layout="BCTHW", **small)
    assert model.layout == "BCTHW" and model.cam_layer_name is None
    assert "no Conv2d/Conv3d layer ran" in model.info.notes["cam_layer"]


def test_a_model_that_fits_no_layout_or_gives_nan(tmp_path):
    with pytest.raises(ModelError, match=r"runs in neither layout.*as BTCHW: RuntimeError.*as BCTHW: RuntimeError"):
        xai_core.load_model(f"{BYO}:flat_linear", "cpu", **SIZE)
    nan = tmp_path / "nan.py"
    nan.write_text(
        "import torch\nclass Net(torch.nn.Module):\n"
        "    def forward(self, x):\n        return torch.full((x.shape[0], 2), float('nan'))\n"
    )
    with pytest.raises(ModelError, match="gives NaN or infinite outputs"):
        xai_core.load_model(f"{nan}:Net", "cpu", layout="BTCHW", **SIZE)
    per_frame = tmp_path / "per_frame.py"
    per_frame.write_text(
        "import torch\nclass Net(torch.nn.Module):\n"
        "    def forward(self, x):\n        return torch.zeros(x.shape[0], x.shape[1], 2)\n"
    )
    with pytest.raises(ModelError, match=r"returns a tensor of shape \[1, 8, 2\].*needs logits \[B,K\]"):
        xai_core.load_model(f"{per_frame}:Net", "cpu", **SIZE)


def test_a_checkpoint_takes_no_statements_but_a_cam_layer(tiny_checkpoints):
    with pytest.raises(ModelError, match="tiny_r3d is a checkpoint whose card states the model; labels, frames"):
        xai_core.load_model("tiny_r3d", "cpu", labels=["a", "b", "c"], frames=8)
    model = xai_core.load_model("tiny_r3d", "cpu", cam_layer="layer2")
    assert model.cam_layer_name == "net.layer2" and make_user_card(model)["source"] == "checkpoint"


class _Payload:
    """Unpickling this would create the marker file: what weights_only=True must refuse."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_runs_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"conv.weight": torch.zeros(1), "evil": _Payload(marker)}, tmp_path / "evil.pt")
    for spec in (f"{BYO}:frame_cnn", "r3d_18"):
        with pytest.raises(ModelError, match="evil.pt is refused: it is a pickle that needs code"):
            xai_core.load_model(spec, "cpu", weights=tmp_path / "evil.pt", **SIZE)
    with pytest.raises(ModelError, match="evil.pt is refused"):
        xai_core.load_model("cnn_lstm", "cpu", config={"backbone": "resnet18", "motion_input": False},
                            backbone_weights=tmp_path / "evil.pt", **SIZE)  # fmt: skip
    assert not marker.exists()


# ---------------------------------------------------------------------------- torchvision by name
@pytest.mark.parametrize("arch, cam", [("r3d_18", "net.layer4"), ("s3d", "net.features.15")])
def test_torchvision_architecture_by_name_with_user_weights(tmp_path, arch, cam):
    torch.manual_seed(0)
    model = xai_core.load_model(arch, "cpu", labels=["a", "b", "c"], **SIZE)
    assert model.layout == "BCTHW" and model.cam_layer_name == cam and "random weights" in model.info.notes["weights"]
    weights = save_weights(model.net, tmp_path / f"{arch}.safetensors")
    again = xai_core.load_model(arch, "cpu", weights=weights, **SIZE)
    x = clip_tensor()
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    assert again.labels == ["class 0", "class 1", "class 2"]  # the number of classes read from the file
    assert "weights" not in again.info.notes and make_user_card(again)["source"] == "architecture"
    if arch == "s3d":
        assert xai_core.explain(again, x, "gradcam").extras["cam_lowres"].shape == (1, 2, 2)
        return
    (tmp_path / "kinetics.txt").write_text(KINETICS.read_text())
    with pytest.raises(ModelError, match=r"have 3 classes in their final layer \(fc\), but 400 labels"):
        xai_core.load_model(arch, "cpu", weights=weights, labels_file=tmp_path / "kinetics.txt", **SIZE)
    with pytest.raises(ModelError, match=r"do not fit architecture 'mc3_18'"):
        xai_core.load_model("mc3_18", "cpu", weights=weights, **SIZE)


def test_kinetics_weights_with_the_bundled_labels(tmp_path):
    """An r3d_18 state_dict (.pth, torch.save) with 400 classes and the Kinetics label file."""
    torch.manual_seed(0)
    model = xai_core.load_model("r3d_18", "cpu", labels_file=KINETICS, **SIZE)
    assert model.labels[0] == "abseiling" and len(model.labels) == 400
    assert model.input_spec.mean == (0.43216, 0.394666, 0.37645)  # KINETICS_SPEC by default
    weights = save_weights(model.net, tmp_path / "r3d_18_kinetics.pth")
    again = xai_core.load_model("r3d_18", "cpu", weights=weights, labels_file=KINETICS, **SIZE)
    with torch.no_grad():
        assert torch.equal(again(clip_tensor()), model(clip_tensor()))
    save_user_model(again, tmp_path / "saved")
    assert xai_core.load_model(tmp_path / "saved.safetensors", "cpu").labels == model.labels


def test_per_frame_torchvision_backbone_weights(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    config = {"backbone": "resnet18", "motion_input": False}
    model = xai_core.load_model(
        "cnn_lstm", "cpu", config=config, backbone_weights=tmp_path / "resnet18.pth", labels=["a", "b"], **SIZE
    )
    assert torch.equal(model.net.frame_encoder.backbone.net.conv1.weight, reference.conv1.weight)
    assert "resnet18.pth" in model.info.notes["weights"] and model.layout == "BTCHW"
    assert make_user_card(model)["backbone_weights"]["file"] == "resnet18.pth"
    with pytest.raises(ModelError, match="has no frame encoder"):
        xai_core.load_model("r3d_18", "cpu", backbone_weights=tmp_path / "resnet18.pth")


# ---------------------------------------------------------------------------- TorchScript
def test_torchscript_through_the_api_and_the_cli(tmp_path, capsys):
    net = in_memory("frame_cnn", num_classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.trace(net, clip_tensor()).save(str(tmp_path / "net.pt"))
    save_weights(net, tmp_path / "state.pt")
    assert is_torchscript(tmp_path / "net.pt") and not is_torchscript(tmp_path / "state.pt")
    model = xai_core.load_model(tmp_path / "net.pt", "cpu", labels=["a", "b", "c"], **SIZE)
    with torch.no_grad():
        assert torch.equal(model(clip_tensor()), net(clip_tensor()))
    assert model.layout == "BTCHW" and model.cam_layer_name is None
    assert "TorchScript" in model.info.notes["cam_layer"]
    card = make_user_card(model)
    assert card["source"] == "torchscript" and card["weights"]["file"] == "net.pt"
    with pytest.raises(ModelError, match="holds its own weights"):
        xai_core.load_model(tmp_path / "net.pt", "cpu", weights=tmp_path / "state.pt")

    clip = xai_core.load_video("shapes:3", model=model)
    expected = xai_core.predict(model, clip)
    argv = ["predict", "--model", str(tmp_path / "net.pt"), "--frames", "8", "--size", "64", "64"]
    assert main([*argv, "--video", "shapes:3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)
    assert result["labels"] == ["class 0", "class 1", "class 2"]


def test_cli_errors_stay_one_line(tmp_path, capsys):
    code = main(["predict", "--model", f"{BYO}:flat_linear", "--video", "shapes:1", "--frames", "4", "--size", "8x8"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "layout is ambiguous" in err
    code = main(["methods", "--model", f"{BYO}:ConvHead", "--size", "64", "--frames", "8", "--json"])
    gradcam = next(m for m in json.loads(capsys.readouterr().out) if m["name"] == "gradcam")
    assert code == 0 and not gradcam["available"] and "candidate layers: conv1, conv2" in gradcam["reason"]
    assert main(["predict", "--model", "r3d_18", "--video", "shapes:1", "--size", "64y"]) == 2
    assert "--size takes HxW" in capsys.readouterr().err


def test_cli_factory_with_weights_and_labels(tmp_path):
    """The real ``python -m xai_core`` process, as the README shows it."""
    net = in_memory("frame_cnn")
    weights = save_weights(net, tmp_path / "frame_cnn.safetensors")
    labels = [f"thing {i}" for i in range(10)]
    (tmp_path / "labels.txt").write_text("\n".join(labels))
    result = subprocess.run(
        [sys.executable, "-m", "xai_core", "predict", "--model", f"{os.path.relpath(BYO)}:frame_cnn"]
        + ["--weights", str(weights), "--labels", str(tmp_path / "labels.txt"), "--frames", "8", "--size", "64x64"]
        + ["--video", "shapes:3", "--json", "--device", "cpu"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["labels"] == labels and out["label"] in labels
    model = xai_core.load_model(f"{BYO}:frame_cnn", "cpu", weights=weights, **SIZE)
    clip = xai_core.load_video("shapes:3", model=model)
    with torch.no_grad():
        expected = torch.softmax(net(model.preprocess(clip)), 1)[0]
    assert out["probabilities"] == pytest.approx(expected.tolist(), abs=1e-5)
