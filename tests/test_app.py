"""The app, driven headless with Streamlit's AppTest: what a user does and what the page shows."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import write_app_zoo
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """A small zoo: a per-frame classifier (the default), a 3D CNN and a regression model."""
    write_app_zoo(tmp_path)
    monkeypatch.setenv("XAI_CHECKPOINTS", str(tmp_path))
    return tmp_path


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def image_captions(at: AppTest) -> list[str]:
    return [img.proto.imgs[0].caption for img in at.get("image")]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_first_page_shows_prediction_curve_frames_and_downloads(zoo):
    import xai_core

    at = start()
    assert at.title[0].value == "Explain"
    assert re.fullmatch(r"Predicts \*\*(triangle|square|pentagon) \(\d+\.\d%\)\*\*", at.markdown[0].value)
    assert len(at.get("plotly_chart")) == 2  # probabilities + frame importance
    # the scrubber starts on the frame where the importance curve peaks
    model = xai_core.load_model(str(zoo / "a_cnn_transformer"), device="cpu")
    clip = xai_core.load_video("shapes:7?noise=8&distractors=2", model=model)
    peak = int(np.argmax(xai_core.explain(model, clip, "gradcam").temporal))
    assert peak > 0  # frame 0 has no previous frame: no motion, no evidence
    where = f"frame {peak} of 8 (video frame {clip.frame_indices[peak]})"
    assert at.slider(key="frame").value == peak
    assert image_captions(at) == [
        f"original · {where}",
        "gradcam for class {} · {}".format(image_captions(at)[1].split("class ")[1].split(" ·")[0], where),
    ]
    assert any(c.startswith("Ground truth: a ") for c in captions(at))
    assert any("Moving Shapes #7 (noise 8, 2 distractors) · 8 frames" in c for c in captions(at))
    assert [b.proto.label for b in at.get("download_button")] == [
        "Download overlay video (mp4)", "Download overlay GIF", "This frame's pictures (PNG)",
        "The frame curves (CSV)", "Film strip (PNG)", "gradcam run (zip)",
    ]  # fmt: skip
    assert at.slider(key="frame").max == 7


def test_scrubber_moves_through_frames(zoo):
    at = start()
    at.slider(key="frame").set_value(5).run()
    assert_clean(at)
    assert image_captions(at)[0] == "original · frame 5 of 8 (video frame 22)"
    assert "frame 5 of 8" in image_captions(at)[1]


def test_changing_the_target_changes_the_explanation(zoo):
    at = start()
    at.selectbox(key="mode").set_value("signed").run()
    at.slider(key="frame").set_value(4).run()
    at.selectbox(key="target_a_cnn_transformer").set_value(2).run()
    assert_clean(at)
    assert "gradcam for class 2 (pentagon)" in image_captions(at)[1]
    pentagon = at.get("image")[1].proto.imgs[0].url
    at.selectbox(key="target_a_cnn_transformer").set_value(0).run()
    assert "gradcam for class 0 (triangle)" in image_captions(at)[1]
    assert at.get("image")[1].proto.imgs[0].url != pentagon  # another map on the same frame


def test_display_controls_change_the_overlay_only(zoo):
    at = start()
    overlay_url, original_url = at.get("image")[1].proto.imgs[0].url, at.get("image")[0].proto.imgs[0].url
    computed = [c for c in captions(at) if c.startswith("Computed in")]
    at.slider(key="opacity").set_value(1.0).run()
    at.selectbox(key="cmap_positive").set_value("inferno").run()
    at.selectbox(key="mode").set_value("signed").run()
    assert_clean(at)
    assert at.get("image")[1].proto.imgs[0].url != overlay_url
    assert at.get("image")[0].proto.imgs[0].url == original_url
    assert [c for c in captions(at) if c.startswith("Computed in")] == computed  # not recomputed


def test_picking_another_shapes_clip(zoo):
    at = start()
    truth = [c for c in captions(at) if c.startswith("Ground truth")]
    at.number_input(key="shapes_seed").set_value(12).run()
    at.checkbox(key="shapes_pause").check().run()
    assert_clean(at)
    new_truth = [c for c in captions(at) if c.startswith("Ground truth")]
    assert new_truth != truth and new_truth[0].endswith("with a pause")
    assert any("Moving Shapes #12 (noise 8, 2 distractors, a pause)" in c for c in captions(at))


def test_the_scrubber_stays_put_when_only_the_target_changes(zoo):
    at = start()
    at.slider(key="frame").set_value(6).run()
    at.selectbox(key="target_a_cnn_transformer").set_value(1).run()
    assert_clean(at)
    assert at.slider(key="frame").value == 6 and "frame 6 of 8" in image_captions(at)[1]


def test_real_sample_clip(zoo):
    at = start()
    at.sidebar.radio(key="clip_kind").set_value("Sample clip").run()
    at.sidebar.selectbox(key="sample_name").set_value("stgcn_ta_chi.mp4").run()
    assert_clean(at)
    assert not at.error
    assert any("stgcn_ta_chi.mp4 · 8 frames" in c for c in captions(at))
    assert not any(c.startswith("Ground truth") for c in captions(at))
    assert at.checkbox(key="outline").disabled


def test_3d_model_and_layer_choice(zoo):
    at = start()
    at.sidebar.selectbox(key="model_name").set_value("b_r3d").run()
    assert_clean(at)
    layers = at.selectbox(key="param_gradcam_layer_b_r3d")
    assert layers.value == "net.layer3" and "net.layer2.conv1" in layers.options
    at.selectbox(key="param_gradcam_layer_b_r3d").set_value("net.layer2.conv1").run()
    assert_clean(at)
    assert len(at.get("image")) == 2


def test_regression_model_against_a_reference_value(zoo):
    at = start()
    at.sidebar.selectbox(key="model_name").set_value("c_cnn_lstm-angle").run()
    assert_clean(at)
    assert at.metric[0].label == "angle"
    assert "gradcam for regression output" in image_captions(at)[1]
    at.radio(key="regression_c_cnn_lstm-angle").set_value("the error against a reference value").run()
    at.number_input(key="reference_c_cnn_lstm-angle").set_value(90.0).run()
    assert_clean(at)
    assert "gradcam for -(output - 90)^2" in image_captions(at)[1]


def test_corrupt_upload_shows_one_error_and_keeps_the_app_usable(zoo):
    at = start()
    at.slider(key="frame").set_value(3).run()
    at.slider(key="opacity").set_value(0.9).run()
    computed = [c for c in captions(at) if c.startswith("Computed in")]
    at.sidebar.radio(key="clip_kind").set_value("Upload").run()
    assert at.info  # asks for a file
    at.sidebar.file_uploader(key="upload").upload("holiday.mp4", os.urandom(4096), "video/mp4")
    at.run()
    assert_clean(at)
    assert len(at.error) == 1 and "holiday" in at.error[0].value and "not a readable video" in at.error[0].value
    assert not at.get("image")
    # back to the earlier clip: the explanation comes from the cache, nothing was lost
    at.sidebar.radio(key="clip_kind").set_value("Moving Shapes").run()
    assert_clean(at)
    assert not at.error and [c for c in captions(at) if c.startswith("Computed in")] == computed
    # and the user's place and display settings survived the error page
    assert at.slider(key="frame").value == 3 and at.slider(key="opacity").value == 0.9


def test_uploading_an_array(zoo):
    at = start()
    at.sidebar.radio(key="clip_kind").set_value("Upload").run()
    frames = np.random.default_rng(0).integers(0, 255, (20, 48, 64, 3), dtype=np.uint8)
    import io

    buffer = io.BytesIO()
    np.save(buffer, frames)
    at.sidebar.file_uploader(key="upload").upload("clip.npy", buffer.getvalue())
    at.run()
    assert_clean(at)
    assert not at.error and any("clip.npy · 8 frames" in c for c in captions(at))


def test_an_uploaded_clip_stays_selected_across_pages_and_models(zoo, monkeypatch):
    """Streamlit forgets an uploader's file on another page: the session keeps it (issue 18, point 2)."""
    monkeypatch.setenv("XAI_RUNS", str(zoo / "runs"))  # the Temporal page opens the run store
    at = start()
    at.sidebar.radio(key="clip_kind").set_value("Upload").run()
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).integers(0, 255, (20, 48, 64, 3), dtype=np.uint8))
    at.sidebar.file_uploader(key="upload").upload("clip.npy", buffer.getvalue())
    at.run()
    assert any("clip.npy · 8 frames" in c for c in captions(at))
    at.switch_page("pages/temporal.py").run()
    at.run()  # (AppTest's first run of a page it switches to draws the sidebar's defaults; a browser does not)
    assert_clean(at)
    assert at.sidebar.radio(key="clip_kind").value == "Upload"
    assert not [i for i in at.info if "Upload a video" in i.value]
    assert any(c.startswith("a_cnn_transformer · clip.npy · predicts") for c in captions(at))
    assert any("Using **clip.npy**" in c.value for c in at.sidebar.caption)
    at.switch_page("pages/explain.py").run()
    at.run()
    at.sidebar.selectbox(key="model_name").set_value("b_r3d").run()
    assert_clean(at)
    assert any(c.startswith("b_r3d · clip.npy · 8 frames") for c in captions(at))
    # another upload replaces it
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((12, 48, 64, 3), np.uint8))
    at.sidebar.file_uploader(key="upload").upload("other.npy", buffer.getvalue())
    at.run()
    assert any(c.startswith("b_r3d · other.npy · 8 frames") for c in captions(at))


def test_cuda_without_gpu_warns_and_runs_on_cpu(zoo):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    at = start()
    at.sidebar.selectbox(key="device").set_value("cuda").run()
    assert_clean(at)
    assert "No CUDA device" in at.sidebar.warning[0].value
    assert any(c.endswith("on cpu.") for c in captions(at))


def test_empty_zoo_says_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_CHECKPOINTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert_clean(at)
    assert "python -m xai_core train" in at.sidebar.error[0].value


def test_a_zoo_model_retrained_under_its_name_is_loaded_again(zoo):
    """The app's model cache knows a checkpoint by its files: retrained (or another $XAI_CHECKPOINTS),
    it is another model, and so are its explanations' cache keys."""
    import os
    import time

    import torch
    from conftest import small_model

    from workbench.caches import model_key, zoo_model
    from xai_core.models.checkpoint import make_card, save_checkpoint

    first = zoo_model("a_cnn_transformer", "cpu")
    assert zoo_model("a_cnn_transformer", "cpu") is first  # unchanged files: the cached object
    torch.manual_seed(123)
    retrained = small_model("cnn_transformer")
    retrained.info.name = "a_cnn_transformer"
    time.sleep(0.01)
    save_checkpoint(retrained, zoo / "a_cnn_transformer", make_card(retrained))
    os.utime(zoo / "a_cnn_transformer.safetensors")
    second = zoo_model("a_cnn_transformer", "cpu")
    assert second is not first and model_key(second, "cpu") != model_key(first, "cpu")
    name, weight = next(iter(retrained.net.state_dict().items()))
    assert torch.equal(second.net.state_dict()[name], weight)
