"""How the Explain page draws a map (issue 18, point 1): the default style, the colour maps each
reading is offered, per-frame and per-clip ranges, contrast, and the colour bar (AppTest; the
pictures are read back from what the page handed to Streamlit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from xai_core import display, render

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
APP = str(Path(__file__).resolve().parents[1] / "app.py")
ZOOM = 3  # the Explain page's enlargement


@pytest.fixture
def zoo(app_zoo):
    """The app tests' small zoo (conftest's ``app_zoo``)."""
    return app_zoo


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def expected_tile(zoo, frame: int, style: display.Style) -> np.ndarray:
    """The gradcam tile as the library draws it: the overlay in ``style`` with the shape's outline,
    enlarged, with the colour bar of the frame's range."""
    import xai_core

    model = xai_core.load_model(str(zoo / "a_cnn_transformer"), device="cpu")
    clip = xai_core.load_video("shapes:7?noise=8&distractors=2", model=model)
    spatial = xai_core.explain(model, clip, "gradcam").spatial
    shown = render.outline(
        display.overlay_frame(clip.frames[frame], spatial, frame, style), clip.ground_truth["target_masks"][frame]
    )
    floor, ceiling = display.display_range(spatial, style)
    return render.with_colorbar(render.upscale(shown, ZOOM), style, float(floor[frame]), float(ceiling[frame]))


def test_the_page_draws_the_default_style_with_its_colour_bar(zoo, shown_images):
    at = start()
    assert at.selectbox(key="mode").value == "positive" and at.selectbox(key="cmap_positive").value == "turbo"
    assert at.radio(key="scale").value == "frame" and at.slider(key="contrast").value == (5.0, 99.0)
    frame = at.slider(key="frame").value
    original, overlay = (shown_images(image) for image in at.get("image")[:2])
    assert np.array_equal(overlay, expected_tile(zoo, frame, display.Style()))
    assert original.shape == overlay.shape  # the frame beside it is drawn at the overlay's size
    bar = overlay[:, 64 * ZOOM + 4 :]
    assert (bar != 255).any(axis=2).mean() > 0.1  # a colour bar with its labels, not white space


def test_per_clip_scale_and_contrast_are_drawn_as_chosen(zoo, shown_images):
    at = start()
    frame = at.slider(key="frame").value
    at.radio(key="scale").set_value("clip").run()
    at.slider(key="contrast").set_value((0.0, 100.0)).run()
    at.slider(key="opacity").set_value(0.8).run()
    assert not at.exception
    style = display.Style(scale="clip", low=0.0, high=100.0, opacity=0.8)
    assert np.array_equal(shown_images(at.get("image")[1]), expected_tile(zoo, frame, style))


def test_each_reading_is_offered_the_colour_maps_that_fit_it(zoo, shown_images):
    at = start()
    assert at.selectbox(key="cmap_positive").options == list(display.SEQUENTIAL)
    at.selectbox(key="mode").set_value("signed").run()
    assert not at.exception
    assert at.selectbox(key="cmap_signed").options == ["bwr", "orange-purple"]  # diverging: white at zero
    frame = at.slider(key="frame").value
    style = display.Style(mode="signed", cmap="bwr")
    assert np.array_equal(shown_images(at.get("image")[1]), expected_tile(zoo, frame, style))
    at.selectbox(key="cmap_signed").set_value("orange-purple").run()
    at.selectbox(key="mode").set_value("abs").run()
    assert at.selectbox(key="cmap_abs").value == "turbo"  # each reading keeps its own choice
    at.selectbox(key="mode").set_value("signed").run()
    assert at.selectbox(key="cmap_signed").value == "orange-purple"


def test_a_style_change_encodes_no_video_until_a_download_is_asked_for(zoo, monkeypatch):
    """Issue 18's small item: each style change cost 1.3-2.3 s, spent encoding both downloads."""
    import workbench.caches as caches

    encoded = []
    monkeypatch.setattr(caches, "encode_video", lambda frames, fmt, fps: encoded.append(fmt) or b"")
    at = start()
    at.slider(key="opacity").set_value(0.9).run()
    at.selectbox(key="cmap_positive").set_value("viridis").run()
    assert not at.exception and encoded == []
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels[:2] == ["Download overlay video (mp4)", "Download overlay GIF"]  # then the Export expander's
