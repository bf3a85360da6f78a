"""torchvision weights by name (issue 20, point 3): labels, normalisation and frame size from the
weights' metadata (no download needed); the file read from torchvision's cache (here a temporary
$TORCH_HOME with a file placed in it); a missing file that cannot be downloaded is one line that
names the file and the folder."""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torch
import torchvision

import xai_core
from xai_core.cli import main
from xai_core.models.base import ModelError
from xai_core.models.torchvision_weights import is_weights_name, named_weights


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty torchvision cache, and no network: a download fails at once."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, *args, **kwargs):
        raise URLError("no network in the tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.mark.parametrize("arch, size", [("r3d_18", 112), ("mc3_18", 112), ("r2plus1d_18", 112), ("s3d", 224)])
def test_the_metadata_gives_labels_size_and_normalisation(arch, size, cache):
    weights = named_weights(arch, "DEFAULT")
    reference = torchvision.models.get_model_weights(arch).DEFAULT
    assert weights.name == "KINETICS400_V1" and weights.labels == list(reference.meta["categories"])
    assert len(weights.labels) == 400 and weights.size == (size, size)
    assert list(weights.mean) == list(reference.transforms().mean) and list(weights.std) == list(
        reference.transforms().std
    )
    assert weights.path == cache / weights.file and weights.url.endswith(weights.file)
    assert not weights.path.exists()  # nothing was read or downloaded


def test_a_cached_file_is_loaded_with_the_weights_facts(cache):
    torch.manual_seed(0)
    net = torchvision.models.video.r3d_18(num_classes=400)
    weights = named_weights("r3d_18", "KINETICS400_V1")
    cache.mkdir(parents=True)
    torch.save(net.state_dict(), weights.path)
    model = xai_core.load_model("r3d_18", "cpu", weights="KINETICS400_V1")
    assert all(
        torch.equal(a, b) for a, b in zip(model.net.state_dict().values(), net.state_dict().values(), strict=True)
    )
    assert model.labels[:2] == ["abseiling", "air drumming"] and len(model.labels) == 400
    spec = model.input_spec
    assert (spec.height, spec.width, spec.mean, spec.std) == (112, 112, weights.mean, weights.std)
    assert model.info.source["weights"]["torchvision"] == "R3D_18_Weights.KINETICS400_V1"
    clip = xai_core.load_video("shapes:2", model=model)
    assert xai_core.explain(model, clip, "gradcam").spatial.shape == (spec.frames, 112, 112)


def test_a_missing_file_names_the_file_and_the_folder(cache, capsys):
    with pytest.raises(ModelError) as error:
        xai_core.load_model("mc3_18", "cpu", weights="DEFAULT")
    weights = named_weights("mc3_18", "DEFAULT")
    assert f"put {weights.file} (from {weights.url}) in {cache}" in str(error.value)
    assert main(["predict", "--model", "r3d_18", "--weights", "KINETICS400_V1", "--video", "shapes:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: R3D_18_Weights.KINETICS400_V1 is not in torchvision's cache") and err.count("\n") == 1


def test_wrong_names_are_said():
    with pytest.raises(ModelError, match="r3d_18 has no weights 'IMAGENET1K_V1'; torchvision has KINETICS400_V1"):
        named_weights("r3d_18", "IMAGENET1K_V1")
    with pytest.raises(ModelError, match="weights by name are torchvision's"):
        xai_core.load_model("cnn_lstm", "cpu", weights="DEFAULT")
    assert is_weights_name("KINETICS400_V1") and not is_weights_name("weights.pt") and not is_weights_name(None)


def test_imagenet_backbone_weights_by_name(cache):
    torch.manual_seed(1)
    net = torchvision.models.resnet18()
    weights = named_weights("resnet18", "IMAGENET1K_V1")
    cache.mkdir(parents=True)
    torch.save(net.state_dict(), weights.path)
    model = xai_core.load_model("cnn_lstm", "cpu", backbone_weights="IMAGENET1K_V1", labels=["a", "b"],
                                config={"backbone": "resnet18", "motion_input": False}, frames=8, height=64,
                                width=64)  # fmt: skip
    state = model.net.frame_encoder.state_dict()
    assert torch.equal(state["backbone.net.conv1.weight"], net.conv1.weight)
    assert model.labels == ["a", "b"] and model.input_spec.mean == weights.mean  # the user's labels, ImageNet's mean
    assert model.info.source["backbone_weights"]["torchvision"] == "ResNet18_Weights.IMAGENET1K_V1"


def test_the_models_page_request_takes_weights_by_name(tmp_path):
    from workbench.model_upload import load_request
    from xai_core.models.torchvision_weights import weight_names

    assert weight_names("r3d_18") == ["DEFAULT", "KINETICS400_V1"] and weight_names("cnn_lstm") == []
    spec, kwargs = load_request("torchvision", tmp_path, arch="s3d", weights_name="DEFAULT")
    assert spec == "s3d" and kwargs["weights"] == "DEFAULT" and "labels" not in kwargs
    with pytest.raises(ModelError, match="upload the weights file"):
        load_request("torchvision", tmp_path, arch="s3d")
