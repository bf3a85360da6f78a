"""Frame masking and occlusion: the fast engine against a slow loop written from the definition,
and against Captum's Occlusion / FeatureAblation, on every zoo architecture (float64, so that
only the algorithm can differ, not float rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import FeatureAblation, Occlusion
from conftest import small_input, small_model

import xai_core
from xai_core.explanation import resolve_target
from xai_core.methods.machinery.engine import PerturbationEngine, strategy_for
from xai_core.methods.machinery.perturbation import Perturbation
from xai_core.methods.machinery.planning import evaluations
from xai_core.methods.machinery.registry import MethodError, get_method
from xai_core.methods.machinery.scoring import TargetScore
from xai_core.methods.machinery.windows import occlusion_windows, window_starts

ARCHS = ("cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm", "convlstm", "r3d")
TOLERANCE = 1e-5  # of the score's range over the perturbations (the bound)


def double_model(arch: str, **config):
    return small_model(arch, **config).double()


def run(model, x, name: str, target=1, **params):
    """A registered method called directly (explain() would cast the clip to float32)."""
    spec = get_method(name)
    with torch.inference_mode():
        resolved_target = resolve_target(model.task, model.labels, target, model(x))
    return spec.fn(model, x, resolved_target, **spec.resolve_params(params))


def black(model, x: torch.Tensor) -> torch.Tensor:
    return model.pixel_value(0, device=x.device).to(x.dtype)[0, 0]  # [3,1,1]


def slow_drop(model, x, target_index: int, frames: range, box=None, fill=None) -> float:
    """score(x) - score(x with ``frames`` (and ``box``) set to black, or to ``fill`` frames)."""
    masked = x.clone()
    y0, y1, x0, x1 = box or (0, x.shape[3], 0, x.shape[4])
    for t in frames:
        masked[0, t, :, y0:y1, x0:x1] = (fill[t] if fill is not None else black(model, x))[..., y0:y1, x0:x1]
    with torch.inference_mode():
        return float(model(x)[0, target_index] - model(masked)[0, target_index])


@pytest.mark.parametrize("arch", ARCHS)
def test_frame_mask_equals_the_slow_loop_and_captum(arch):
    model, x = double_model(arch), small_input().double()
    expl = run(model, x, "frame_mask")
    slow = np.array([slow_drop(model, x, 1, range(t, t + 1)) for t in range(x.shape[1])])
    scale = np.ptp(slow)
    assert np.abs(expl.extras["window_drops"] - slow).max() <= TOLERANCE * scale
    np.testing.assert_allclose(expl.temporal, slow, atol=TOLERANCE * scale, rtol=0)
    forward = TargetScore(model, resolve_target(model.task, model.labels, 1))
    frame_ids = torch.arange(x.shape[1]).view(1, -1, 1, 1, 1).expand_as(x)
    captum = FeatureAblation(forward).attribute(x, feature_mask=frame_ids, baselines=black(model, x), target=0)
    np.testing.assert_allclose(expl.temporal, captum[0, :, 0, 0, 0].numpy(), atol=TOLERANCE * scale, rtol=0)
    assert expl.meta["strategy"] == ("whole" if arch == "r3d" else "split")
    assert expl.meta["incremental"] == (arch == "r3d")  # the 3D CNN's masked frames, layer by layer


@pytest.mark.parametrize("arch", ARCHS)
def test_frame_windows_and_the_previous_frame_baseline(arch):
    model, x = double_model(arch), small_input().double()
    expl = run(model, x, "frame_mask", window=3, baseline="previous")
    frames = x.shape[1]
    drops = []
    for start in range(frames - 2):
        held = x[0, start - 1] if start > 0 else black(model, x).expand_as(x[0, 0])
        drops.append(slow_drop(model, x, 1, range(start, start + 3), fill={t: held for t in range(frames)}))
    drops = np.array(drops)
    assert np.abs(expl.extras["window_drops"] - drops).max() <= TOLERANCE * np.ptp(drops)
    # each frame: the mean drop of the windows that cover it
    covering = [[s for s in range(frames - 2) if s <= t < s + 3] for t in range(frames)]
    np.testing.assert_allclose(expl.temporal, [drops[c].mean() for c in covering], atol=TOLERANCE * np.ptp(drops))


@pytest.mark.parametrize("arch", ARCHS)
def test_occlusion_equals_captum_and_the_slow_loop(arch):
    model, x = double_model(arch), small_input().double()
    expl = run(model, x, "occlusion", window=(2, 16, 16), stride=(1, 12, 12), baseline="mean")
    forward = TargetScore(model, resolve_target(model.task, model.labels, 1))
    mean = x.mean(1, keepdim=True).expand_as(x)
    captum = Occlusion(forward).attribute(
        x, sliding_window_shapes=(2, 3, 16, 16), strides=(1, 3, 12, 12), baselines=mean, target=0
    )[0, :, 0]
    scale = float(captum.max() - captum.min())
    np.testing.assert_allclose(expl.spatial, captum.numpy(), atol=TOLERANCE * scale, rtol=0)
    # one window, by hand
    window = occlusion_windows((8, 64, 64), (2, 16, 16), (1, 12, 12))[5]
    drop = slow_drop(model, x, 1, window.frames, window.box, fill=mean[0])
    engine = PerturbationEngine(model, x, resolve_target(model.task, model.labels, 1), "mean")
    assert float(engine.base_score - engine.scores([window])[0]) == pytest.approx(drop, abs=TOLERANCE * scale)


@pytest.mark.parametrize(
    "config",
    [{"motion_gate": "difference"}, {"object_readout": False}, {"motion_input": False}, {"coord_channels": True}],
)
def test_the_regional_path_for_other_frame_encoders(config):
    """Other gates and readouts: the shortcut applies or falls back, the numbers stay exact."""
    model, x = double_model("cnn_lstm", **config), small_input().double()
    target = resolve_target(model.task, model.labels, 1)
    windows = occlusion_windows((8, 64, 64), (1, 8, 8), (1, 8, 8))[::3]
    fast = PerturbationEngine(model, x, target, "blur").scores(windows)
    whole = PerturbationEngine(model, x, target, "blur", strategy="whole").scores(windows)
    assert (fast - whole).abs().max() <= TOLERANCE * float(whole.max() - whole.min())


def test_superpixel_perturbations_change_only_their_pixels():
    model, x = double_model("cnn_transformer"), small_input().double()
    target = resolve_target(model.task, model.labels, 0)
    pixels = torch.zeros(20, 20, dtype=torch.bool)
    pixels[5:12, 3:9] = True
    p = Perturbation(2, 3, (10, 30, 20, 40), pixels)
    engine = PerturbationEngine(model, x, target, "zero")
    masked = engine.perturbed(p)
    changed = (masked != x).any(2)[0]
    assert changed[2, 15:22, 23:29].all() and changed.sum() == changed[2, 15:22, 23:29].sum()
    with torch.inference_mode():
        slow = float(model(masked)[0, 0])
    assert float(engine.scores([p])[0]) == pytest.approx(slow, abs=1e-9)


def test_probability_measure_and_its_limits():
    model, x = double_model("cnn_lstm"), small_input().double()
    expl = run(model, x, "frame_mask", measure="probability")
    with torch.inference_mode():
        base = model(x).softmax(-1)[0, 1]
    assert expl.meta["base_score"] == pytest.approx(float(base))
    assert (np.abs(expl.extras["window_scores"]) <= 1).all()
    regression = small_model("cnn_lstm", task="regression").double()
    with pytest.raises(ValueError, match="probability is only defined for a class target"):
        run(regression, x, "frame_mask", target=None, measure="probability")


def test_windows_follow_captum_and_parameters_are_checked():
    assert window_starts(112, 10, 10)[-2:] == [(100, 110), (110, 112)]  # the last window cut at the border
    assert len(window_starts(112, 10, 10)) == 12
    with pytest.raises(ValueError, match="skip pixels"):
        window_starts(64, 4, 8)
    assert evaluations("occlusion", 32, 112, 112, {}) == 32 * 12 * 12
    assert evaluations("frame_mask", 32, 112, 112, {"window": 4}) == 29
    with pytest.raises(MethodError, match="must be 3 integers"):
        get_method("occlusion").resolve_params({"window": "1,10"})
    assert get_method("occlusion").resolve_params({"window": "2, 8, 8"})["window"] == (2, 8, 8)
    assert strategy_for(small_model("r3d")) == "whole" and strategy_for(small_model("convlstm")) == "split"


@pytest.mark.parametrize("arch", ["cnn_transformer", "convlstm", "r3d"])
def test_subset_scores_equal_masked_clips(arch):
    """Any set of masked frames (deletion / insertion steps): the lookup of per-frame variants
    against whole masked clips."""
    model, x = double_model(arch), small_input().double()
    target = resolve_target(model.task, model.labels, 2)
    engine = PerturbationEngine(model, x, target, "blur", blur_sigma=2.0)
    subsets = torch.tensor(
        [[0, 0, 0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 0, 0, 0, 1], [0, 1, 1, 1, 1, 1, 1, 1], [1] * 8], dtype=torch.bool
    )
    fill = engine.fill
    with torch.inference_mode():
        slow = torch.stack([model(torch.where(m[None, :, None, None, None], fill, x))[0, 2] for m in subsets]).double()
    fast = engine.subset_scores(subsets)
    assert (fast - slow).abs().max() <= 1e-9 * max(1.0, float(slow.abs().max()))
    with pytest.raises(ValueError, match="not 'previous'"):
        PerturbationEngine(model, x, target, "previous").subset_scores(subsets)


def test_the_gated_zoo_model_on_a_moving_shapes_clip():
    """The gated zoo model on a real clip, where its readout mask covers the moving shape only:
    most windows reach no cell under the mask (no CNN pass), some shift the frame's background
    colour (the front part again) -- every score still equals the whole perturbed clip's."""
    model = xai_core.load_model("cnn_transformer-sides-gated", device="cpu").double()
    x = model.preprocess(xai_core.load_video("shapes:1", model=model)).double()
    with torch.inference_mode():
        target = resolve_target(model.task, model.labels, None, model(x))
    windows = occlusion_windows(tuple(x.shape[i] for i in (1, 3, 4)), (1, 10, 10), (1, 10, 10))[::37]
    windows += [Perturbation(t, t + 1) for t in range(0, x.shape[1], 3)]  # whole frames
    engine = PerturbationEngine(model, x, target, "zero")
    assert engine.regional is not None and engine.regional.restricted
    refronted = []
    original = engine.regional._changed_front

    def counting(frames, prev, cur):
        refronted.append(len(frames))
        return original(frames, prev, cur)

    engine.regional._changed_front = counting
    fast = engine.scores(windows)
    slow = PerturbationEngine(model, x, target, "zero", strategy="whole").scores(windows)
    assert (fast - slow).abs().max() <= 1e-9 * float(slow.max() - slow.min())
    assert sum(refronted) > 10  # background or mask changed: the front part ran again
    assert (fast == engine.base_score).float().mean() > 0.3  # windows whose change the readout never sees
