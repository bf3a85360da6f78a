"""The Explain page with several methods: side-by-side maps, one shared timeline, attention strips,
the reasons for unavailable methods, and the vanishing-saliency chart (AppTest, headless)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import small_model, write_app_zoo
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    write_app_zoo(tmp_path)
    monkeypatch.setenv("XAI_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("XAI_RUNS", str(tmp_path / "runs"))  # long methods are saved in the run store
    return tmp_path


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def image_captions(at: AppTest) -> list[str]:
    return [img.proto.imgs[0].caption for img in at.get("image")]


def timeline(at: AppTest) -> dict:
    """The shared timeline's figure (the chart keyed importance_curve) as plotly JSON."""
    charts = [c for c in at.get("plotly_chart") if "importance_curve" in c.proto.id]
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def values(array) -> np.ndarray:
    """A plotly JSON array: a list, or base64 bytes with a dtype."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array, dtype=float)


def curve_names(figure: dict) -> list[str]:
    return [t["name"] for t in figure["data"] if t.get("name")]


def test_several_methods_side_by_side_on_one_timeline(zoo):
    at = start()
    at.multiselect(key="methods_a_cnn_transformer").set_value(["gradcam", "saliency", "attention_cls"]).run()
    assert not at.exception and not at.error
    frame = at.slider(key="frame").value
    captions = image_captions(at)
    assert captions[0].startswith(f"original · frame {frame} of 8")
    assert captions[1].startswith("gradcam for class ") and captions[2].startswith("saliency for class ")
    assert all(f"frame {frame} of 8" in c for c in captions[1:3])
    assert (
        captions[3]
        == "attention_cls: attention weight of each frame (colour ÷ largest; frames outside the kept 70% are 0)"
    )
    figure = timeline(at)
    assert curve_names(figure) == ["gradcam", "saliency", "attention_cls"]
    for trace in figure["data"]:
        if trace.get("name"):  # common normalisation: every curve ÷ its largest magnitude
            y = values(trace["y"])
            assert len(y) == 8 and np.abs(y).max() == pytest.approx(1.0)
    # each chosen method's help gives the full reference of what it cites (docs/references.md)
    labels = [e.label for e in at.expander]
    for name in ("gradcam", "saliency", "attention_cls"):
        assert any(label.startswith(f"{name}: ") and label.endswith("references") for label in labels), labels
    help_text = " ".join(m.value for m in at.markdown)
    assert "*Grad-CAM: Visual Explanations from Deep Networks via Gradient-Based Localization.* ICCV 2017" in help_text
    assert "*Deployment and Explanation of Deep Models for Endoscopy Video Classification.*" in help_text  # 000
    computed = [c.value for c in at.caption if c.value.startswith("Computed in")]
    assert len(computed) == 1 and "(gradcam)" in computed[0] and "(attention_cls)" in computed[0]
    # the strip moves with the scrubber; the maps follow
    strip = at.get("image")[3].proto.imgs[0].url
    at.slider(key="frame").set_value((frame + 3) % 8).run()
    assert at.get("image")[3].proto.imgs[0].url != strip
    assert f"frame {(frame + 3) % 8} of 8" in image_captions(at)[2]


def test_a_frame_score_strip_is_not_captioned_as_attention_and_the_toolbar_leaves_the_bars(zoo):
    at = start()
    at.multiselect(key="methods_a_cnn_transformer").set_value(["gradcam", "frame_mask"]).run()
    assert not at.exception and not at.error
    assert image_captions(at)[2] == "frame_mask: importance of each frame (colour ÷ largest)"
    saved = [json.loads(p.read_text())["method"] for p in (zoo / "runs").glob("*/explanation.json")]
    assert sorted(saved) == ["frame_mask", "gradcam"]  # run on the spot and kept (the Temporal page finds frame_mask)
    probabilities = next(c for c in at.get("plotly_chart") if "probabilities" in c.proto.id)
    assert json.loads(probabilities.proto.config)["displayModeBar"] is False


def test_chosen_methods_and_settings_follow_the_user_to_another_model_and_page(zoo):
    """Issue 18, point 2: the methods and their settings are the session's, not one model's copy."""
    at = start()
    at.multiselect(key="methods_a_cnn_transformer").set_value(["gradcam", "integrated_gradients"]).run()
    at.number_input(key="param_integrated_gradients_steps_a_cnn_transformer").set_value(6).run()
    at.selectbox(key="param_integrated_gradients_baseline_a_cnn_transformer").set_value("blur").run()
    at.sidebar.selectbox(key="model_name").set_value("b_r3d").run()
    assert not at.exception and not at.error
    assert at.multiselect(key="methods_b_r3d").value == ["gradcam", "integrated_gradients"]
    assert at.number_input(key="param_integrated_gradients_steps_b_r3d").value == 6
    assert at.selectbox(key="param_integrated_gradients_baseline_b_r3d").value == "blur"
    assert [img.proto.imgs[0].caption.split(" for ")[0] for img in at.get("image")[1:3]] == [
        "gradcam",
        "integrated_gradients",
    ]
    at.switch_page("pages/motion.py").run()
    at.switch_page("pages/explain.py").run()
    at.run()  # (AppTest's first run of a page it switches to draws the sidebar's defaults)
    assert not at.exception
    assert at.multiselect(key="methods_b_r3d").value == ["gradcam", "integrated_gradients"]
    assert at.number_input(key="param_integrated_gradients_steps_b_r3d").value == 6
    # the target widget names the prediction of this clip, drawn anew on every run
    predicted = [c.value for c in at.caption if c.value.startswith("The predicted class on this clip: ")]
    assert at.selectbox(key="target_b_r3d").value == -1 and len(predicted) == 1
    label = predicted[0].split("**")[1]
    assert at.markdown[0].value.startswith(f"Predicts **{label} (")
    assert at.selectbox(key="target_b_r3d").format_func(-1) == "the predicted class"


def test_unavailable_methods_are_listed_with_the_reason(zoo):
    at = start()
    options = at.multiselect(key="methods_a_cnn_transformer").options
    assert "lrp" not in options and "attention_pool" not in options and "attention_rollout" in options
    why = " ".join(m.value for m in at.markdown)
    assert "**lrp**: lrp needs a model with lrp rules" in why
    assert "**attention_pool**: attention_pool needs a model with attention pooling" in why


def test_lrp_on_the_3d_model_adds_its_maximum_curve(zoo):
    at = start()
    at.sidebar.selectbox(key="model_name").set_value("b_r3d").run()
    at.multiselect(key="methods_b_r3d").set_value(["lrp", "gradcam_pp"]).run()
    assert not at.exception and not at.error
    assert curve_names(timeline(at)) == ["gradcam_pp", "lrp", "lrp (max)"]
    assert at.selectbox(key="param_lrp_composite_b_r3d").value == "epsilon_plus_flat"
    assert len(at.get("image")) == 3
    # the download follows the chosen overlay
    at.selectbox(key="download_method").set_value("lrp").run()
    assert at.get("download_button")[0].proto.label == "Download overlay video (mp4)"


def test_a_method_whose_maps_survive_randomisation_is_marked(zoo):
    from xai_core.evaluate import report

    sha = report.weights_sha256(zoo / "a_cnn_transformer.safetensors")
    rows = [
        {"method": "saliency", "spearman_all": 0.91, "spearman_logits": 0.2},
        {"method": "gradcam", "spearman_all": 0.12, "spearman_logits": 0.05},
    ]
    entry = {"sha256": sha, "sanity": {"rows": rows}}
    (zoo / report.RESULTS_FILE).write_text(
        json.dumps({"format": report.FORMAT, "models": {"a_cnn_transformer": entry}})
    )
    at = start()
    at.multiselect(key="methods_a_cnn_transformer").set_value(["gradcam", "saliency"]).run()
    assert not at.exception and not at.error
    badges = [m.value for m in at.markdown if "survive randomisation" in m.value]
    assert len(badges) == 1 and "saliency: maps survive randomisation (Spearman 0.91)" in badges[0]
    widget = at.multiselect(key="methods_a_cnn_transformer")
    assert widget.format_func("saliency") == "⚠ saliency" and widget.format_func("gradcam") == "gradcam"
    # over the clip alike, frame by frame not: the warning says that only the time course survives
    rows[0] |= {"spearman_all_frames": 0.08, "spearman_all_frames_signed": 0.03}
    (zoo / report.RESULTS_FILE).write_text(
        json.dumps({"format": report.FORMAT, "models": {"a_cnn_transformer": entry}})
    )
    at = start()
    at.multiselect(key="methods_a_cnn_transformer").set_value(["saliency"]).run()
    badges = [m.value for m in at.markdown if "survives randomisation" in m.value]
    assert (
        len(badges) == 1
        and (
            "saliency: the maps' size from frame to frame survives randomisation (Spearman 0.91 over the clip); "
            "within each frame they change (0.08)"
        )
        in badges[0]
    )
    # other weights under the same name (a retrained model): the result is not theirs, no mark
    entry["sha256"] = "0" * 64
    (zoo / report.RESULTS_FILE).write_text(
        json.dumps({"format": report.FORMAT, "models": {"a_cnn_transformer": entry}})
    )
    at = start()
    at.multiselect(key="methods_a_cnn_transformer").set_value(["saliency"]).run()
    assert not [m.value for m in at.markdown if "survive" in m.value]


def test_no_method_chosen_asks_for_one(zoo):
    at = start()
    at.multiselect(key="methods_a_cnn_transformer").set_value([]).run()
    assert not at.exception and not at.error
    assert any("Pick one or more methods" in i.value for i in at.info)
    assert not at.get("image")


def test_vanishing_saliency_compares_the_lstm_with_the_ica_lstm(tmp_path, monkeypatch):
    from xai_core.models.checkpoint import make_card, save_checkpoint

    for arch in ("cnn_lstm", "ica_lstm"):
        model = small_model(arch)
        model.info.name = f"{arch}-pause"
        save_checkpoint(model, tmp_path / f"{arch}-pause", make_card(model))
    monkeypatch.setenv("XAI_CHECKPOINTS", str(tmp_path))
    at = start()
    at.sidebar.selectbox(key="model_name").set_value("cnn_lstm-pause").run()
    assert not at.exception and not at.error
    charts = [c for c in at.get("plotly_chart") if "vanishing_profile" in c.proto.id]
    assert len(charts) == 1
    figure = json.loads(charts[0].proto.spec)
    assert curve_names(figure) == ["cnn_lstm-pause", "ica_lstm-pause"]
    assert figure["layout"]["yaxis"]["type"] == "log"
    import xai_core
    from xai_core.vanishing import gradient_profile

    model = xai_core.load_model(str(tmp_path / "cnn_lstm-pause"), device="cpu")
    clip = xai_core.load_video("shapes:7?noise=8&distractors=2", model=model)
    assert np.allclose(values(figure["data"][0]["y"]), gradient_profile(model, clip), rtol=1e-5)
    assert any(c.value.startswith("First quarter of the frames ÷ last quarter: cnn_lstm-pause:") for c in at.caption)
