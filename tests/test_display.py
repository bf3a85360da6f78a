"""How a map is drawn (xai_core.display): ranges per frame and per clip against numpy's
percentiles, the contrast, the colour maps a reading may use, the colour bar, and the default
style on the zoo's default model (issue 18, point 1)."""

from __future__ import annotations

import numpy as np
import pytest

from xai_core import display, render
from xai_core.display import Style


def test_ranges_are_the_percentiles_of_the_shown_values_per_frame_or_per_clip():
    rng = np.random.default_rng(0)
    spatial = rng.normal(size=(3, 8, 8)) * np.array([1.0, 5.0, 0.1])[:, None, None]
    style = Style(low=10, high=90)
    floor, ceiling = display.display_range(spatial, style)
    for t in range(3):
        positive = np.maximum(spatial[t], 0).ravel()
        assert floor[t] == pytest.approx(np.percentile(positive, 10))
        assert ceiling[t] == pytest.approx(np.percentile(positive, 90))
    floor, ceiling = display.display_range(spatial, Style(mode="abs", cmap="hot", scale="clip", low=10, high=90))
    assert np.allclose(floor, np.percentile(np.abs(spatial), 10)) and np.allclose(
        ceiling, np.percentile(np.abs(spatial), 90)
    )


def test_an_offset_map_shows_its_structure_and_a_sparse_one_keeps_a_zero_floor():
    frame = np.full((8, 8, 3), 100, np.uint8)
    cam = np.full((1, 8, 8), 5.0)
    cam[0, 2:4, 2:4] = 9.0  # a bump on an offset everywhere (a CAM positive on the whole frame)
    drawn = display.overlay_frame(frame[None][0], cam, 0, Style(low=0, high=100))
    assert np.array_equal(drawn[0, 0], frame[0, 0]) and not np.array_equal(drawn[2, 2], frame[2, 2])
    old = render.overlay(frame, cam[0], opacity=0.6, cmap="turbo")  # from zero: the offset is coloured
    assert not np.array_equal(old[0, 0], frame[0, 0])
    sparse = np.zeros((1, 20, 20))
    sparse[0, :5, :10] = 1.0  # 50 weaker pixels (12.5% of the frame) and one outlier
    sparse[0, 19, 19] = 100.0
    floor, ceiling = display.display_range(sparse, Style(low=5, high=95))
    assert floor[0] == 0 and ceiling[0] == 1.0  # the outlier cannot hide the weaker pixels: they saturate
    unit = display.to_unit(sparse[0], "positive", floor[0], ceiling[0])
    assert unit[0, 0] == 1.0 and unit[10, 10] == 0.0
    sparser = np.zeros((1, 20, 20))
    sparser[0, 0, :10] = np.arange(1.0, 11.0)  # 2.5% of the frame: under the top 5%
    floor, ceiling = display.display_range(sparser, Style(low=5, high=95))
    assert floor[0] == 0 and ceiling[0] == pytest.approx(np.percentile(np.arange(1.0, 11.0), 95))


def test_signed_maps_are_symmetric_around_white():
    heat = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    unit = display.to_unit(heat, "signed", 0.5, 2.0)
    assert np.allclose(unit, [[0.0, 0.5, 0.5, 0.5, 1.0]])  # magnitudes up to the floor are white
    colours = display.colorize(unit, "bwr")
    assert colours[0, 0].tolist() == [0, 0, 255] and colours[0, 2].tolist() == [255, 255, 255]
    assert colours[0, 4].tolist() == [255, 0, 0]


def test_empty_constant_plateau_and_nan_maps():
    frame = np.random.default_rng(1).integers(0, 255, (6, 6, 3), dtype=np.uint8)
    assert np.array_equal(display.overlay_frame(frame, np.zeros((2, 6, 6)), 1, Style()), frame)  # nothing to show
    constant = np.full((2, 6, 6), 3.0)  # the same evidence everywhere: drawn in full, from zero
    assert display.display_range(constant, Style())[1][0] == 3.0 and display.display_range(constant, Style())[0][0] == 0
    assert not np.array_equal(display.overlay_frame(frame, constant, 1, Style()), frame)
    plateau = np.full((1, 6, 6), 2.0)
    plateau[0, 0, 0] = 1.0  # 35 of 36 pixels at the maximum: the range runs from the smallest value
    floor, ceiling = display.display_range(plateau, Style())
    assert (floor[0], ceiling[0]) == (1.0, 2.0)
    with_nan = np.random.default_rng(2).random((2, 6, 6))
    with_nan[1, 2, 2] = np.nan  # one NaN pixel counts as 0; the frame is still drawn
    floor, ceiling = display.display_range(with_nan, Style())
    assert np.isfinite(floor).all() and np.isfinite(ceiling).all()
    drawn = display.overlay_frame(frame, with_nan, 1, Style())
    assert np.array_equal(drawn[2, 2], frame[2, 2]) and not np.array_equal(drawn, frame)
    signed = display.overlay_frame(frame, with_nan - 0.5, 1, Style.default_for("signed"))
    assert np.array_equal(signed[2, 2], frame[2, 2])


def test_styles_that_cannot_be_drawn_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="signed maps need a diverging colour map"):
        Style(mode="signed", cmap="turbo")
    with pytest.raises(ValueError, match="positive maps need a sequential colour map"):
        Style(cmap="bwr")
    with pytest.raises(ValueError, match="0 <= low < high <= 100"):
        Style(low=50, high=50)
    with pytest.raises(ValueError, match="one range per frame or per clip"):
        Style(scale="video")
    assert Style.default_for("signed").cmap == "bwr" and Style.default_for("abs", high=90).high == 90


def test_the_colour_bar_runs_from_the_floor_to_the_ceiling_with_labels():
    style = Style()
    bar = display.colorbar(style, 0.25, 4.0, height=120, width=60)
    assert bar.shape == (120, 60, 3)
    strip = bar[:, :15]
    assert np.array_equal(strip[0, 0], display.colorize(np.array([[1.0]]), "turbo")[0, 0])
    assert np.array_equal(strip[-1, 0], display.colorize(np.array([[0.0]]), "turbo")[0, 0])
    labels = bar[:, 18:]
    assert (labels[:20] < 128).any() and (labels[-20:] < 128).any()  # the ceiling's and the floor's values
    assert display.colorbar_labels(style, 0.25, 4.0) == [("4", 0.0), ("0.25", 1.0)]
    assert display.colorbar_labels(style, 0.0, 1.5e-5) == [("1.5e-05", 0.0), ("0", 1.0)]
    signed_style = Style.default_for("signed")
    assert display.colorbar_labels(signed_style, 0.0, 2.0) == [("+2", 0.0), ("0", 0.5), ("-2", 1.0)]
    assert display.colorbar_labels(signed_style, 0.1, 2.0)[1] == ("|x|<0.1", 0.5)
    signed = display.colorbar(Style.default_for("signed"), 0.0, 2.0, height=121, width=60)
    assert [signed[row, 0].tolist() for row in (0, 60, 120)] == [[255, 0, 0], [255, 255, 255], [0, 0, 255]]


def test_styled_overlays_draw_every_frame_in_its_own_range_with_its_bar():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    spatial = rng.random((3, 8, 8)) * np.array([1.0, 10.0, 100.0])[:, None, None]
    out = render.styled_overlays(frames, spatial, Style(), zoom=2)
    assert out.shape[:3] == (3, 16, 16 + 4 + 48)
    per_frame = display.overlay_frames(frames, spatial, Style())
    assert np.array_equal(out[1, :, :16], render.upscale(per_frame[1], 2))
    # per frame, a map ten times larger is drawn alike; per clip, the small frame fades
    scaled = display.overlay_frames(frames[:1].repeat(2, 0), np.stack([spatial[0], 10 * spatial[0]]), Style())
    assert np.array_equal(scaled[0], scaled[1])
    clip_wide = display.overlay_frames(
        frames[:1].repeat(2, 0), np.stack([spatial[0], 10 * spatial[0]]), Style(scale="clip")
    )
    assert not np.array_equal(clip_wide[0], clip_wide[1])


def _ends(unit: np.ndarray) -> tuple[float, float]:
    """The shares of a unit map drawn faintly (below a quarter) and strongly (above three quarters)."""
    return float((unit < 0.25).mean()), float((unit > 0.75).mean())


@pytest.mark.skipif(
    not __import__("xai_core").zoo_names() or "cnn_transformer-sides" not in __import__("xai_core").zoo_names(),
    reason="zoo checkpoints missing",
)
@pytest.mark.parametrize("source", ["shapes:7?noise=8&distractors=2", "moviepy_chaplin.mp4"])
def test_the_default_style_shows_grad_cam_at_the_peak_frame_of_the_default_model(source):
    """Drawn as before (one scale for the clip, from zero), the default model's Grad-CAM at its
    peak frame was one colour over the frame: almost no pixel was faint.  The default style uses
    both ends of the colour map there."""
    import xai_core
    from xai_core.video.sources import sample_clips

    model = xai_core.load_model("cnn_transformer-sides", device="cpu")
    path = source if source.startswith("shapes:") else str(sample_clips()[source])
    clip = xai_core.load_video(path, model=model)
    spatial = xai_core.explain(model, clip, "gradcam").spatial
    peak = int(np.argmax(xai_core.explain(model, clip, "gradcam").temporal))
    old = render.normalise(spatial[peak], "positive", render.clip_scale(spatial, "positive"))
    assert _ends(old)[0] < 0.05  # a wash: under 5% of the frame drawn faintly
    floor, ceiling = display.display_range(spatial, Style())
    faint, strong = _ends(display.to_unit(spatial[peak], "positive", float(floor[peak]), float(ceiling[peak])))
    assert faint >= 0.10 and strong >= 0.02


def test_the_command_lines_overlay_choices_are_the_display_modules():
    from xai_core.cli import build_parser

    explain = build_parser()._subparsers._group_actions[0].choices["explain"]
    choices = {a.dest: tuple(a.choices) for a in explain._actions if a.choices}
    assert choices["show"] == display.MODES and choices["scale"] == display.SCALES


def test_padding_frames_neither_set_the_clips_range_nor_get_stretched():
    rng = np.random.default_rng(3)
    spatial = rng.random((4, 6, 6))
    spatial[3] = 1e-6 * rng.random((6, 6))  # the black padding frame's near-zero map
    spatial[3, 0, 0] = 50.0  # (and one outlier on it)
    padded = np.array([False, False, False, True])
    floor, ceiling = display.display_range(spatial, Style(scale="clip"), padded)
    assert ceiling[0] == pytest.approx(np.percentile(spatial[:3], 99)) and len(set(ceiling)) == 1
    floor, ceiling = display.display_range(spatial, Style(), padded)
    assert ceiling[3] == ceiling[:3].max() and floor[3] == floor[:3].min()  # not its own range
    assert display.display_range(spatial, Style())[1][3] != ceiling[3]  # without the flag: its own range
