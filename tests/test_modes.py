"""Train / eval modes (issue 15): every way of loading a model gives every module in eval mode;
every method and every other entry point computes in eval mode, repeats itself exactly and hands
each module's own flag back as it was found; occlusion on a user's model with batch norm and
dropout equals Captum's Occlusion run after an explanation."""

from __future__ import annotations

import re
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import Occlusion
from conftest import SMALL_SPEC, small_model
from safetensors.torch import save_file
from test_every_method import fast_params
from torch import nn

import xai_core
from workbench.model_upload import UploadedFile, load_request
from xai_core.evaluate import deletion_insertion, masked_accuracy, run_suite
from xai_core.explanation import resolve_target
from xai_core.methods.machinery.planning import plan
from xai_core.methods.machinery.registry import get_method, method_specs
from xai_core.models import modes
from xai_core.models.checkpoint import make_card, save_checkpoint
from xai_core.models.modes import eval_mode, training_modules
from xai_core.vanishing import gradient_profile
from xai_core.video import sample_clips

HERE = Path(__file__).resolve().parent
BYO = HERE / "byo_models.py"
PACKAGE = HERE.parent / "xai_core"
SIZE = {"frames": 8, "height": 32, "width": 32}
MEAN, STD = (0.43, 0.40, 0.38), (0.23, 0.22, 0.22)
# cheap settings: few samples and steps, big boxes (the modes do not depend on the grid)
QUICK = {"samples": 2, "steps": 4, "block": 16, "window": (2, 16, 16), "stride": (2, 16, 16), "alpha_quantile": 0.8}

sys.path.insert(0, str(HERE))
import byo_models  # noqa: E402

IMAGENET = byo_models.IMAGENET
from byo_models import with_running_statistics  # noqa: E402


def has_norm_and_dropout(model: nn.Module) -> bool:
    kinds = [getattr(m, "original_name", type(m).__name__) for m in model.modules()]  # TorchScript: original_name
    return any(k.startswith("BatchNorm") for k in kinds) and any(k == "Dropout" for k in kinds)


def clip_frames(seed: int = 1, spec=SIZE) -> np.ndarray:
    """A uint8 clip [T,H,W,3] with a bright square moving right over noise."""
    rng = np.random.default_rng(seed)
    t, h, w = spec["frames"], spec["height"], spec["width"]
    frames = rng.integers(0, 90, (t, h, w, 3), dtype=np.uint8)
    for i in range(t):
        frames[i, h // 3 : h // 3 + h // 4, 2 + 2 * i : 2 + 2 * i + w // 4] = (230, 200, 40)
    return frames


# ---------------------------------------------------------------------------- user models on disk
def shuffle_weights(folder: Path) -> Path:
    """A 'pretrained' ShuffleNet-style 3D CNN (grouped and depthwise convs, channel shuffle, batch
    norm, dropout) saved with torch.save, as such weights arrive."""
    net = with_running_statistics(byo_models.shuffle_3d(), (2, 3, 8, 32, 32))
    path = folder / "gesture.pth"
    torch.save(net.state_dict(), path)
    return path


def labels_file(folder: Path, names=("swipe left", "swipe right", "stop", "no gesture")) -> Path:
    path = folder / "labels.txt"
    path.write_text("\n".join(names) + "\n")
    return path


def load_factory_3d(folder: Path):
    return xai_core.load_model(
        f"{BYO}:shuffle_3d", "cpu", weights=shuffle_weights(folder), labels_file=labels_file(folder),
        mean=MEAN, std=STD, **SIZE,
    )  # fmt: skip


def load_factory_frames(folder: Path):
    net = with_running_statistics(byo_models.normed_frames(), (2, 8, 3, 32, 32))
    save_file(net.state_dict(), str(folder / "frames.safetensors"))
    return xai_core.load_model(f"{BYO}:normed_frames", "cpu", weights=folder / "frames.safetensors", **SIZE)


def load_factory_recurrent(folder: Path):
    net = with_running_statistics(byo_models.recurrent_frames(), (2, 8, 3, 32, 32))
    save_file(net.state_dict(), str(folder / "recurrent.safetensors"))
    return xai_core.load_model(f"{BYO}:recurrent_frames", "cpu", weights=folder / "recurrent.safetensors", **SIZE)


def load_torchscript(folder: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, not gone
        scripted = torch.jit.script(with_running_statistics(byo_models.shuffle_3d(), (2, 3, 8, 32, 32)))
        torch.jit.save(scripted, str(folder / "gesture.ts"))
    return xai_core.load_model(folder / "gesture.ts", "cpu", **SIZE)


def architecture_weights(folder: Path, arch: str) -> Path:
    model = small_model(arch)
    with_running_statistics(model, (2, *[SMALL_SPEC.frames, 3, SMALL_SPEC.height, SMALL_SPEC.width]))
    path = folder / f"{arch}.safetensors"
    save_file({k: v.contiguous() for k, v in model.net.state_dict().items()}, str(path))
    return path


def load_architecture(folder: Path, arch: str = "cnn_lstm", **statements):
    return xai_core.load_model(
        arch, "cpu", weights=architecture_weights(folder, arch), labels=["a", "b", "c"],
        frames=SMALL_SPEC.frames, height=SMALL_SPEC.height, width=SMALL_SPEC.width, **statements,
    )  # fmt: skip


def saved_checkpoint(folder: Path, arch: str = "r3d") -> Path:
    model = with_running_statistics(small_model(arch), (2, SMALL_SPEC.frames, 3, SMALL_SPEC.height, SMALL_SPEC.width))
    model.info.name = f"my-{arch}"
    save_checkpoint(model, folder / model.info.name, make_card(model))
    return folder / model.info.name


def load_pt_checkpoint(folder: Path):
    stem = saved_checkpoint(folder)
    state = xai_core.load_model(stem, "cpu").net.state_dict()
    torch.save(state, stem.with_suffix(".pt"))
    stem.with_suffix(".safetensors").unlink()
    return xai_core.load_model(stem.with_suffix(".pt"), "cpu")


def load_upload(folder: Path):
    """The Models page's form: the user's file and weights uploaded, fields typed in."""
    spec, kwargs = load_request(
        "factory",
        folder,
        model_file=UploadedFile("gesture_net.py", BYO.read_bytes()),
        weights_file=UploadedFile("gesture.pth", shuffle_weights(folder).read_bytes()),
        factory="shuffle_3d",
        labels_text="swipe left, swipe right, stop, no gesture",
        mean_text="0.43, 0.40, 0.38",
        std_text="0.23 0.22 0.22",
        **SIZE,
    )
    return xai_core.load_model(spec, device="cpu", **kwargs)


LOADERS = {
    "zoo name": lambda folder: xai_core.load_model("r3d-sides", "cpu"),
    "zoo name with a Grad-CAM layer": lambda folder: xai_core.load_model(
        "cnn_lstm-sides", "cpu", cam_layer="net.frame_encoder.backbone.features.2.0"
    ),
    "checkpoint stem": lambda folder: xai_core.load_model(saved_checkpoint(folder), "cpu"),
    "checkpoint .safetensors": lambda folder: xai_core.load_model(
        saved_checkpoint(folder, "cnn_transformer").with_suffix(".safetensors"), "cpu"
    ),
    "checkpoint .pt and card": load_pt_checkpoint,
    "TorchScript": load_torchscript,
    "file.py:factory, 3D": load_factory_3d,
    "file.py:factory, per frame": load_factory_frames,
    "file.py:factory, CNN + two-layer LSTM": load_factory_recurrent,
    "architecture by name": load_architecture,
    "architecture by name with a Grad-CAM layer": lambda folder: load_architecture(
        folder, "r3d", cam_layer="net.layer2.conv2"
    ),
    "Models page upload": load_upload,
}


@pytest.mark.parametrize("path", LOADERS)
def test_every_loading_path_gives_every_module_in_eval_mode(path, tmp_path):
    if path.startswith("zoo") and not xai_core.zoo_names():
        pytest.skip("the zoo's checkpoints are not here")
    model = LOADERS[path](tmp_path)
    assert has_norm_and_dropout(model), "a network without batch norm and dropout cannot show the bug"
    assert training_modules(model) == []
    x = model.preprocess(clip_frames(spec=model.input_spec.to_dict()))
    with torch.inference_mode():
        assert torch.equal(model(x), model(x))


def test_the_adapter_takes_the_mode_of_the_network_it_wraps():
    from xai_core.models.base import VideoModel

    net = byo_models.shuffle_3d().eval()
    assert training_modules(VideoModel(net, task="classification", labels=list("abcd"), input_spec=SMALL_SPEC)) == []
    net.train()
    assert VideoModel(net, task="classification", labels=list("abcd"), input_spec=SMALL_SPEC).training


# ---------------------------------------------------------------------------- every method
def quick_params(spec) -> dict:
    return fast_params(spec, QUICK, trajectory_grid=8)


def arrays(expl) -> dict[str, np.ndarray]:
    found = {"spatial": expl.spatial, "temporal": expl.temporal, **expl.extras}
    return {k: np.asarray(v) for k, v in found.items() if v is not None}


def flags(model: nn.Module) -> list[tuple[str, bool]]:
    return [(name, m.training) for name, m in model.named_modules()]


def owner_frozen_norms(model: nn.Module) -> None:
    """What a user fine-tuning a network often does: training mode with batch norm frozen."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


USER_LOADERS = [path for path in LOADERS if not path.startswith("zoo")]  # the zoo: the next test


@pytest.mark.parametrize("path", USER_LOADERS)
def test_every_method_computes_in_eval_mode_and_hands_back_each_modules_mode(path, tmp_path):
    model = LOADERS[path](tmp_path)
    frames = clip_frames(spec=model.input_spec.to_dict())
    names = [s.name for s in method_specs(model)]
    core = {"saliency", "integrated_gradients", "occlusion", "tsr", "frame_mask", "flow_gradient", "trajectories"}
    assert core | ({"gradcam"} if path != "TorchScript" else set()) <= set(names)
    for name in names:
        params = quick_params(get_method(name))
        first = arrays(xai_core.explain(model, frames, name, **params))
        assert training_modules(model) == [], name
        second = arrays(xai_core.explain(model, frames, name, **params))
        assert training_modules(model) == [], name
        owner_frozen_norms(model)
        before = flags(model)
        third = arrays(xai_core.explain(model, frames, name, **params))
        assert flags(model) == before, name  # each module's own flag, not one flag for all
        model.eval()
        for key in first:
            assert np.array_equal(first[key], second[key]), (name, key)
            assert np.array_equal(first[key], third[key]), (name, key)


@pytest.mark.skipif(not xai_core.zoo_names(), reason="the zoo's checkpoints are not here")
def test_every_method_on_a_zoo_model_leaves_it_in_eval_mode():
    model = xai_core.load_model("r3d-sides", "cpu")
    clip = xai_core.load_video("shapes:4", model=model)
    cheap = {"occlusion": {"window": (8, 56, 56), "stride": (8, 56, 56)}, "tsr": {"block": 56, "alpha_quantile": 0.97}}
    for spec in method_specs(model):
        params = {**quick_params(spec), **cheap.get(spec.name, {})}
        first = arrays(xai_core.explain(model, clip, spec.name, **params))
        assert training_modules(model) == [], spec.name
        second = arrays(xai_core.explain(model, clip, spec.name, **params))
        assert all(np.array_equal(first[k], second[k]) for k in first), spec.name
    assert training_modules(model) == []


# ---------------------------------------------------------------------------- against Captum
@pytest.mark.parametrize("loader", [load_factory_3d, load_factory_frames], ids=["3D", "per frame"])
def test_occlusion_on_a_user_model_with_norm_and_dropout_equals_captum_after_an_explanation(loader, tmp_path):
    model = loader(tmp_path).double()
    frames = clip_frames()
    x = model.preprocess(frames)  # float64
    xai_core.explain(model, frames, "gradcam")  # an explanation first, as a user's notebook would
    target = int(xai_core.predict(model, frames)["index"])
    black = model.pixel_value(0).to(x.dtype)[0, 0]  # [3,1,1]
    captum = Occlusion(model).attribute(
        x, sliding_window_shapes=(2, 3, 8, 8), strides=(1, 3, 8, 8), baselines=black, target=target
    )[0, :, 0]
    ours = xai_core.explain(model, frames, "occlusion", target=target, window=(2, 8, 8), stride=(1, 8, 8))
    scale = float(captum.max() - captum.min())
    assert scale > 1e-3  # the windows change the score: the comparison means something
    np.testing.assert_allclose(ours.spatial, captum.numpy(), rtol=0, atol=1e-6 * scale)
    assert training_modules(model) == []


# ---------------------------------------------------------------------------- other entry points
def test_the_other_entry_points_compute_in_eval_mode_and_hand_modes_back(tmp_path):
    model = load_factory_frames(tmp_path)
    frames = clip_frames()
    x = model.preprocess(frames)
    target = resolve_target(model.task, model.labels, None, model(x))
    curve = np.linspace(1.0, 0.0, x.shape[1])
    params = get_method("occlusion").resolve_params({"window": (1, 16, 16), "stride": (1, 16, 16)})

    def compute() -> list:
        """The values that a pass in training mode (dropout, batch statistics) would change; and a
        cost estimate, which times the method, for the modes it hands back."""
        plan(model, x, target, "occlusion", params)
        return [
            xai_core.predict(model, frames)["probabilities"],
            gradient_profile(model, frames),
            deletion_insertion(model, x, target, curve, random_orders=2)["deletion"],
            masked_accuracy(model, [frames], [target.index])["masked"],
        ]

    expected = compute()
    assert training_modules(model) == []
    owner_frozen_norms(model)
    before = flags(model)
    again = compute()
    assert flags(model) == before
    for a, b in zip(expected, again, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_an_evaluation_suite_hands_the_models_modes_back():
    model = small_model("cnn_lstm")
    owner_frozen_norms(model)
    before = flags(model)
    result = run_suite("temporal", model, methods=["frame_mask"], n=1)
    assert flags(model) == before and np.isfinite(result["rows"][0]["deletion_auc"])


# ---------------------------------------------------------------------------- eval_mode itself
def test_eval_mode_restores_each_flag_after_nesting_and_errors():
    model = byo_models.shuffle_3d()
    owner_frozen_norms(model)
    model.dropout.eval()
    before = flags(model)
    with eval_mode(model):
        with eval_mode(model):
            assert training_modules(model) == []
        assert training_modules(model) == []  # the outer block still holds it
    assert flags(model) == before
    with pytest.raises(RuntimeError, match="inside"):
        with eval_mode(model):
            raise RuntimeError("inside")
    assert flags(model) == before


def test_overlapping_blocks_hand_back_what_the_first_found_in_any_order():
    """Blocks that overlap without nesting (two sessions of the app on one cached model), on the
    model or on an adapter and its network: no block sees training mode while another still
    computes, and the modes found first come back when the last block ends."""
    model = load_factory_recurrent_model()
    owner_frozen_norms(model)
    before = flags(model)
    for first, second in ((model, model), (model.net, model), (model, model.net)):
        a, b = eval_mode(first), eval_mode(second)
        a.__enter__()
        b.__enter__()
        a.__exit__(None, None, None)  # the first block ends while the second computes
        assert training_modules(second) == []
        b.__exit__(None, None, None)
        assert flags(model) == before


def test_blocks_in_threads_at_once_on_one_model():
    model = load_factory_recurrent_model()
    owner_frozen_norms(model)
    before = flags(model)
    frames = clip_frames()
    expected = xai_core.explain(model, frames, "saliency").spatial
    start, results = threading.Barrier(4), []

    def work():
        start.wait(timeout=30)
        for _ in range(3):
            spatial = xai_core.explain(model, frames, "saliency").spatial
            results.append(np.array_equal(spatial, expected))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [True] * 12 and flags(model) == before


def load_factory_recurrent_model():
    with tempfile.TemporaryDirectory() as folder:
        return load_factory_recurrent(Path(folder))


def test_a_recurrent_layer_in_training_mode_without_dropout_computes_what_eval_computes():
    """The fact eval_mode relies on for cuDNN, checked on the CPU's implementation."""
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 5, num_layers=2, dropout=0.5, batch_first=True)
    x = torch.randn(2, 7, 6)
    expected = lstm.eval()(x)[0]
    lstm.dropout = 0.0
    assert torch.equal(lstm.train()(x)[0], expected)


class TwoRecurrentLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.deep = nn.LSTM(4, 3, 2, dropout=0.5)
        self.one = nn.LSTM(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deep(x)[0] + self.one(x)[0]


def test_on_cuda_recurrent_layers_train_without_dropout_inside_the_block(monkeypatch):
    """On CUDA (simulated: every recurrent layer counts as on the GPU) the two-layer LSTM is in
    training mode with dropout 0 inside the block, so it computes the eval-mode explanation; its
    flag and dropout come back afterwards.  A TorchScript LSTM, whose dropout cannot be changed,
    trains only where its dropout has no effect."""
    model = load_factory_recurrent_model()
    lstm = model.net.lstm
    frames = clip_frames()
    expected = xai_core.explain(model, frames, "saliency").spatial
    monkeypatch.setattr(
        modes, "cudnn_recurrent_layers", lambda net: [m for m in net.modules() if modes.is_recurrent(m)]
    )
    with eval_mode(model):
        assert training_modules(model) == ["net.lstm"] and lstm.dropout == 0.0
        assert np.array_equal(xai_core.explain(model, frames, "saliency").spatial, expected)
    assert training_modules(model) == [] and lstm.dropout == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, not gone
        scripted = torch.jit.script(TwoRecurrentLayers())
    with eval_mode(scripted):
        assert training_modules(scripted) == ["one"]
    assert training_modules(scripted) == ["", "deep", "one"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_saliency_through_an_lstm_on_cuda_equals_the_cpu():
    model = load_factory_recurrent_model()
    frames = clip_frames()
    on_cpu = xai_core.explain(model, frames, "saliency").spatial
    model = model.to("cuda")
    on_gpu = xai_core.explain(model, frames, "saliency").spatial
    assert training_modules(model) == [] and model.net.lstm.dropout == 0.5
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=0, atol=1e-4 * np.abs(on_cpu).max())


def test_the_library_sets_no_mode_outside_training_and_eval_mode():
    """A mode set on a model the library was given (``.train(...)``, ``.eval()``, ``.training =``)
    would leave it in a mode its owner did not choose: only eval_mode, training, and the loaders
    on the networks they have just built may set one (each allowed line named, so none is added
    unseen)."""
    allowed = {
        "xai_core/models/modes.py": None,  # the mechanism itself
        "xai_core/models/training.py": None,  # training
        "xai_core/models/base.py": {"self.training = net.training"},  # an adapter takes its network's mode
        "xai_core/models/zoo.py": {"return _load(spec, resolve_device(device), statements).eval()"},
        "xai_core/models/checkpoint.py": {"return model.to(device).eval()"},
        "xai_core/models/external.py": {"net = net.to(device).eval()", "model = model.to(device).eval()"},
        "xai_core/evaluate/randomize.py": {"return clone.eval()"},  # a randomised copy of its own
    }
    setting = re.compile(r"\.(train\(|eval\(\)|training\s*=[^=])")
    found = set()
    for path in [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "benchmarks").rglob("*.py")]:
        name = str(path.relative_to(PACKAGE.parent))
        for line in path.read_text().splitlines():
            code = line.split("#")[0].strip()
            if setting.search(code) and allowed.get(name, set()) is not None:
                found.add((name, code))
    expected = {(name, line) for name, lines in allowed.items() if lines for line in lines}
    assert found == expected


# ---------------------------------------------------------------------------- real pretrained weights


@pytest.mark.skipif(
    not IMAGENET.is_dir(), reason="../shared/models (the real pretrained weights) is not beside the checkout"
)
def test_a_real_pretrained_network_explains_the_same_twice_and_agrees_with_captum(tmp_path):
    """ImageNet MobileNetV2 (batch norm, dropout; real weights) over the frames of a real clip,
    loaded as a user would: file.py:factory + weights + labels file."""
    model = byo_models.load_imagenet_mobilenet(tmp_path, frames=4)  # two cranes, two maillots made distinct
    assert training_modules(model) == [] and has_norm_and_dropout(model) and len(model.labels) == 1000
    clip = xai_core.load_video(sample_clips()["stgcn_ta_chi.mp4"], model=model)
    for name in ("gradcam", "saliency", "frame_mask"):
        first, second = (arrays(xai_core.explain(model, clip, name)) for _ in range(2))
        assert all(np.array_equal(first[k], second[k]) for k in first), name
        assert training_modules(model) == [], name
    model = model.double()
    x = model.preprocess(clip)
    target = int(xai_core.predict(model, clip)["index"])
    black = model.pixel_value(0).to(x.dtype)[0, 0]
    captum = Occlusion(model).attribute(
        x, sliding_window_shapes=(1, 3, 28, 28), strides=(1, 3, 28, 28), baselines=black, target=target
    )[0, :, 0]
    ours = xai_core.explain(model, clip, "occlusion", target=target, window=(1, 28, 28), stride=(1, 28, 28))
    scale = float(captum.max() - captum.min())
    assert scale > 1e-3
    np.testing.assert_allclose(ours.spatial, captum.numpy(), rtol=0, atol=1e-6 * scale)
