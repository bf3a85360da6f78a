"""The upload form's fields -> a load_model call: files stored, fields parsed, one message for
each mistake; and the request loads the model."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import save

import xai_core
from workbench.model_upload import (
    UploadedFile,
    default_name,
    load_request,
    parse_labels,
    safe_filename,
)
from xai_core.models.base import ModelError

USER_NET = b'''
import torch
from torch import nn


class TinyNet(nn.Module):
    """[B,C,T,H,W] -> [B,classes]."""

    def __init__(self, classes=3):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, classes)

    def forward(self, x):
        return self.head(self.conv(x).relu().mean((2, 3, 4)))
'''


def tiny_net() -> torch.nn.Module:
    namespace: dict = {}
    exec(USER_NET.decode(), namespace)
    torch.manual_seed(0)
    return namespace["TinyNet"]()


def user_files() -> tuple[UploadedFile, UploadedFile]:
    """The user's Python file and its weights (safetensors)."""
    return UploadedFile("my net.py", USER_NET), UploadedFile("weights.safetensors", save(tiny_net().state_dict()))


def torchscript_file() -> UploadedFile:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, not gone
        torch.jit.save(torch.jit.trace(tiny_net(), torch.zeros(1, 3, 4, 16, 16)), buffer)
    return UploadedFile("scripted.pt", buffer.getvalue())


def test_fields_are_parsed():
    assert parse_labels("cat\n dog \n\nbird") == ["cat", "dog", "bird"]
    assert parse_labels("cat, dog,bird") == ["cat", "dog", "bird"] and parse_labels("") is None
    assert safe_filename("../../etc/my net.py") == "my_net.py" and safe_filename(".hidden") == "hidden"
    assert default_name("torchscript", torchscript_file(), "", "") == "scripted"
    assert default_name("factory", user_files()[0], "TinyNet", "") == "TinyNet"
    assert default_name("torchvision", None, "", "r3d_18") == "r3d_18"


def test_a_factory_request_loads_the_users_model(tmp_path):
    code, weights = user_files()
    spec, kwargs = load_request(
        "factory",
        tmp_path,
        model_file=code,
        weights_file=weights,
        factory="TinyNet",
        labels_text="a, b, c",
        frames=8,
        height=32,
        width=32,
        mean_text="0.5",
        layout="auto",
    )
    path, factory = spec.rsplit(":", 1)
    assert factory == "TinyNet" and path.endswith("my_net.py") and path.startswith(str(tmp_path))
    assert kwargs == {
        "task": "classification",
        "frames": 8,
        "height": 32,
        "width": 32,
        "mean": (0.5, 0.5, 0.5),
        "labels": ["a", "b", "c"],
        "weights": kwargs["weights"],
    }
    model = xai_core.load_model(spec, device="cpu", **kwargs)
    assert model.layout == "BCTHW" and model.labels == ["a", "b", "c"] and model.input_spec.frames == 8
    assert torch.equal(model.net.conv.weight, tiny_net().conv.weight)  # the uploaded weights


def test_a_torchscript_request_and_a_label_file(tmp_path):
    spec, kwargs = load_request(
        "torchscript",
        tmp_path,
        model_file=torchscript_file(),
        labels_file=UploadedFile("classes.txt", b"x\ny\nz\n"),
        frames=4,
        height=16,
        width=16,
        layout="BCTHW",
    )
    assert kwargs["layout"] == "BCTHW" and kwargs["labels_file"].endswith("classes.txt")
    model = xai_core.load_model(spec, device="cpu", **kwargs)
    assert model.labels == ["x", "y", "z"] and model.info.arch == "torchscript"


def test_each_submission_gets_its_own_folder(tmp_path):
    code, weights = user_files()
    first, _ = load_request("factory", tmp_path, model_file=code, weights_file=weights, factory="TinyNet")
    second, _ = load_request("factory", tmp_path, model_file=code, weights_file=weights, factory="TinyNet")
    assert first != second  # a cached model keeps its own files


@pytest.mark.parametrize(
    "kind, fields, message",
    [
        ("torchscript", {}, "upload the TorchScript file"),
        ("torchscript", {"model_file": UploadedFile("model.pt", b"\x80\x04 not a zip")}, "not a TorchScript file"),
        ("factory", {"model_file": UploadedFile("net.txt", b"")}, "upload the Python file"),
        ("factory", {"model_file": UploadedFile("net.py", USER_NET), "factory": "1x"}, "name the function or class"),
        ("factory", {"model_file": UploadedFile("net.py", USER_NET), "factory": "TinyNet"}, "upload the weights"),
        ("torchvision", {"arch": "resnet50"}, "choose one of r3d_18"),
        ("torchvision", {"arch": "r3d_18", "labels_text": "a", "labels_file": UploadedFile("l.txt", b"a")}, "not both"),
        ("camera", {}, "unknown kind of model"),
        ("torchvision", {"arch": "r3d_18", "mean_text": "0.4, 0.5"}, r"mean takes three numbers \(one per RGB"),
        ("torchvision", {"arch": "r3d_18", "std_text": "0.2 0 0.2"}, "std must be positive"),
    ],
)
def test_mistakes_get_one_message(tmp_path, kind, fields, message):
    with pytest.raises(ModelError, match=message):
        load_request(kind, tmp_path, **fields)


def test_a_torchvision_request_names_the_architecture(tmp_path):
    weights = UploadedFile("r3d.pth", b"weights")
    spec, kwargs = load_request("torchvision", tmp_path, arch="s3d", weights_file=weights, cam_layer=" features.14 ")
    assert spec == "s3d" and kwargs["cam_layer"] == "features.14" and kwargs["weights"].endswith("r3d.pth")
    assert "layout" not in kwargs and "labels" not in kwargs  # auto / empty: the loader decides


SPLIT_NET = {
    "layers.py": b"from torch import nn\n\n\nclass Body(nn.Module):\n    def __init__(self):\n"
    b"        super().__init__()\n        self.conv = nn.Conv3d(3, 4, 3, padding=1)\n\n"
    b"    def forward(self, x):\n        return self.conv(x).relu().mean((2, 3, 4))\n",
    "net.py": b"from torch import nn\nfrom layers import Body\n\n\ndef build(classes=3):\n"
    b"    return nn.Sequential(Body(), nn.Linear(4, classes))\n",
}


def zipped(files: dict[str, bytes]) -> UploadedFile:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return UploadedFile("code.zip", buffer.getvalue())


def split_weights() -> UploadedFile:

    from safetensors.torch import save

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3, padding=1), torch.nn.Linear(4, 3))
    state = {
        "0.conv.weight": net[0].weight,
        "0.conv.bias": net[0].bias,
        "1.weight": net[1].weight,
        "1.bias": net[1].bias,
    }
    return UploadedFile("w.safetensors", save({k: v.detach().contiguous() for k, v in state.items()}))


@pytest.mark.parametrize("how", ["files", "zip", "package zip"])
def test_a_model_in_several_files_or_a_zip_loads(tmp_path, how):
    """Issue 18, point 2: a factory that imports a sibling module (or, in a package, relative imports)."""
    sizes = {"frames": 4, "height": 16, "width": 16, "layout": "BCTHW"}
    if how == "files":
        files = [UploadedFile(name, data) for name, data in SPLIT_NET.items()]
        with pytest.raises(
            ModelError, match=r"name the file too, as FILE.py:build \(the upload holds layers.py, net.py\)"
        ):
            load_request("factory", tmp_path, model_files=files, weights_file=split_weights(), factory="build")
        factory = "net.py:build"
    elif how == "zip":
        files, factory = [zipped(SPLIT_NET)], "net.py:build"
    else:
        package = {
            "mypkg/__init__.py": b"",
            "mypkg/layers.py": SPLIT_NET["layers.py"],
            "mypkg/net.py": SPLIT_NET["net.py"].replace(b"from layers import", b"from .layers import"),
        }
        files, factory = [zipped(package)], "mypkg/net.py:build"
    spec, kwargs = load_request(
        "factory", tmp_path, model_files=files, weights_file=split_weights(), factory=factory, **sizes
    )
    model = xai_core.load_model(spec, device="cpu", **kwargs)
    assert model.net[1].weight.shape == (3, 4) and model.layout == "BCTHW"
    assert len(xai_core.predict(model, np.zeros((4, 16, 16, 3), np.uint8))["probabilities"]) == 3


def test_a_zip_cannot_write_outside_its_folder(tmp_path):
    with pytest.raises(ModelError, match="a path outside its folder: refused"):
        load_request("factory", tmp_path, model_files=[zipped({"ok.py": b"", "../evil.py": b""})], factory="x.py:build")
    assert not list(tmp_path.rglob("ok.py"))  # checked before anything was written
    with pytest.raises(ModelError, match="is not a readable zip file"):
        load_request("factory", tmp_path, model_files=[UploadedFile("c.zip", b"PK no zip")], factory="build")
    assert not list(tmp_path.parent.rglob("evil.py"))


def test_a_model_on_this_machine_is_loaded_where_it_is(tmp_path):
    for name, data in SPLIT_NET.items():
        (tmp_path / name).write_bytes(data)
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(split_weights().data)
    spec, kwargs = load_request(
        "path", tmp_path / "uploads", local_path=f" {tmp_path / 'net.py'}:build ", weights_path=str(weights), frames=4
    )
    assert spec == f"{tmp_path / 'net.py'}:build" and kwargs["weights"] == str(weights)
    assert not (tmp_path / "uploads").exists()  # nothing copied
    model = xai_core.load_model(spec, device="cpu", height=16, width=16, layout="BCTHW", **kwargs)
    assert model.input_spec.frames == 4
    with pytest.raises(ModelError, match="no such Python file or package folder on this machine"):
        load_request("path", tmp_path, local_path=f"{tmp_path / 'nope.py'}:build")
    with pytest.raises(ModelError, match="not FILE.py:NAME, PACKAGE_FOLDER:NAME"):
        load_request("path", tmp_path, local_path=str(tmp_path / "layers.txt"))
    with pytest.raises(ModelError, match="no such weights file on this machine"):
        load_request("path", tmp_path, local_path=f"{tmp_path / 'net.py'}:build", weights_path="/nowhere/w.pt")
