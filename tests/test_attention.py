"""Attention over frames: CLS attention, rollout and attention pooling against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import small_input, small_model

from xai_core import Explanation, explain, list_methods
from xai_core.methods.attention import keep_top
from xai_core.methods.machinery.hooks import count_hooks
from xai_core.methods.machinery.registry import MethodError

ATTENTION = {"attention_cls", "attention_rollout", "attention_pool"}
ARCHS = ["cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm", "convlstm", "r3d"]
OFFERED = {"cnn_transformer": {"attention_cls", "attention_rollout"}, "cnn_lstm_attn": {"attention_pool"}}


def cls_attention_by_hand(model, x, layer: int = -1) -> np.ndarray:
    """Mean over heads of one layer's CLS row to the frames, from ``net.attention_maps``: [T]."""
    with torch.no_grad():
        maps = model.net.attention_maps(model.net.encode_frames(x))
    return maps[layer][0, :, 0, 1:].mean(0).numpy()


def bottom_zeroed(weights: np.ndarray, share: float) -> np.ndarray:
    """The smallest ``share`` of the entries (rounded down) set to 0."""
    out = weights.copy()
    out[np.argsort(weights)[: int(share * len(weights) + 1e-9)]] = 0
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_capabilities_decide_which_attention_methods_are_offered(arch):
    model = small_model(arch)
    caps = model.capabilities
    assert ("attention_layers" in caps) == (arch == "cnn_transformer")
    assert ("attention_pooling" in caps) == (arch == "cnn_lstm_attn")
    assert ATTENTION & set(list_methods(model)) == OFFERED.get(arch, set())


def test_unsupported_models_are_told_why():
    with pytest.raises(MethodError, match="attention_cls needs a model with attention layers, temporal attention"):
        explain(small_model("cnn_lstm"), small_input(), "attention_cls")
    with pytest.raises(MethodError, match="attention_pool needs a model with attention pooling"):
        explain(small_model("cnn_transformer"), small_input(), "attention_pool")


def test_keep_top_keeps_the_largest_share():
    weights = torch.tensor([0.05, 0.3, 0.1, 0.2, 0.15, 0.02, 0.08, 0.1, 0.0, 0.0])
    kept = keep_top(weights, 0.7)  # 7 of 10: the three smallest (0.0, 0.0, 0.02) go
    assert torch.equal(kept, torch.tensor([0.05, 0.3, 0.1, 0.2, 0.15, 0.0, 0.08, 0.1, 0.0, 0.0]))
    assert torch.equal(keep_top(weights, 1.0), weights)
    assert int((keep_top(torch.rand(8), 0.7) > 0).sum()) == 6  # ceil(5.6)
    assert int((keep_top(torch.rand(32) + 0.1, 0.7) > 0).sum()) == 23  # ceil(22.4)
    assert int((keep_top(torch.rand(9) + 0.1, 0.01) > 0).sum()) == 1


def test_attention_cls_is_the_last_layers_cls_row_with_the_bottom_30_percent_zeroed():
    model, x = small_model("cnn_transformer"), small_input()
    expl = explain(model, x, "attention_cls")
    by_hand = cls_attention_by_hand(model, x)
    assert expl.spatial is None and expl.temporal.shape == (8,) and expl.temporal.dtype == np.float32
    np.testing.assert_allclose(expl.extras["attention"], by_hand, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(expl.temporal, bottom_zeroed(by_hand, 0.3), rtol=1e-5, atol=1e-7)
    assert (expl.temporal == 0).sum() == 2 and expl.params == {"keep": 0.7}
    assert expl.extras["heads"].shape == (4, 8)
    # the CLS token's attention to itself and to the frames adds up to 1
    assert expl.extras["cls_self"][0] + by_hand.sum() == pytest.approx(1.0, abs=1e-5)
    # the model's own temporal_attention is the same row renormalised over the frames
    with torch.no_grad():
        renormalised = model.temporal_attention(x)[0].numpy()
    np.testing.assert_allclose(renormalised, by_hand / by_hand.sum(), rtol=1e-5)
    everything = explain(model, x, "attention_cls", keep=1.0)
    np.testing.assert_allclose(everything.temporal, by_hand, rtol=1e-5, atol=1e-7)


def test_attention_rollout_matches_a_slow_loop():
    model, x = small_model("cnn_transformer"), small_input()
    expl = explain(model, x, "attention_rollout", keep=0.5)
    with torch.no_grad():
        maps = [m[0].double().numpy() for m in model.net.attention_maps(model.net.encode_frames(x))]
    tokens = maps[0].shape[-1]
    rollout = np.eye(tokens)
    for layer in maps:  # one layer at a time, entry by entry
        averaged = np.zeros((tokens, tokens))
        for head in layer:
            averaged += head / len(layer)
        with_residual = averaged + np.eye(tokens)
        for i in range(tokens):
            with_residual[i] /= with_residual[i].sum()
        new = np.zeros((tokens, tokens))
        for i in range(tokens):
            for j in range(tokens):
                new[i, j] = sum(with_residual[i, k] * rollout[k, j] for k in range(tokens))
        rollout = new
    np.testing.assert_allclose(expl.extras["rollout"], rollout, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(expl.extras["rollout"].sum(1), 1.0, atol=1e-5)  # rows stay distributions
    np.testing.assert_allclose(expl.temporal, bottom_zeroed(rollout[0, 1:], 0.5), rtol=1e-4, atol=1e-7)
    assert not np.allclose(rollout[0, 1:], cls_attention_by_hand(model, x), rtol=0.05)  # not the last layer alone


def test_attention_pool_is_the_models_pooling_weights():
    model, x = small_model("cnn_lstm_attn"), small_input()
    expl = explain(model, x, "attention_pool", keep=1.0)
    net = model.net
    with torch.no_grad():  # the pooling weights, step by step from the net's parts
        outputs, _ = net.lstm(net.proj(net.encode_frames(x)))
        weights = torch.softmax(net.attn_score(outputs)[0, :, 0], dim=0).numpy()
        pooled = (torch.from_numpy(weights)[:, None] * outputs[0]).sum(0)
        assert torch.allclose(net.output_scale(net.head(pooled[None])), model(x), atol=1e-6)
    np.testing.assert_allclose(expl.temporal, weights, rtol=1e-5, atol=1e-8)
    assert expl.temporal.sum() == pytest.approx(1.0, abs=1e-5)
    default = explain(model, x, "attention_pool")
    np.testing.assert_allclose(default.temporal, bottom_zeroed(weights, 0.3), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("arch, method", [("cnn_transformer", m) for m in sorted(OFFERED["cnn_transformer"])])
def test_no_hooks_any_target_regression_and_save(arch, method, tmp_path):
    model = small_model(arch, task="regression").train()
    expl = explain(model, small_input(), method, target="ref=90")
    assert count_hooks(model) == 0 and model.training
    assert np.isfinite(expl.temporal).all() and (expl.temporal >= 0).all() and expl.temporal.max() > 0
    back = Explanation.load(expl.save(tmp_path / method))
    assert back.spatial is None and np.array_equal(back.temporal, expl.temporal)
    assert np.array_equal(back.extras["attention"], expl.extras["attention"])
    assert back.target["kind"] == "reference"
