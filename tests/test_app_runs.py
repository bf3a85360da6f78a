"""The Runs page (issue 19, point 3): saved runs in a table, filtered; one opened without
recomputing; two to four compared on one scrubber and one timeline, with the difference of two
maps of the same clip; chosen runs deleted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import open_page

import xai_core
from xai_core import display, render
from xai_core.evaluate.scores import read_map
from xai_core.figures import difference
from xai_core.runs import RunStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def saved(app_zoo):
    """Three saved runs: gradcam and saliency of the per-frame model, gradcam of the 3D CNN, one clip."""
    store = RunStore(app_zoo / "runs")
    keys = {}
    for name, method in (("a_cnn_transformer", "gradcam"), ("a_cnn_transformer", "saliency"), ("b_r3d", "gradcam")):
        model = xai_core.load_model(str(app_zoo / name))
        clip = xai_core.load_video("shapes:3", model=model)
        keys[name, method] = xai_core.explain(model, clip, method, store=store).meta["run"]
    return store, keys


def captions(at) -> list[str]:
    return [img.proto.imgs[0].caption for img in at.get("image")]


def test_no_runs_yet_is_said(app_zoo):
    at = open_page("pages/runs.py")
    assert any("No saved runs" in i.value for i in at.info)


def test_the_table_lists_and_filters_the_saved_runs(saved):
    store, keys = saved
    at = open_page("pages/runs.py")
    table = at.dataframe[0].value
    assert sorted(table["key"]) == sorted(keys.values())
    assert set(table.columns) >= {"saved", "model", "method", "clip", "prediction", "seconds", "device"}
    at.multiselect(key="runs_methods").set_value(["saliency"]).run()
    assert list(at.dataframe[0].value["key"]) == [keys["a_cnn_transformer", "saliency"]]
    assert len(at.multiselect(key="runs_chosen").options) == 1  # only the runs the table shows can be chosen


def test_one_run_opens_as_saved_without_recomputing(saved, shown_images, monkeypatch):
    store, keys = saved
    import xai_core.api

    def no_compute(*args, **kwargs):
        raise AssertionError("the Runs page must not compute")

    monkeypatch.setattr(xai_core.api, "_compute", no_compute)
    at = open_page("pages/runs.py")
    key = keys["a_cnn_transformer", "gradcam"]
    at.multiselect(key="runs_chosen").set_value([key]).run()
    assert not at.exception, [e.value for e in at.exception]
    frame = at.slider(key="runs_frame").value
    assert captions(at) == [f"original · frame {frame}", f"#1 a_cnn_transformer · gradcam · frame {frame}"]
    expl = store.load(key)
    frames, padded, _ = store.clip_frames(key)
    style = display.Style()
    floor, ceiling = display.display_range(expl.spatial, style, padded)
    drawn = display.draw(frames[frame], expl.spatial[frame], style, float(floor[frame]), float(ceiling[frame]))
    expected = render.with_colorbar(render.upscale(drawn, 3), style, float(floor[frame]), float(ceiling[frame]))
    assert np.abs(shown_images(at.get("image")[1]).astype(int) - expected).max() <= 1  # the saved map, as saved
    assert any(key[:10] in e.label or "a_cnn_transformer" in e.label for e in at.expander)


def test_two_runs_of_one_clip_are_compared_with_their_difference(saved, shown_images):
    store, keys = saved
    at = open_page("pages/runs.py")
    a, b = keys["a_cnn_transformer", "gradcam"], keys["a_cnn_transformer", "saliency"]
    at.multiselect(key="runs_chosen").set_value([a, b]).run()
    assert not at.exception, [e.value for e in at.exception]
    frame = at.slider(key="runs_frame").value
    shown = captions(at)
    assert shown[1:3] == [f"#1 a_cnn_transformer · gradcam · frame {frame}",
                          f"#2 a_cnn_transformer · saliency · frame {frame}"]  # fmt: skip
    assert shown[3].startswith("difference #1 − #2")
    curve = at.get("plotly_chart")[0]
    names = [trace["name"] for trace in json.loads(curve.proto.spec)["data"] if trace.get("name")]
    assert curve.proto.id.endswith("runs_curve") and "#2 a_cnn_transformer · saliency" in names
    frames, padded, _ = store.clip_frames(a)
    # gradcam is read as its positive part, saliency as its magnitude: each so before the difference
    first, second = read_map(store.load(a).spatial, "positive"), read_map(store.load(b).spatial, "magnitude")
    delta = difference(first, second, padded)
    signed = display.Style.default_for("signed")
    floor, ceiling = display.display_range(delta, signed, padded)
    drawn = display.draw(frames[frame], delta[frame], signed, float(floor[frame]), float(ceiling[frame]))
    expected = render.with_colorbar(render.upscale(drawn, 3), signed, float(floor[frame]), float(ceiling[frame]))
    assert np.abs(shown_images(at.get("image")[3]).astype(int) - expected).max() <= 1
    at.slider(key="runs_frame").set_value((frame + 1) % 8).run()  # one scrubber moves every run
    assert all(c.endswith(f"frame {(frame + 1) % 8}") for c in captions(at))


def test_chosen_runs_are_deleted_only_when_confirmed(saved):
    store, keys = saved
    at = open_page("pages/runs.py")
    gone = keys["b_r3d", "gradcam"]
    at.multiselect(key="runs_chosen").set_value([gone]).run()
    assert at.button(key="runs_delete").disabled
    at.checkbox(key="runs_delete_sure").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert gone not in {r.key for r in store.records()} and len(store.records()) == 2
    assert gone not in list(at.dataframe[0].value["key"])


def test_a_run_opens_back_into_its_page_and_is_served_there(app_zoo, monkeypatch):
    """Issue 19, point 3: a run made on the Explain page (seed 7, integrated gradients with 8
    steps), the sidebar moved on to another clip; Open on the Runs page sets the sidebar and the
    page back and the Explain page is served the saved run without computing."""
    import xai_core.api

    at = open_page("pages/explain.py")
    at.multiselect(key="methods_a_cnn_transformer").set_value(["integrated_gradients"]).run()
    at.number_input(key="param_integrated_gradients_steps_a_cnn_transformer").set_value(8).run()
    [record] = [r for r in RunStore(app_zoo / "runs").records() if r.method == "integrated_gradients" and
                r.params["steps"] == 8]  # fmt: skip
    at.number_input(key="shapes_seed").set_value(9).run()
    at.switch_page("pages/runs.py").run()
    at.multiselect(key="runs_chosen").set_value([record.key]).run()
    assert not at.exception, [e.value for e in at.exception]

    def no_compute(*args, **kwargs):
        raise AssertionError("the reopened page must be served the saved run")

    monkeypatch.setattr(xai_core.api, "_compute", no_compute)
    at.button(key=f"runs_open_{record.key}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="shapes_seed").value == 7
    assert at.multiselect(key="methods_a_cnn_transformer").value == ["integrated_gradients"]
    assert at.number_input(key="param_integrated_gradients_steps_a_cnn_transformer").value == 8
    said = " ".join(c.value for c in at.caption)
    assert f"integrated_gradients: from saved run {record.key[:10]}" in said, said


def test_a_run_of_an_uploaded_clip_says_why_it_stays_on_the_runs_page(saved):
    store, keys = saved
    from xai_core.runs import RunRecord

    record = store.record(keys["a_cnn_transformer", "gradcam"])
    from workbench import reopen

    upload = RunRecord(**{**record.__dict__, "source": "holiday.mp4"})
    assert "upload or a tensor" in reopen.why_not(upload, ["a_cnn_transformer"])
    assert "not loaded in this session" in reopen.why_not(record, ["other"])
    assert reopen.why_not(record, ["a_cnn_transformer"]) is None and reopen.page_of(record) == "pages/explain.py"
