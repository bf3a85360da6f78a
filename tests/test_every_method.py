"""Every registered method on every zoo architecture that supports it: shapes, finite values, no
hooks or gradients left, weights and mode unchanged; the others refused with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL_SPEC, small_input, small_model

from xai_core import explain
from xai_core.methods.machinery.hooks import count_hooks
from xai_core.methods.machinery.registry import MethodError, method_specs

ARCHS = ("cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm", "convlstm", "r3d")
FAST = {"samples": 2, "steps": 4, "block": 32, "window": (1, 32, 32), "stride": (1, 32, 32)}  # a quick grid
SPATIAL = {"gradcam", "gradcam_pp", "guided_gradcam", "saliency", "input_x_gradient", "smoothgrad"}
SPATIAL |= {"integrated_gradients", "occlusion", "tsr", "tsr_onestep", "frame_mask", "flow_gradient", "smoothflow"}
SPATIAL |= {"trajectories"}
# What each architecture must support (a capability lost or gained by mistake fails here).
SUPPORTED = {
    "cnn_transformer": SPATIAL | {"attention_cls", "attention_rollout"},
    "cnn_lstm": SPATIAL | {"lrp"},
    "cnn_lstm_attn": SPATIAL | {"lrp", "attention_pool"},
    "ica_lstm": SPATIAL | {"lrp"},
    "convlstm": SPATIAL | {"lrp"},
    "r3d": SPATIAL | {"lrp"},
}


def fast_params(spec, values: dict = FAST, trajectory_grid: int = 16) -> dict:
    """The method's parameters among ``values`` (a quick grid), frame masking on single frames,
    trajectories over 4 frames from a coarse grid."""
    params = {p.name: values[p.name] for p in spec.params if p.name in values}
    if spec.name == "frame_mask":
        params.pop("window")
    if spec.name == "trajectories":
        params.update(window=4, grid=trajectory_grid)
    return params


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_method_on_every_architecture(arch, task):
    model, x = small_model(arch, task=task), small_input()
    model.train()  # explain() evaluates in eval mode and must hand the model back as it was
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    offered = {s.name for s in method_specs(model)}
    assert offered == SUPPORTED[arch]
    target = 1 if task == "classification" else "ref=45"
    t, h, w = SMALL_SPEC.frames, SMALL_SPEC.height, SMALL_SPEC.width
    for spec in method_specs():
        if spec.name not in offered:
            with pytest.raises(MethodError, match=f"{spec.name} needs a model with"):
                explain(model, x, spec.name, target=target)
            continue
        expl = explain(model, x, spec.name, target=target, **fast_params(spec))
        assert expl.method == spec.name and expl.task == task
        assert expl.temporal.shape == (t,) and np.isfinite(expl.temporal).all(), spec.name
        if spec.family in ("spatial", "motion"):
            assert expl.spatial.shape == (t, h, w) and np.isfinite(expl.spatial).all(), spec.name
            assert np.abs(expl.spatial).max() > 0, spec.name
        else:
            assert expl.spatial is None, spec.name
            if spec.name.startswith("attention"):  # weights; frame masking's drops can be negative
                assert (expl.temporal >= 0).all(), spec.name
        for name, value in expl.extras.items():
            assert np.isfinite(value).all(), (spec.name, name)
        assert count_hooks(model) == 0, spec.name
        assert model.training, spec.name
        assert all(p.grad is None for p in model.parameters()), spec.name
        assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items()), spec.name
