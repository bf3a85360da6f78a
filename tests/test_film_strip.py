"""The film strip (issue 19, point 4): which frames it shows, its rows and labels, and its files."""

from __future__ import annotations

import numpy as np
import pytest

from xai_core import display
from xai_core.figures import film_strip, pick_frames, save_figure


def test_every_kth_frame_spreads_over_the_real_frames():
    assert pick_frames(16, 4) == [0, 5, 10, 15]
    assert pick_frames(16, 16) == list(range(16)) and pick_frames(5, 9) == list(range(5))
    padded = np.array([False] * 10 + [True] * 6)
    assert pick_frames(16, 4, padded=padded) == [0, 3, 6, 9]  # padding frames are never shown


def test_top_frames_are_the_curves_largest_in_temporal_order():
    rng = np.random.default_rng(3)
    curve = rng.random(20)
    padded = np.zeros(20, bool)
    padded[-3:] = True
    curve[-3:] = 10  # padding frames rank first by value but are left out
    reference = sorted(sorted(range(17), key=lambda t: -curve[t])[:5])  # the obvious way
    assert pick_frames(20, 5, curve, "top", padded) == reference
    with pytest.raises(ValueError, match="need a frame-importance curve"):
        pick_frames(20, 5, None, "top")
    with pytest.raises(ValueError, match="pick must be"):
        pick_frames(20, 5, curve, "best")


def test_the_strip_has_a_row_of_frames_one_strip_per_curve_and_one_row_per_map():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (12, 24, 24, 3), dtype=np.uint8)
    maps = {"gradcam": rng.random((12, 24, 24)), "lrp": rng.standard_normal((12, 24, 24))}
    curves = {"attention_cls": rng.random(12)}
    fig = film_strip(frames, maps, curves, count=4, frame_indices=np.arange(12) * 2, title="model on clip")
    axes = fig.get_axes()
    assert len(axes) == 4 * (1 + 1 + 2)
    titles = [ax.get_title() for ax in axes[:4]]
    assert titles == ["frame 0"] + [f"frame {t}\n(video {2 * t})" for t in (4, 7, 11)]  # said where they differ
    labels = [ax.get_ylabel() for ax in axes if ax.get_ylabel()]
    assert labels == ["frames", "attention_cls", "gradcam", "lrp"]
    shown = axes[8].get_images()[0].get_array()  # gradcam on frame 0: drawn as the overlay of the pages
    floor, ceiling = display.display_range(maps["gradcam"], display.Style())
    expected = display.draw(frames[0], maps["gradcam"][0], display.Style(), float(floor[0]), float(ceiling[0]))
    assert np.array_equal(np.asarray(shown), expected)
    value = axes[4].texts[0].get_text()
    assert value == f"{curves['attention_cls'][0] / curves['attention_cls'].max():.2f}"
    assert "model on clip" in fig._suptitle.get_text()


def test_mismatched_inputs_are_said():
    frames = np.zeros((6, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="gradcam: 5 maps for 6 frames"):
        film_strip(frames, {"gradcam": np.zeros((5, 8, 8))})
    with pytest.raises(ValueError, match="the curve a has 4 values for 6 frames"):
        film_strip(frames, {}, {"a": np.zeros(4)})


def test_a_figure_is_written_whole_in_the_format_its_name_says(tmp_path):
    fig = film_strip(np.zeros((4, 8, 8, 3), np.uint8), {"m": np.ones((4, 8, 8))}, count=2)
    for suffix, head in ((".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")):
        path = save_figure(fig, tmp_path / f"f{suffix}", dpi=50)
        assert path.read_bytes().startswith(head)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png", "f.svg"]  # no partial file left
    with pytest.raises(ValueError, match="written as"):
        save_figure(fig, tmp_path / "f.jpg")
