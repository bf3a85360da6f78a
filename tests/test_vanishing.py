"""The vanishing-saliency profile (002), the attention strip and the shared timeline's curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import small_input, small_model

from xai_core import render
from xai_core.explanation import Explanation
from xai_core.vanishing import early_late_ratio, gradient_profile, peer_model


def slow_profile(model, x: torch.Tensor, index: int) -> np.ndarray:
    """Mean |d logit / d x| per frame by plain autograd, one frame at a time."""
    x = x.clone().requires_grad_(True)
    model(x)[0, index].backward()
    return np.array([x.grad[0, t].abs().mean().item() for t in range(x.shape[1])])


@pytest.mark.parametrize("arch", ["cnn_lstm", "ica_lstm", "r3d"])
def test_profile_matches_plain_autograd(arch):
    model, x = small_model(arch), small_input()
    predicted = int(model(x).argmax())
    ours, ours_2 = gradient_profile(model, x), gradient_profile(model, x, target=2)
    assert not model.training and all(p.grad is None for p in model.parameters())  # nothing left behind
    assert ours.shape == (8,) and (ours > 0).all()
    assert np.allclose(ours, slow_profile(model, x, predicted), rtol=1e-5, atol=1e-12)
    model.zero_grad(set_to_none=True)
    assert np.allclose(ours_2, slow_profile(model, x, 2), rtol=1e-5, atol=1e-12)


def test_profile_of_a_regression_reference_target():
    model, x = small_model("cnn_lstm", task="regression"), small_input()
    with torch.no_grad():
        y = float(model(x))
    output = slow_profile(model, x, 0)
    assert np.allclose(gradient_profile(model, x, target="ref=10"), 2 * abs(y - 10) * output, rtol=1e-4)


def test_early_late_ratio():
    profile = np.array([1.0, 1, 2, 2, 4, 4, 8, 8])
    assert early_late_ratio(profile) == pytest.approx(1 / 8)
    padded = np.array([False] * 6 + [True] * 2)  # padding is left out: real frames 1,1,2,2,4,4
    assert early_late_ratio(profile, padded) == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="two real frames"):
        early_late_ratio(profile, np.array([True] * 7 + [False]))


def test_peer_models():
    names = ["cnn_lstm-pause", "ica_lstm-pause", "cnn_lstm-sides"]
    assert peer_model("cnn_lstm-pause", "cnn_lstm", names) == "ica_lstm-pause"
    assert peer_model("ica_lstm-pause", "ica_lstm", names) == "cnn_lstm-pause"
    assert peer_model("cnn_lstm-sides", "cnn_lstm", names) is None  # no ica_lstm-sides
    assert peer_model("r3d-sides", "r3d", names) is None
    assert peer_model("my_model", "cnn_lstm", names) is None


def test_attention_strip_colours_each_frame_by_its_weight():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (5, 40, 40, 3), dtype=np.uint8)
    weights = np.array([0.0, 0.5, 1.0, 0.25, 2.0])
    strip = render.attention_strip(frames, weights, selected=None, thumb=20, bar=6, gap=2)
    assert strip.shape == (26, 5 * 22 - 2, 3) and strip.dtype == np.uint8
    expected = render.colorize((weights / 2.0)[None], "viridis")[0]
    for t in range(5):
        assert (strip[22, t * 22 + 10] == expected[t]).all()
    assert (strip[:20, 20:22] == 255).all()  # the gap
    marked = render.attention_strip(frames, weights, selected=3, thumb=20, bar=6, gap=2)
    assert (marked[0, 66:86] == 255).all() and not (strip[0, 66:86] == 255).all()
    with pytest.raises(ValueError, match="5 frames but 4 weights"):
        render.attention_strip(frames, weights[:4])


def test_timeline_adds_the_lrp_maximum_curve():
    def expl(method, temporal, extras=None):
        return Explanation(method, {}, {}, "classification", {}, temporal=temporal, extras=extras or {})

    curves = render.timeline_curves(
        {"gradcam": expl("gradcam", np.ones(4)), "lrp": expl("lrp", np.arange(4.0), {"relevance_max": np.full(4, 3.0)})}
    )
    assert list(curves) == ["gradcam", "lrp", "lrp (max)"] and (curves["lrp (max)"] == 3).all()
    figure = render.profile_figure({"a": np.array([1.0, 0.1])}, padded=np.array([False, True]))
    assert figure.layout.yaxis.type == "log" and len(figure.data) == 1
