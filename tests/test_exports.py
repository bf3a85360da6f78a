"""Export everywhere a user looks (issue 19, points 4 and 5): the Explain page's frame PNG, curves
CSV, film strip and run zips, and the functions behind those buttons."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from conftest import open_page
from PIL import Image

import xai_core
from workbench import exports
from xai_core import display

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_the_explain_page_offers_every_export(app_zoo):
    at = open_page("pages/explain.py")
    at.multiselect(key="methods_a_cnn_transformer").set_value(["gradcam", "attention_cls"]).run()
    assert not at.exception, [e.value for e in at.exception]
    keys = {b.proto.id.split("-")[-1] for b in at.get("download_button")}
    assert {"download_frame", "download_curves", "download_strip", "download_run_gradcam",
            "download_run_attention_cls", "download_mp4", "download_gif"} <= keys  # fmt: skip
    at.radio(key="strip_format").set_value("pdf").run()
    strip = next(b for b in at.get("download_button") if b.proto.id.endswith("download_strip"))
    assert strip.proto.label == "Film strip (PDF)"
    at.toggle(key="strip_show").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(img.proto.imgs[0].caption.startswith("film strip") for img in at.get("image"))


@pytest.fixture
def explained(app_zoo):
    model = xai_core.load_model(str(app_zoo / "a_cnn_transformer"))
    clip = xai_core.load_video("shapes:5?pause=1", model=model)
    explanations = {m: xai_core.explain(model, clip, m) for m in ("gradcam", "attention_cls", "saliency")}
    return clip, explanations


def test_the_curves_csv_has_a_column_per_curve_and_a_row_per_frame(explained):
    clip, explanations = explained
    rows = list(csv.DictReader(io.StringIO(exports.curves_csv(explanations, clip).decode())))
    assert len(rows) == clip.num_frames
    assert list(rows[0]) == ["frame", "video_frame", "padded", "gradcam", "attention_cls", "saliency"]
    np.testing.assert_allclose([float(r["attention_cls"]) for r in rows], explanations["attention_cls"].temporal,
                               rtol=1e-6)  # fmt: skip
    assert [int(r["video_frame"]) for r in rows] == list(clip.frame_indices)


def test_the_strip_and_the_frame_png(explained):
    clip, explanations = explained
    curves = exports.strip_curves(explanations)
    assert list(curves) == ["gradcam (frame)", "attention_cls"]  # the first curve, then the curve-only methods
    data = exports.strip_bytes(clip, explanations, 4, "top", display.Style(), "png", "a title")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.info["dpi"][0] == pytest.approx(300, abs=1)
    assert exports.strip_bytes(clip, explanations, 4, "every", display.Style(), "svg", "t").startswith(b"<?xml")
    frame = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(exports.png_bytes(frame)))), frame)
