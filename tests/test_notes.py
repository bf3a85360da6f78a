"""Nothing silent (issue 18, point 4): an all-zero map, a flat curve, a decoding shortfall and a
zoo model shown footage unlike its training data each get one short note, from the library, on
the Explain page and on the command line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import small_model, write_app_zoo
from streamlit.testing.v1 import AppTest

import xai_core
from xai_core.notes import clip_notes, explanation_notes, shapes_task
from xai_core.video import sample_clips

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_a_3d_layer_with_one_time_step_makes_a_flat_curve_and_says_so():
    model = small_model("r3d")
    clip = xai_core.load_video("shapes:4", model=model)
    expl = xai_core.explain(model, clip, "gradcam")
    assert expl.extras["cam_lowres"].shape[0] == 1 and np.ptp(expl.temporal) == 0
    assert explanation_notes(expl, clip.padded) == [
        "Layer net.layer3 has 1 time step: gradcam gives one map for the whole clip, so its frame curve is flat; "
        "choose an earlier layer, or saliency or LRP, for a curve over time."
    ]
    earlier = xai_core.explain(model, clip, "gradcam", layer="net.layer2.conv2")
    assert earlier.extras["cam_lowres"].shape[0] > 1 and explanation_notes(earlier, clip.padded) == []
    flat = dataclasses.replace(expl, extras={})  # flat for another reason: the curve's value is named
    assert explanation_notes(flat) == [f"gradcam's frame curve is flat: every frame scores {expl.temporal[0]:.3g}."]


def test_an_all_zero_map_says_so_and_for_grad_cam_why():
    model = small_model("cnn_transformer")
    clip = xai_core.load_video("shapes:4", model=model)
    cam = xai_core.explain(model, clip, "gradcam")
    zero = dataclasses.replace(cam, spatial=np.zeros_like(cam.spatial))
    (note,) = explanation_notes(zero)
    assert note.startswith("gradcam's map is zero on every frame: the weighted activations of layer ")
    saliency = xai_core.explain(model, clip, "saliency")
    (note,) = explanation_notes(dataclasses.replace(saliency, spatial=np.zeros_like(saliency.spatial)))
    assert note == "saliency's map is zero on every frame: nothing of the input moved the score."
    assert explanation_notes(saliency) == []


def test_a_zoo_model_on_footage_and_the_loaders_notes():
    model = small_model("cnn_transformer")
    assert shapes_task(model) is None  # no training record: a model of another origin
    model.info.card = {"training": {"settings": {"task": "sides"}}}
    assert shapes_task(model) == "sides"
    shapes = xai_core.load_video("shapes:4", model=model)
    assert clip_notes(model, shapes) == []
    footage = xai_core.load_video(str(sample_clips()["moviepy_chaplin.mp4"]), model=model)
    (note,) = clip_notes(model, footage)
    assert note.startswith("cnn_transformer was trained only on synthetic Moving Shapes clips (how many sides")
    short = dataclasses.replace(
        footage, meta={**footage.meta, "notes": ["the file claimed 444 frames but only 68 decoded; sampled from those"]}
    )
    assert clip_notes(model, short)[0] == "The file claimed 444 frames but only 68 decoded; sampled from those."


def test_the_explain_page_shows_the_notes(tmp_path, monkeypatch):
    write_app_zoo(tmp_path)
    card = json.loads((tmp_path / "a_cnn_transformer.json").read_text())
    card["training"] = {"settings": {"task": "sides"}}  # as the zoo's cards record it
    (tmp_path / "a_cnn_transformer.json").write_text(json.dumps(card))
    monkeypatch.setenv("XAI_CHECKPOINTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception and not at.info  # Moving Shapes on a Moving Shapes model: nothing to say
    at.sidebar.radio(key="clip_kind").set_value("Sample clip").run()
    assert [i.value for i in at.info if "trained only on synthetic Moving Shapes" in i.value]
    at.sidebar.selectbox(key="model_name").set_value("b_r3d").run()
    assert not at.exception
    assert any(i.value.startswith("Layer net.layer3 has 1 time step: gradcam gives one map") for i in at.info)


def test_the_command_line_prints_the_notes(tiny_checkpoints, tmp_path, capsys):
    from xai_core.cli import main

    code = main(
        ["explain", "--model", "tiny_r3d", "--video", "shapes:4", "--method", "gradcam", "--out", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 0 and "note: Layer " in out and "has 1 time step" in out


def test_an_uploaded_file_that_decodes_fewer_frames_than_it_claims_is_named_on_the_page(tmp_path, monkeypatch):
    import cv2

    writer = cv2.VideoWriter(str(tmp_path / "full.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(60):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = (tmp_path / "full.avi").read_bytes()
    write_app_zoo(tmp_path)
    monkeypatch.setenv("XAI_CHECKPOINTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.radio(key="clip_kind").set_value("Upload").run()
    at.sidebar.file_uploader(key="upload").upload("cut.avi", data[: len(data) // 3], "video/x-msvideo")
    at.run()
    assert not at.exception and not at.error
    shortfall = [i.value for i in at.info if i.value.startswith("The file claimed 60 frames but only ")]
    assert len(shortfall) == 1 and shortfall[0].endswith("decoded; sampled from those.")
