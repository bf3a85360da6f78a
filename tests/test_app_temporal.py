"""The Temporal page, driven headless with AppTest: the plan before a run, a run in the background
and its curve, map and deletion / insertion curves, a saved run found again by a new session, and
a cancelled run that leaves nothing behind."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from conftest import open_page, wait_for_job

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def start():
    return open_page("pages/temporal.py")


def charts(at) -> list[str]:
    return [c.proto.id.split("-")[-1] for c in at.get("plotly_chart")]


def test_frame_masking_runs_shows_its_curve_and_is_found_again(app_zoo):
    at = start()
    assert at.radio(key="temporal_method").value == "frame_mask"
    plan = next(m.value for m in at.markdown if "model evaluations" in m.value)
    assert plan.startswith("**8 model evaluations**")  # the small zoo's 8 frames, one at a time
    assert any("Not computed yet" in i.value for i in at.info)
    at.button(key="temporal_run").click().run()
    wait_for_job(at)
    assert "temporal_curve" in charts(at)
    figure = json.loads(next(c for c in at.get("plotly_chart") if "temporal_curve" in c.proto.id).proto.spec)
    y = figure["data"][0]["y"]
    values = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]) if isinstance(y, dict) else np.asarray(y)
    assert figure["data"][0]["name"] == "drop in the score" and values.shape == (8,) and np.isfinite(values).all()
    at.button(key="temporal_deletion").click().run()
    assert "deletion_curves" in charts(at)
    saved = list((app_zoo / "runs").glob("*/explanation.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["method"] == "frame_mask"
    again = start()  # a new session finds the saved run without computing it
    assert "temporal_curve" in charts(again) and not any("Not computed yet" in i.value for i in again.info)


def test_tsr_shows_its_maps_and_threshold(app_zoo):
    at = start()
    at.radio(key="temporal_method").set_value("tsr").run()
    at.number_input(key="param_tsr_block_a_cnn_transformer").set_value(32).run()
    plan = next(m.value for m in at.markdown if "model evaluations" in m.value)
    assert "gradient engine:" in plan and "Jacobian passes" in plan  # the engine the run will use, timed
    at.button(key="temporal_run").click().run()
    wait_for_job(at)
    assert any(c.value.startswith("alpha = ") for c in at.caption)
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert len(captions) == 3 and captions[1].startswith("tsr · frame") and captions[2] == "base map (magnitude)"


def test_a_cancelled_run_saves_nothing(app_zoo):
    at = start()
    at.radio(key="temporal_method").set_value("occlusion").run()
    for i in (1, 2):
        at.number_input(key=f"param_occlusion_window_a_cnn_transformer_{i}").set_value(2).run()
        at.number_input(key=f"param_occlusion_stride_a_cnn_transformer_{i}").set_value(2).run()
    at.button(key="temporal_run").click().run()
    assert at.get("progress"), "the run should still be going"
    assert not any("Not computed yet" in i.value for i in at.info)  # no stale message beside the progress
    at.button(key="temporal_cancel").click().run()
    wait_for_job(at, seconds=30)
    assert any("was cancelled after" in w.value for w in at.warning)
    assert not list((app_zoo / "runs").glob("*/explanation.json"))
    assert any("Not computed yet" in i.value for i in at.info)


def test_two_sessions_computing_at_once_both_finish_with_their_own_results(app_zoo):
    """Issue 19, point 8: two sessions (two AppTest instances of one server process) run their
    background jobs at the same time, on two models; each finishes, each run is saved under its
    own model and neither sees the other's progress."""
    from xai_core.runs import RunStore

    first, second = start(), start()
    second.selectbox(key="model_name").set_value("b_r3d").run()
    for at in (first, second):
        at.radio(key="temporal_method").set_value("occlusion").run()
    first.button(key="temporal_run").click().run()
    second.button(key="temporal_run").click().run()
    assert first.get("progress") and second.get("progress")  # both computing at once
    assert "a_cnn_transformer" in first.get("progress")[0].proto.text
    assert "b_r3d" in second.get("progress")[0].proto.text
    wait_for_job(first, seconds=300)
    wait_for_job(second, seconds=300)
    runs = {r.model: r for r in RunStore(app_zoo / "runs").records(method="occlusion")}
    said = [e.value for at in (first, second) for e in (*at.error, *at.warning)]  # what the pages said, if not
    assert set(runs) == {"a_cnn_transformer", "b_r3d"} and {r.device for r in runs.values()} == {"cpu"}, said
    for at, name in ((first, "a_cnn_transformer"), (second, "b_r3d")):
        assert "temporal_curve" in charts(at)
        said = " ".join(c.value for c in at.caption)
        assert f"{runs[name].key[:10]}" in said and "on cpu" in said, said
