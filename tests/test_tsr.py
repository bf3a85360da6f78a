"""TSR (two-step and one-step): the method against algorithm 1 of 002 written out as loops with
plain autograd gradients (float64), for the fast gradient engine and the reference engine, on
every zoo architecture; superpixel features; the parameters' checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import small_input, small_model

from xai_core.explanation import resolve_target
from xai_core.methods.machinery.perturbation import Perturbation
from xai_core.methods.machinery.registry import MethodError, get_method
from xai_core.methods.machinery.relevance_change import GradientChange, ReferenceChange, gradient_change_applies

ARCHS = ("cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm", "convlstm", "r3d")
TOLERANCE = 1e-5
# masks of TSR's engines compared with the reference loop: a frame, frames, boxes, a strip over two frames
MASKS = (Perturbation(0, 1), Perturbation(3, 6), Perturbation(7, 8, (5, 40, 0, 20)), Perturbation(0, 2, (0, 9, 0, 64)))


def run(model, x, name: str, target=1, **params):
    spec = get_method(name)
    with torch.inference_mode():
        resolved = resolve_target(model.task, model.labels, target, model(x))
    return spec.fn(model, x, resolved, **spec.resolve_params(params))


def saliency(model, x: torch.Tensor, index: int, times_input: bool = False) -> torch.Tensor:
    """d logit / d x summed over colour channels [T,H,W] (times x first for input x gradient)."""
    leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf)[0, index], leaf)
    return ((grad * x) if times_input else grad)[0].sum(1)


def slow_tsr(model, x, index: int, block: int, quantile: float, times_input: bool = False):
    """Algorithm 1 of 002 with R = saliency (or input x gradient), black masks, grid features."""
    black = model.pixel_value(0, device=x.device).to(x.dtype)[0, 0]
    frames, height, width = x.shape[1], x.shape[3], x.shape[4]
    base = saliency(model, x, index, times_input)
    time = torch.zeros(frames, dtype=torch.float64)
    for t in range(frames):
        masked = x.clone()
        masked[0, t] = black
        time[t] = (base - saliency(model, masked, index, times_input)).abs().sum()
    alpha = torch.quantile(time, quantile)
    out = torch.zeros(frames, height, width, dtype=torch.float64)
    for t in range(frames):
        if time[t] <= alpha:
            continue
        for y in range(0, height, block):
            for x0 in range(0, width, block):
                masked = x.clone()
                masked[0, t, :, y : y + block, x0 : x0 + block] = black
                feature = (base - saliency(model, masked, index, times_input)).abs().sum()
                out[t, y : y + block, x0 : x0 + block] = feature * time[t]
    return out, time, base


@pytest.mark.parametrize("arch", ARCHS)
def test_tsr_equals_algorithm_1(arch):
    model, x = small_model(arch).double(), small_input().double()
    block = 16 if arch == "cnn_transformer" else 32  # 16 or 4 features a frame
    expected, time, base = slow_tsr(model, x, 1, block=block, quantile=0.55)
    expl = run(model, x, "tsr", block=block)
    fast = arch in ("cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm")  # the ConvLSTM's maps are too wide
    engine = "GradientChange" if fast else "BatchedGradients" if arch == "r3d" else "ReferenceChange"
    assert expl.meta["engine"] == engine
    np.testing.assert_allclose(expl.temporal, time.numpy(), rtol=0, atol=TOLERANCE * float(time.max()))
    np.testing.assert_allclose(expl.extras["base_map"], base.numpy(), rtol=0, atol=1e-6 * float(base.abs().max()))
    scale = float(expected.max() - expected.min())
    assert scale > 0
    np.testing.assert_allclose(expl.spatial, expected.numpy(), rtol=0, atol=TOLERANCE * scale)
    assert expl.extras["selected"].sum() == int((time > torch.quantile(time, 0.55)).sum())
    assert expl.meta["evaluations"] == 8 + 1 + int(expl.extras["selected"].sum()) * (64 // block) ** 2


@pytest.mark.parametrize("arch", ["cnn_transformer", "ica_lstm"])
def test_input_x_gradient_and_one_step(arch):
    model, x = small_model(arch).double(), small_input().double()
    expected, time, base = slow_tsr(model, x, 1, block=32, quantile=0.5, times_input=True)
    expl = run(model, x, "tsr", base="input_x_gradient", block=32, alpha_quantile=0.5)
    scale = float(expected.max() - expected.min())
    np.testing.assert_allclose(expl.spatial, expected.numpy(), rtol=0, atol=TOLERANCE * scale)
    one = run(model, x, "tsr_onestep", base="input_x_gradient")
    rescaled = base * time[:, None, None]
    np.testing.assert_allclose(one.spatial, rescaled.numpy(), rtol=0, atol=TOLERANCE * float(rescaled.abs().max()))
    np.testing.assert_allclose(one.temporal, time.numpy(), rtol=0, atol=TOLERANCE * float(time.max()))


def test_both_engines_agree_with_another_base_and_masks():
    """GradientChange and ReferenceChange on windows, boxes and the blur baseline; a CAM base
    takes the reference engine."""
    model, x = small_model("cnn_lstm").double(), small_input().double()
    target = resolve_target(model.task, model.labels, 2)
    masks = list(MASKS)
    fast = GradientChange(model, x, target, "saliency", "blur", 3.0).deltas(masks)
    slow = ReferenceChange(model, x, target, "saliency", {}, "blur", 3.0).deltas(masks)
    assert (fast - slow).abs().max() <= TOLERANCE * float(slow.max())
    assert not gradient_change_applies(model, "gradcam")
    expl = run(model, x, "tsr", base="gradcam", block=32)
    assert expl.meta["engine"] == "ReferenceChange" and np.isfinite(expl.spatial).all()


@pytest.mark.parametrize("base", ["saliency", "input_x_gradient"])
def test_batched_gradients_equal_the_reference_loop_on_a_3d_cnn(base):
    """BatchedGradients (several perturbed clips a backward pass) against one base attribution per
    mask, float64, with batches that do not divide the masks; other bases are refused."""
    from xai_core.methods.machinery.relevance_change import BatchedGradients

    model, x = small_model("r3d").double(), small_input().double()
    target = resolve_target(model.task, model.labels, 2)
    masks = list(MASKS) + [Perturbation(t, t + 1, (16, 32, 16, 32)) for t in range(8)]
    with torch.inference_mode(False):
        batched = BatchedGradients(model, x, target, base, "blur", 3.0, clips=5)
        fast = batched.deltas(masks)
        slow = ReferenceChange(model, x, target, base, {}, "blur", 3.0).deltas(masks)
    assert torch.equal(batched.relevance, ReferenceChange(model, x, target, base, {}, "blur", 3.0).relevance)
    assert (fast - slow).abs().max() <= TOLERANCE * float(slow.max()) and float(slow.min()) > 0
    with pytest.raises(ValueError, match="not gradcam"):
        BatchedGradients(model, x, target, "gradcam", "zero", 5.0)


def test_superpixel_features_and_a_fixed_alpha():
    model, x = small_model("cnn_transformer").double(), small_input().double()
    expl = run(model, x, "tsr", features="slic", segments=6, alpha=0.0)
    labels = expl.extras["segments"]
    assert labels.shape == (8, 64, 64) and expl.extras["selected"].all()  # every frame has dt > 0
    relevance = expl.extras["feature_relevance"]
    for t in range(8):  # each superpixel's pixels carry its relevance times the frame's
        for label in range(int(labels[t].max()) + 1):
            values = expl.spatial[t][labels[t] == label]
            expected = relevance[t, label] * expl.temporal[t]
            np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-12)
        assert np.isnan(relevance[t, int(labels[t].max()) + 1 :]).all()


def test_tsr_refuses_what_it_cannot_do():
    model, x = small_model("cnn_transformer").double(), small_input().double()
    with pytest.raises(MethodError, match="needs a spatial base method; frame_mask is temporal"):
        run(model, x, "tsr", base="frame_mask")
    with pytest.raises(MethodError, match="lrp needs a model with lrp rules"):
        run(model, x, "tsr", base="lrp")
    with pytest.raises(MethodError, match="unknown method"):
        run(model, x, "tsr", base="nope")
    with pytest.raises(MethodError, match="cannot rescale itself"):
        run(model, x, "tsr_onestep", base="tsr")


def test_a_jacobian_sample_holds_the_first_rows_exactly_and_zeros_after():
    """The plan's timing sample: the first rows of the Jacobians are the engine's own, the rest 0."""
    from xai_core.methods.machinery.relevance_change import JACOBIAN_CHUNK

    model, x = small_model("cnn_transformer").double(), small_input().double()
    target = resolve_target(model.task, model.labels, 1)
    whole = GradientChange(model, x, target, "saliency", "zero", 5.0)
    sample = GradientChange(model, x, target, "saliency", "zero", 5.0, jacobian_rows=JACOBIAN_CHUNK)
    assert whole.feature_dim > JACOBIAN_CHUNK and len(sample.jacobian_chunk_seconds) == 1
    assert len(whole.jacobian_chunk_seconds) == -(-whole.feature_dim // JACOBIAN_CHUNK)
    for which in ("cur", "prev"):
        for (w_values, w_cols), (s_values, s_cols) in zip(whole.jacobian[which], sample.jacobian[which], strict=True):
            dense_w = torch.zeros(whole.feature_dim, 64 * 64, dtype=torch.float64)
            dense_s = torch.zeros_like(dense_w)
            dense_w[:, w_cols], dense_s[:, s_cols] = w_values, s_values
            assert torch.equal(dense_s[:JACOBIAN_CHUNK], dense_w[:JACOBIAN_CHUNK])
            assert not dense_s[JACOBIAN_CHUNK:].any()


def test_the_plan_counts_tsr_masks_and_names_the_engine_it_timed():
    """On a decoupled model the plan times the gradient engine (Jacobian passes, then masks); on
    a 3D CNN one base attribution per mask.  Counts: the clip's map and one per mask."""
    from xai_core.methods.machinery.planning import plan, sample_masks

    x = small_input()
    params = get_method("tsr").resolve_params({"block": 32, "alpha_quantile": 0.5})
    fast_model = small_model("cnn_transformer")
    target = resolve_target(fast_model.task, fast_model.labels, 1)
    fast = plan(fast_model, x, target, "tsr", params)
    assert fast.evaluations == 8 + 1 + 4 * 4 and fast.seconds > 0  # 8 frames, 4 of them x 2x2 blocks
    assert fast.note.startswith("gradient engine:") and "Jacobian passes" in fast.note and "24 masks" in fast.note
    batched = plan(small_model("r3d"), x, target, "tsr", params)
    assert batched.evaluations == fast.evaluations and "saliency maps, 4 a backward pass" in batched.note
    slow = plan(small_model("r3d"), x, target, "tsr", {**params, "engine": "reference"})
    assert slow.evaluations == fast.evaluations and "saliency attributions" in slow.note
    reference = plan(fast_model, x, target, "tsr", {**params, "engine": "reference"})
    assert "saliency attributions" in reference.note
    onestep = plan(fast_model, x, target, "tsr_onestep", get_method("tsr_onestep").resolve_params({}))
    assert onestep.evaluations == 9 and "8 masks" in onestep.note
    masks = sample_masks(8, 64, 64, 32)
    assert len(masks) == 16 and all(m.stop == m.start + 1 and 0 <= m.start < 8 for m in masks)
    assert {m.box is None for m in masks} == {True, False}  # whole frames and blocks, as TSR makes them
