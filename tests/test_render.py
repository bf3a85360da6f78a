"""Rendering: one scale per clip, overlays that leave evidence-free pixels alone, figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xai_core import render


def test_clip_scale_is_a_high_percentile_of_what_is_shown():
    spatial = np.zeros((2, 10, 10), np.float32)
    spatial[0, :5] = np.linspace(0, 1, 50).reshape(5, 10)
    spatial[1, 0, 0] = -100  # negative evidence: ignored in "positive" mode, counts in "abs"
    assert render.clip_scale(spatial, "positive", 100) == pytest.approx(1.0)
    assert render.clip_scale(spatial, "abs", 100) == pytest.approx(100.0)
    assert render.clip_scale(np.zeros((1, 4, 4)), "positive") == 1.0


def test_normalise_modes():
    heat = np.array([[-2.0, 0.0, 1.0, 4.0]])
    assert np.allclose(render.normalise(heat, "positive", 2.0), [[0, 0, 0.5, 1]])
    assert np.allclose(render.normalise(heat, "abs", 2.0), [[1, 0, 0.5, 1]])
    assert np.allclose(render.normalise(heat, "signed", 2.0), [[0, 0.5, 0.75, 1]])
    with pytest.raises(ValueError, match="mode"):
        render.normalise(heat, "log", 1.0)


def test_colorize_endpoints():
    unit = np.array([[0.0, 0.5, 1.0]])
    bwr = render.colorize(unit, "bwr")
    assert bwr[0].tolist() == [[0, 0, 255], [255, 255, 255], [255, 0, 0]]
    jet = render.colorize(unit, "jet")
    assert jet.shape == (1, 3, 3) and jet.dtype == np.uint8
    assert jet[0, 0, 2] > jet[0, 0, 0] and jet[0, 2, 0] > jet[0, 2, 2]  # blue at 0, red at 1
    with pytest.raises(ValueError, match="colour map"):
        render.colorize(unit, "rainbow-unicorn")


def test_overlay_changes_only_where_there_is_evidence():
    frame = np.full((8, 8, 3), 100, np.uint8)
    heat = np.zeros((8, 8), np.float32)
    heat[2:4, 2:4] = 1.0
    out = render.overlay(frame, heat, opacity=0.8, cmap="jet", mode="positive", scale=1.0)
    assert np.array_equal(out[heat == 0], frame[heat == 0])
    assert not np.array_equal(out[heat > 0], frame[heat > 0])
    assert np.array_equal(render.overlay(frame, heat, opacity=0.0), frame)


def test_overlay_resizes_a_low_resolution_map():
    frame = np.zeros((16, 16, 3), np.uint8)
    out = render.overlay(frame, np.ones((4, 4), np.float32), scale=1.0)
    assert out.shape == (16, 16, 3) and out.any()


def test_overlay_clip_uses_one_scale_for_all_frames():
    frames = np.zeros((2, 4, 4, 3), np.uint8)
    spatial = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 0.1)]).astype(np.float32)
    out = render.overlay_clip(frames, spatial, cmap="hot", opacity=1.0)
    assert out[0].mean() > out[1].mean()  # the weak frame stays weak: no per-frame rescaling


def test_outline_draws_the_mask_border():
    frame = np.zeros((20, 20, 3), np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    out = render.outline(frame, mask)
    assert out[5, 5:15].all() and not out[10, 10].any() and not frame.any()


def test_side_by_side_and_upscale():
    a, b = np.zeros((4, 3, 3), np.uint8), np.ones((4, 5, 3), np.uint8)
    assert render.side_by_side(a, b, gap=2).shape == (4, 10, 3)
    up = render.upscale(np.arange(4, dtype=np.uint8).reshape(2, 2, 1), 3)
    assert up.shape == (6, 6, 1) and up[0:3, 3:6].min() == 1


def test_importance_figure_marks_the_selected_frame_and_padding():
    curve = np.array([0.0, 2.0, 1.0, 0.0])
    fig = render.importance_figure(
        {"gradcam": curve}, selected=2, padded=np.array([0, 0, 0, 1], bool), frame_indices=np.array([0, 5, 9, -1])
    )
    line, marker = fig.data
    assert list(line.y) == [0, 1.0, 0.5, 0]  # normalised by the peak
    assert list(marker.x) == [2] and list(marker.y) == [0.5]
    assert fig.layout.shapes[0].x0 == 2  # the vertical line at the selected frame
    assert fig.layout.shapes[1].x0 == 2.5  # padding shaded from frame 3 on
    assert line.hovertext[3] == "padding" and line.hovertext[1] == "video frame 5"


def test_importance_figure_shares_one_timeline():
    fig = render.importance_figure({"a": np.array([1.0, 3.0]), "b": np.array([-4.0, 2.0])}, normalise_curves=True)
    assert [list(t.y) for t in fig.data] == [[1 / 3, 1.0], [-1.0, 0.5]] and fig.layout.showlegend


def test_probabilities_figure_highlights_the_prediction():
    fig = render.probabilities_figure({"probabilities": [0.2, 0.7, 0.1], "index": 1}, ["a", "b", "c"])
    bar = fig.data[0]
    assert list(bar.y) == ["c", "a", "b"] and bar.marker.color[-1] == "#d62728"


def test_importing_render_leaves_the_evaluation_unloaded():
    """render takes its angle convention from xai_core.angles, a module both it and the evaluation use."""
    code = "import sys, xai_core.render; print(sorted(m for m in sys.modules if m.startswith('xai_core.evaluate')))"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
