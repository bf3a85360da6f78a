"""The gradient family (saliency, input x gradient, SmoothGrad, integrated gradients) against Captum
called directly on the same model and clip, integrated gradients' completeness, regression targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency
from conftest import SMALL_SPEC, small_input, small_model

from xai_core import explain
from xai_core.methods.machinery.hooks import count_hooks
from xai_core.methods.machinery.registry import MethodError
from xai_core.methods.machinery.smoothing import clips_per_pass

GRADIENT_METHODS = ["saliency", "input_x_gradient", "smoothgrad", "integrated_gradients"]
FAST = {"smoothgrad": {"samples": 3}, "integrated_gradients": {"steps": 6}}
REFERENCE = 90.0


def leaf(x: torch.Tensor) -> torch.Tensor:
    """A copy of the clip that requires a gradient (Captum's input)."""
    return x.clone().requires_grad_(True)


def channel_sum(attribution: torch.Tensor) -> np.ndarray:
    """Captum's [1,T,C,H,W] -> [T,H,W] summed over the colour channels."""
    return attribution.detach()[0].sum(1).numpy()


def assert_close(ours: np.ndarray, reference: np.ndarray, rtol: float = 1e-4) -> None:
    """Equal up to float noise, relative to the map's largest magnitude."""
    scale = np.abs(reference).max()
    assert scale > 0
    np.testing.assert_allclose(ours, reference, rtol=rtol, atol=rtol * scale)


def black(x: torch.Tensor) -> torch.Tensor:
    """Black pixels normalised with the small spec's mean / std, written out here."""
    mean = torch.tensor(SMALL_SPEC.mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(SMALL_SPEC.std).view(1, 1, 3, 1, 1)
    return ((0.0 - mean) / std).expand_as(x).contiguous()  # torch's median misreads stride-0 tensors


def blurred(x: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Each frame and channel blurred by a Gaussian truncated at 3 sigma (mirror padding), with numpy."""
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = x.numpy().astype(np.float64)
    for axis in (-2, -1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        length = out.shape[axis]
        out = sum(w * np.take(padded, range(i, i + length), axis=axis) for i, w in enumerate(taps))
    return torch.from_numpy(out).float()


BASELINES = {"black": black, "blur": blurred, "mean": lambda x: x.mean(1, keepdim=True).expand_as(x).contiguous()}


@pytest.mark.parametrize("arch", ["cnn_transformer", "r3d"])
def test_saliency_and_input_x_gradient_match_captum(arch):
    model, x = small_model(arch), small_input()
    sal = explain(model, x, "saliency", target=2)
    reference = channel_sum(Saliency(model).attribute(leaf(x), target=2, abs=False))
    assert sal.spatial.shape == (8, 64, 64)
    assert_close(sal.spatial, reference)
    assert (sal.spatial < 0).any() and (sal.spatial > 0).any()  # signed: not Captum's default abs
    np.testing.assert_allclose(sal.temporal, np.abs(reference).mean((1, 2)), rtol=1e-4)

    ixg = explain(model, x, "input_x_gradient", target=2)
    reference = channel_sum(InputXGradient(model).attribute(leaf(x), target=2))
    assert_close(ixg.spatial, reference)
    np.testing.assert_allclose(ixg.temporal, reference.sum((1, 2)), rtol=1e-4, atol=1e-9)


def test_smoothgrad_matches_captum_with_the_same_noise():
    model, x = small_model("cnn_transformer"), small_input()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    ours = explain(model, x, "smoothgrad", target=1, samples=5, sigma=0.2, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left as it was

    stdev = 0.2 * float(x.max() - x.min())
    torch.manual_seed(7)
    reference = NoiseTunnel(Saliency(model)).attribute(
        leaf(x),
        nt_type="smoothgrad",
        nt_samples=5,
        nt_samples_batch_size=clips_per_pass(x.device),
        stdevs=stdev,
        target=1,
        abs=False,
    )
    assert_close(ours.spatial, channel_sum(reference))
    assert ours.meta["noise_std"] == pytest.approx(stdev)
    assert not np.allclose(ours.spatial, explain(model, x, "saliency", target=1).spatial, rtol=0.05)
    again = explain(model, x, "smoothgrad", target=1, samples=5, sigma=0.2, seed=7)
    other_seed = explain(model, x, "smoothgrad", target=1, samples=5, sigma=0.2, seed=8)
    assert np.array_equal(again.spatial, ours.spatial) and not np.allclose(other_seed.spatial, ours.spatial)
    no_noise = explain(model, x, "smoothgrad", target=1, samples=2, sigma=0.0)
    assert_close(no_noise.spatial, explain(model, x, "saliency", target=1).spatial)


@pytest.mark.parametrize("baseline", list(BASELINES))
def test_integrated_gradients_match_captum_and_are_complete(baseline):
    """Completeness: the attributions add up to score(x) - score(baseline), within 3% of that
    difference at 64 Gauss-Legendre steps on this small random model."""
    model, x = small_model("cnn_transformer"), small_input()
    reference_clip = BASELINES[baseline](x)
    expl = explain(model, x, "integrated_gradients", target=1, steps=64, baseline=baseline)
    captum = IntegratedGradients(model).attribute(leaf(x), baselines=reference_clip, target=1, n_steps=64)
    assert_close(expl.spatial, channel_sum(captum), rtol=1e-3)

    with torch.no_grad():
        difference = (model(x)[0, 1] - model(reference_clip)[0, 1]).item()
    assert abs(difference) > 1e-4
    assert expl.spatial.sum() == pytest.approx(difference, rel=0.03)
    assert expl.temporal.sum() == pytest.approx(difference, rel=0.03)  # the frames' shares
    assert expl.meta["score"] - expl.meta["baseline_score"] == pytest.approx(difference, rel=1e-4)
    assert abs(expl.meta["convergence_delta"]) <= 0.03 * abs(difference)


@pytest.mark.parametrize("kind", ["output", f"ref={REFERENCE:g}"])
def test_regression_targets(kind):
    """Output: d y / d x; reference: d -(y - 90)^2 / d x; integrated gradients complete in both."""
    model, x = small_model("cnn_transformer", task="regression"), small_input()
    score = (lambda v: model(v)) if kind == "output" else (lambda v: -((model(v) - REFERENCE) ** 2))

    sal = explain(model, x, "saliency", target=kind)
    assert sal.target["kind"] == ("output" if kind == "output" else "reference")
    assert_close(sal.spatial, channel_sum(Saliency(score).attribute(leaf(x), abs=False)))
    ixg = explain(model, x, "input_x_gradient", target=kind)
    assert_close(ixg.spatial, channel_sum(InputXGradient(score).attribute(leaf(x))))

    ig = explain(model, x, "integrated_gradients", target=kind, steps=64, baseline="mean")
    mean_clip = BASELINES["mean"](x)
    captum = IntegratedGradients(score).attribute(leaf(x), baselines=mean_clip, n_steps=64)
    assert_close(ig.spatial, channel_sum(captum), rtol=1e-3)
    with torch.no_grad():
        difference = (score(x) - score(mean_clip)).item()
    assert ig.spatial.sum() == pytest.approx(difference, rel=0.03)

    sg = explain(model, x, "smoothgrad", target=kind, samples=2, seed=3)
    torch.manual_seed(3)
    stdev = 0.15 * float(x.max() - x.min())
    reference = NoiseTunnel(Saliency(score)).attribute(
        leaf(x), nt_samples=2, nt_samples_batch_size=clips_per_pass(x.device), stdevs=stdev, abs=False
    )
    assert_close(sg.spatial, channel_sum(reference))


def test_reference_target_is_the_chain_rule_of_the_output():
    """d -(y - r)^2 / dx = -2 (y - r) dy/dx: the two saliency maps differ by exactly that factor."""
    model, x = small_model("cnn_lstm", task="regression"), small_input()
    output = explain(model, x, "saliency").spatial
    reference = explain(model, x, "saliency", target=f"ref={REFERENCE:g}").spatial
    with torch.no_grad():
        y = model(x).item()
    assert_close(reference, -2 * (y - REFERENCE) * output, rtol=1e-3)


@pytest.mark.parametrize("arch", ["cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm", "convlstm", "r3d"])
def test_every_gradient_method_on_every_zoo_architecture(arch):
    model = small_model(arch).train()
    x = small_input()
    for method in GRADIENT_METHODS:
        expl = explain(model, x, method, target=0, **FAST.get(method, {}))
        assert expl.spatial.shape == (8, 64, 64) and expl.temporal.shape == (8,)
        assert expl.spatial.dtype == np.float32 and expl.temporal.dtype == np.float32
        assert np.isfinite(expl.spatial).all() and np.abs(expl.spatial).max() > 0, method
        assert count_hooks(model) == 0 and model.training


def test_parameters_are_checked():
    model, x = small_model("r3d"), small_input()
    with pytest.raises(MethodError, match="one of black, blur, mean"):
        explain(model, x, "integrated_gradients", baseline="white")
    with pytest.raises(MethodError, match=">= 1"):
        explain(model, x, "smoothgrad", samples=0)
    expl = explain(model, x, "integrated_gradients", steps=4, baseline="blur", blur_sigma=2)
    assert expl.params == {"steps": 4, "baseline": "blur", "blur_sigma": 2.0}
