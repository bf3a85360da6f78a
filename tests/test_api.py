"""The Python API's prologue, ``prepare``, and how ``explain`` puts a method's Attribution into an
Explanation: the method computes maps, extras and facts; the context is filled in one place."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import small_input, small_model

from xai_core import explain, load_video, predict
from xai_core.api import prepare
from xai_core.explanation import Attribution, Explanation, Target
from xai_core.methods.machinery.registry import get_method, method_specs


def test_prepare_preprocesses_runs_the_model_once_and_resolves_the_target():
    model = small_model("cnn_lstm")
    clip = load_video("shapes:4", frames=8, size=(64, 64))
    prepared = prepare(model, clip, target="square")
    assert torch.equal(prepared.x, model.preprocess(clip))
    with torch.no_grad():
        assert torch.allclose(prepared.output, model(prepared.x))
    assert prepared.target == Target("class", index=1, label="square")
    assert prepared.prediction == predict(model, clip) and prepared.prediction["index"] == int(prepared.output.argmax())
    assert prepared.facts == {
        "source": clip.source,
        "clip_hash": clip.content_hash(),
        "frame_indices": [int(i) for i in clip.frame_indices],
    }
    predicted = prepare(model, prepared.x)  # a tensor; no target: the predicted class
    assert predicted.target.index == prepared.prediction["index"] and predicted.facts["source"] == "tensor"
    regression = prepare(small_model("r3d", task="regression"), prepared.x, target="ref=3")
    assert regression.target == Target("reference", value=3.0, label="angle")


def test_prepare_hands_the_model_back_in_its_mode():
    model = small_model("cnn_transformer").train()
    prepare(model, small_input())
    assert model.training and all(m.training for m in model.modules())


@pytest.mark.parametrize("method", ["gradcam", "occlusion", "frame_mask"])
def test_explain_is_the_method_on_the_prepared_clip_with_its_context(method):
    model, x = small_model("cnn_lstm"), small_input()
    spec = get_method(method)
    params = spec.resolve_params({"window": (1, 32, 32), "stride": (1, 32, 32)} if method == "occlusion" else {})
    prepared = prepare(model, x, target=2)
    result = spec.fn(model, prepared.x, prepared.target, **params)
    assert isinstance(result, Attribution) and not isinstance(result, Explanation)
    expl = explain(model, x, method, target=2, **params)
    assert (expl.method, expl.task, expl.model) == (method, model.task, model.name)
    assert expl.target == prepared.target.to_dict() and expl.prediction == prepared.prediction
    assert expl.params == {**params, **result.params}
    for name in ("spatial", "temporal"):
        mine, theirs = getattr(expl, name), getattr(result, name)
        assert (mine is None and theirs is None) or np.array_equal(mine, theirs)
    assert expl.extras.keys() == result.extras.keys()
    assert all(np.array_equal(expl.extras[k], v) for k, v in result.extras.items())
    assert expl.meta.items() >= {k: v for k, v in result.meta.items() if k not in ("seconds",)}.items()
    assert expl.meta["target_description"] == "class 2 (pentagon)" and expl.meta["source"] == "tensor"


def test_what_a_method_settles_goes_over_the_parameters():
    """Grad-CAM's layer None becomes the default layer's name; occlusion's windows become lists."""
    model = small_model("r3d")
    assert explain(model, small_input(), "gradcam").params == {"layer": model.cam_layer_name}
    occlusion = explain(model, small_input(), "occlusion", window="2,32,32", stride="2,32,32")
    assert occlusion.params["window"] == [2, 32, 32] and occlusion.params["stride"] == [2, 32, 32]


def test_no_method_fills_in_the_context():
    """Attribution has no field for what explain fills in: method, target, task, prediction."""
    fields = set(Attribution.__dataclass_fields__)
    assert fields == {"spatial", "temporal", "extras", "meta", "params"}
    assert all(spec.fn.__annotations__.get("return") in ("Attribution", Attribution) for spec in method_specs())
