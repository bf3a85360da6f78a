"""The Temporal page, driven headless with AppTest: the plan before a run, a run in the background
and its curve, map and deletion / insertion curves, a saved run found again by a new session, and
a cancelled run that leaves nothing behind."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_app_zoo
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    write_app_zoo(tmp_path)
    monkeypatch.setenv("XAI_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("XAI_RUNS", str(tmp_path / "runs"))
    return tmp_path


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/temporal.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait(at: AppTest, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if not at.get("progress"):
            return
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.3)


def charts(at: AppTest) -> list[str]:
    return [c.proto.id.split("-")[-1] for c in at.get("plotly_chart")]


def test_frame_masking_runs_shows_its_curve_and_is_found_again(zoo):
    at = start()
    assert at.radio(key="temporal_method").value == "frame_mask"
    plan = next(m.value for m in at.markdown if "model evaluations" in m.value)
    assert plan.startswith("**8 model evaluations**")  # the small zoo's 8 frames, one at a time
    assert any("Not computed yet" in i.value for i in at.info)
    at.button(key="temporal_run").click().run()
    wait(at)
    assert "temporal_curve" in charts(at)
    figure = json.loads(next(c for c in at.get("plotly_chart") if "temporal_curve" in c.proto.id).proto.spec)
    y = figure["data"][0]["y"]
    values = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]) if isinstance(y, dict) else np.asarray(y)
    assert figure["data"][0]["name"] == "drop in the score" and values.shape == (8,) and np.isfinite(values).all()
    at.button(key="temporal_deletion").click().run()
    assert "deletion_curves" in charts(at)
    saved = list((zoo / "runs").glob("*/explanation.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["method"] == "frame_mask"
    again = start()  # a new session finds the saved run without computing it
    assert "temporal_curve" in charts(again) and not any("Not computed yet" in i.value for i in again.info)


def test_tsr_shows_its_maps_and_threshold(zoo):
    at = start()
    at.radio(key="temporal_method").set_value("tsr").run()
    at.number_input(key="param_tsr_block_a_cnn_transformer").set_value(32).run()
    assert any("evaluations" in m.value and "saliency attributions" in m.value for m in at.markdown)
    at.button(key="temporal_run").click().run()
    wait(at)
    assert any(c.value.startswith("alpha = ") for c in at.caption)
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert len(captions) == 3 and captions[1].startswith("tsr · frame") and captions[2] == "base map (magnitude)"


def test_a_cancelled_run_saves_nothing(zoo):
    at = start()
    at.radio(key="temporal_method").set_value("occlusion").run()
    for i in (1, 2):
        at.number_input(key=f"param_occlusion_window_a_cnn_transformer_{i}").set_value(2).run()
        at.number_input(key=f"param_occlusion_stride_a_cnn_transformer_{i}").set_value(2).run()
    at.button(key="temporal_run").click().run()
    assert at.get("progress"), "the run should still be going"
    at.button(key="temporal_cancel").click().run()
    wait(at, seconds=30)
    assert any("was cancelled after" in w.value for w in at.warning)
    assert not list((zoo / "runs").glob("*/explanation.json"))
    assert any("Not computed yet" in i.value for i in at.info)
