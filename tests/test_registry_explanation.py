"""The method registry (discovery, capabilities, what a method applies to, parameters) and the
Explanation record."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import small_input, small_model
from torch import nn

from xai_core import Explanation, explain, list_methods
from xai_core.explanation import describe_prediction, prediction_text
from xai_core.methods.machinery.registry import (
    REGISTRY,
    MethodError,
    MethodSpec,
    Param,
    get_method,
    method_modules,
    method_specs,
    register,
)
from xai_core.models.base import InputSpec, ModelError, VideoModel


class FlatModel(nn.Module):
    """A video model with no conv layer at all: no Grad-CAM possible."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x.mean((1, 3, 4)))


def flat_model() -> VideoModel:
    return VideoModel(FlatModel(), task="classification", labels=["a", "b"], input_spec=InputSpec(8, 64, 64)).eval()


def test_methods_are_listed_by_capability():
    assert "gradcam" in list_methods()
    assert "gradcam" in list_methods(small_model("cnn_lstm"))
    assert "gradcam" not in list_methods(flat_model())


def test_unsupported_method_says_why():
    with pytest.raises(MethodError, match="gradcam needs a model with cam layer"):
        explain(flat_model(), small_input(), "gradcam")
    with pytest.raises(MethodError, match="unknown method 'gradcom'.*gradcam"):
        explain(small_model("cnn_lstm"), small_input(), "gradcom")


def test_parameters_are_checked_and_converted():
    spec = get_method("gradcam")
    assert spec.resolve_params({}) == {"layer": None}
    with pytest.raises(MethodError, match="has no parameter 'steps'"):
        spec.resolve_params({"steps": 3})
    p = Param("steps", "int", 10, minimum=1, maximum=100)
    assert p.coerce("20", "m") == 20
    with pytest.raises(MethodError, match=">= 1"):
        p.coerce(0, "m")
    with pytest.raises(MethodError, match="must be int"):
        p.coerce("many", "m")
    c = Param("baseline", "choice", "black", choices=("black", "blur"))
    with pytest.raises(MethodError, match="one of black, blur"):
        c.coerce("white", "m")
    assert Param("flag", "bool", False).coerce("true", "m") is True


def test_methods_are_found_by_walking_the_package():
    """The modules that register methods (every file of xai_core/methods with ``@register(``) are
    the method modules the registry imports: those at the top and each sub-package's ``method``,
    none in machinery/; every method comes from one of them."""
    package = Path(__file__).resolve().parents[1] / "xai_core" / "methods"
    registering = {
        "xai_core.methods." + ".".join(path.relative_to(package).with_suffix("").parts)
        for path in package.rglob("*.py")
        if "@register(" in path.read_text("utf-8") and "machinery" not in path.relative_to(package).parts
    }
    assert set(method_modules()) == registering and "xai_core.methods.lrp.method" in registering
    assert {spec.fn.__module__ for spec in method_specs()} == registering


def test_listing_and_a_gradient_method_import_no_heavy_library():
    """Start-up (a batch worker, the command line): listing the methods and explaining with Grad-CAM
    on a per-frame model imports neither zennit nor torchvision (a second each, through torch._dynamo)
    nor scipy.stats; LRP imports zennit when it runs."""
    code = (
        "import sys\n"
        "import xai_core.batch.runner, xai_core.cli  # a batch worker's preload, the command line\n"
        "from xai_core import explain, list_methods\n"
        "from xai_core.models.zoo import load_model\n"
        "from xai_core.video import load_video\n"
        "model = load_model('cnn_transformer-sides')\n"
        "assert 'lrp' in list_methods()\n"
        "explain(model, load_video('shapes:3', model=model), 'gradcam')\n"
        "heavy = ('zennit', 'torchvision', 'scipy.stats', 'torch._dynamo', 'captum', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "lstm = load_model('cnn_lstm-pause')\n"
        "explain(lstm, load_video('shapes:3?pause=1', model=lstm), 'lrp')\n"
        "print('zennit' in sys.modules)\n"
        "import importlib\n"
        "from xai_core.methods.machinery.registry import method_specs\n"
        "print(sorted({m for spec in method_specs() for m in spec.imports if importlib.import_module(m)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:3] == ["[]", "True", "['captum.attr', 'xai_core.methods.lrp.nets']"], done.stdout


def test_a_method_s_imports_are_module_names():
    with pytest.raises(TypeError, match=r"imports takes module names, a tuple: \('captum.attr',\)"):
        register("never_registered", family="spatial", imports="captum.attr")


def test_a_method_declares_what_else_a_model_must_be():
    """``applies(model)`` is asked after the capabilities and the task, and its reason is the answer."""

    def three_classes(model):
        return None if model.num_outputs == 3 else f"probe needs three classes; {model.name} has {model.num_outputs}"

    spec = MethodSpec("probe", lambda model, x, target: None, "spatial", applies=three_classes)
    assert spec.unavailable_reason(flat_model()) == "probe needs three classes; FlatModel has 2"
    assert spec.unavailable_reason(small_model("cnn_lstm")) is None
    cam = MethodSpec("probe", spec.fn, "spatial", requires=frozenset({"cam_layer"}), applies=three_classes)
    assert cam.unavailable_reason(flat_model()).startswith("probe needs a model with cam layer")


def test_every_method_declares_itself():
    for spec in method_specs():
        assert spec.family in ("spatial", "temporal", "motion")
        assert spec.description and spec.to_dict()["name"] == spec.name
    assert set(REGISTRY) >= {"gradcam"}


def test_nan_outputs_are_refused():
    model = small_model("cnn_lstm")
    x = small_input()
    x[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ModelError, match="NaN"):
        explain(model, x, "gradcam")


def test_wrong_input_shapes():
    model = small_model("cnn_lstm")
    with pytest.raises(ModelError, match="takes 64x64"):
        explain(model, torch.zeros(1, 8, 3, 32, 32), "gradcam")
    with pytest.raises(TypeError, match="takes a Clip"):
        explain(model, [1, 2, 3], "gradcam")


def test_explanation_save_and_load(tmp_path):
    model = small_model("cnn_transformer")
    expl = explain(model, small_input(), "gradcam", target=2)
    expl.save(tmp_path / "e")
    assert (tmp_path / "e" / "explanation.npz").exists() and (tmp_path / "e" / "explanation.json").exists()
    back = Explanation.load(tmp_path / "e")
    assert back.method == "gradcam" and back.target == expl.target and back.prediction == expl.prediction
    assert np.array_equal(back.spatial, expl.spatial) and np.array_equal(back.temporal, expl.temporal)
    assert np.array_equal(back.extras["cam_lowres"], expl.extras["cam_lowres"])
    assert back.params["layer"] == model.cam_layer_name and back.seconds > 0
    assert back.meta["target_description"] == "class 2 (pentagon)"


def test_explanation_checks_shapes():
    with pytest.raises(ValueError, match=r"\[T,H,W\]"):
        Explanation("m", {}, {}, "classification", {}, spatial=np.zeros((4, 4)))
    e = Explanation("m", {}, {}, "classification", {}, temporal=np.arange(5), extras={"spatial": np.zeros(2)})
    with pytest.raises(ValueError, match="shadow"):
        e._arrays()


def test_a_prediction_is_stated_one_way():
    classified = describe_prediction("classification", ["a", "b"], torch.tensor([[0.0, 1.0]]))
    assert prediction_text(classified) == "b (73.1%)"
    regressed = describe_prediction("regression", ["angle (degrees)"], torch.tensor([[123.456]]))
    assert prediction_text(regressed) == "angle (degrees) = 123.5"
