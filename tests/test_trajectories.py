"""Trajectories along the flows: pushing points against hand-computed positions, the window sums
against a loop, a point seeded on a Moving Shapes target that follows it, and the registered
method's ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import small_input, small_model

from xai_core import explain
from xai_core.data.moving_shapes import generate
from xai_core.methods.machinery.optical_flow import farneback_flows
from xai_core.methods.machinery.registry import MethodError
from xai_core.methods.trajectories import along, parse_points, push, sample, window_sums


def bilinear(field: np.ndarray, x: float, y: float) -> np.ndarray:
    """field [C,H,W] at (x, y), by hand."""
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = min(x0 + 1, field.shape[2] - 1), min(y0 + 1, field.shape[1] - 1)
    ax, ay = x - x0, y - y0
    return (
        field[:, y0, x0] * (1 - ax) * (1 - ay)
        + field[:, y0, x1] * ax * (1 - ay)
        + field[:, y1, x0] * (1 - ax) * ay
        + field[:, y1, x1] * ax * ay
    )


def test_sampling_and_a_constant_flow():
    g = torch.Generator().manual_seed(0)
    field = torch.randn(2, 9, 13, generator=g, dtype=torch.float64)
    points = torch.tensor([[0.0, 0.0], [12.0, 8.0], [3.25, 4.5], [7.9, 0.1]], dtype=torch.float64)
    for point, value in zip(points, sample(field, points), strict=True):
        np.testing.assert_allclose(value.numpy(), bilinear(field.numpy(), *point.tolist()), atol=1e-12)
    flows = torch.zeros(5, 2, 40, 40, dtype=torch.float64)
    flows[:, 0], flows[:, 1] = 2.0, -1.0  # everything moves right and up
    tracks = push(flows, torch.tensor([[10.0, 20.0], [5.0, 30.0]]), torch.tensor([0, 3]))
    expected0 = [[10 + 2 * t, 20 - t] for t in range(6)]
    expected1 = [[5 + 2 * (t - 3), 30 - (t - 3)] for t in range(6)]
    np.testing.assert_allclose(tracks[0].numpy(), expected0, atol=1e-12)
    np.testing.assert_allclose(tracks[1].numpy(), np.clip(expected1, 0, 39), atol=1e-12)  # kept inside the frame


def test_a_varying_flow_back_exact_and_forward_consistent():
    """One frame back is P - f(P) exactly; one frame on solves P_next - f(P_next) = P."""
    yy, xx = np.mgrid[0:48, 0:48]
    flow = np.stack([1.5 + 0.02 * yy, 0.5 + 0.01 * xx]).astype(np.float64)[None]  # smooth, [1,2,H,W]
    flows = torch.from_numpy(flow)
    back = push(flows, torch.tensor([[20.0, 30.0]]), torch.tensor([1]))
    np.testing.assert_allclose(back[0, 0].numpy(), [20, 30] - bilinear(flow[0], 20.0, 30.0), atol=1e-12)
    on = push(flows, torch.tensor([[20.0, 30.0]]), torch.tensor([0]))[0, 1].numpy()
    np.testing.assert_allclose(on - bilinear(flow[0], *on), [20.0, 30.0], atol=1e-5)


def test_window_sums_and_points():
    values = torch.arange(12.0).view(2, 6)
    loop = [[float(values[n, s : s + 3].sum()) for s in range(4)] for n in range(2)]
    np.testing.assert_allclose(window_sums(values, 3).numpy(), loop)
    maps = torch.zeros(3, 8, 8)
    maps[1, 2, 5] = 4.0
    tracks = torch.tensor([[[5.0, 2.0]] * 3])
    np.testing.assert_allclose(along(maps, tracks).numpy(), [[0, 4, 0]])
    assert parse_points("10, 20, 3; 5.5,6,0", 8, 64, 64) == [(10.0, 20.0, 3), (5.5, 6.0, 0)]
    with pytest.raises(MethodError, match="outside the clip"):
        parse_points("10,20,9", 8, 64, 64)
    with pytest.raises(MethodError, match="'x,y,t' triples"):
        parse_points("10;20", 8, 64, 64)


def test_a_point_on_the_moving_shape_follows_it():
    sample_ = generate(11, noise=6.0, distractors=2)
    flows = farneback_flows(sample_.video).double()
    centre = torch.tensor([sample_.positions[0].tolist()], dtype=torch.float64)
    track = push(flows, centre, torch.tensor([0]))[0].numpy()
    masks = sample_.target_masks
    inside = [masks[t, int(round(y)), int(round(x))] for t, (x, y) in enumerate(track)]
    assert np.mean(inside) >= 0.9
    drift = np.linalg.norm(track - sample_.positions, axis=1)
    assert drift.max() < sample_.radius  # the centre's track stays within the shape's radius


def test_the_registered_method_ranks_trajectories():
    model, x = small_model("cnn_lstm"), small_input()
    expl = explain(model, x, "trajectories", target=1, window=3, grid=16, top=5, points="10,20,4")
    tracks, scores = expl.extras["trajectories"], expl.extras["trajectory_scores"]
    assert tracks.shape == (5, 8, 2) and (np.diff(scores) <= 0).all()
    assert expl.meta["base"] == "gradcam"  # auto: the model has a cam layer
    saliency = np.clip(explain(model, x, "gradcam", target=1).spatial, 0, None)  # a positive reading
    for track, score, (start, stop) in zip(tracks, scores, expl.extras["trajectory_windows"], strict=True):
        assert stop - start == 3
        values = along(torch.from_numpy(saliency), torch.from_numpy(track)[None])[0].numpy()
        assert score == pytest.approx(values[start:stop].sum(), rel=1e-5)
        assert score == pytest.approx(window_sums(torch.from_numpy(values)[None], 3).max().item(), rel=1e-5)
    chosen = explain(model, x, "trajectories", target=1, window=3, grid=16, top=5, base="saliency")
    assert chosen.meta["base"] == "saliency"
    picked = expl.extras["picked"]
    assert picked.shape == (1, 8, 2) and np.allclose(picked[0, 4], [10, 20])
    with pytest.raises(MethodError, match="spatial map"):
        explain(model, x, "trajectories", target=1, base="frame_mask")
