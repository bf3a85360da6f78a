"""Heavy methods on the Explain page (issue 18, point 3): chosen, they show their plan and run in
the background (progress, Cancel) while the page shows the other methods; a finished run is
saved in the run store under the Temporal page's key, so either page finds it; a cancel keeps
what finished before it.  $XAI_BACKGROUND_SECONDS=0 sends every long method to the background
(the small zoo is too fast to cross the default threshold)."""

from __future__ import annotations

import json

import pytest
from conftest import open_page, wait_for_job

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

METHODS = "methods_a_cnn_transformer"


def explain_page(monkeypatch):
    monkeypatch.setenv("XAI_BACKGROUND_SECONDS", "0")
    return open_page("pages/explain.py")


def captions(at) -> list[str]:
    return [img.proto.imgs[0].caption for img in at.get("image")]


def shrink_occlusion(at) -> None:
    """Windows of one pixel: 32,768 perturbations, long enough to cancel mid-run."""
    for i in (1, 2):
        at.number_input(key=f"param_occlusion_window_a_cnn_transformer_{i}").set_value(1).run()
        at.number_input(key=f"param_occlusion_stride_a_cnn_transformer_{i}").set_value(1).run()


def test_a_heavy_method_runs_in_the_background_beside_the_light_ones(app_zoo, monkeypatch):
    at = explain_page(monkeypatch)
    at.multiselect(key=METHODS).set_value(["gradcam", "frame_mask"]).run()
    assert not at.exception, [e.value for e in at.exception]
    plan = next(m.value for m in at.markdown if "Run in the background" in m.value)
    assert "**frame_mask**: 8 model evaluations" in plan
    assert any(c.startswith("gradcam for") for c in captions(at))  # the light method is on screen meanwhile
    assert not any(c.startswith("frame_mask") for c in captions(at))
    at.button(key="explain_run").click().run()
    wait_for_job(at)
    assert not any("Run in the background" in m.value for m in at.markdown)
    strips = [c for c in captions(at) if c.startswith("frame_mask")]
    assert len(strips) == 1  # the finished run on the page, with the light method's map
    saved = list((app_zoo / "runs").glob("*/explanation.json"))  # every explanation is a saved run
    assert sorted(json.loads(p.read_text())["method"] for p in saved) == ["frame_mask", "gradcam"]
    temporal = open_page("pages/temporal.py")  # the Temporal page finds the same run: nothing to compute
    assert temporal.radio(key="temporal_method").value == "frame_mask"
    assert "temporal_curve" in [c.proto.id.split("-")[-1] for c in temporal.get("plotly_chart")]
    assert not any("Not computed yet" in i.value for i in temporal.info)


def test_several_heavy_methods_run_in_turn_and_a_cancel_keeps_the_finished_ones(app_zoo, monkeypatch):
    at = explain_page(monkeypatch)
    at.multiselect(key=METHODS).set_value(["frame_mask", "occlusion"]).run()
    shrink_occlusion(at)
    assert at.button(key="explain_run").label.startswith("Run 2 in the background")
    at.button(key="explain_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    import time

    deadline = time.monotonic() + 60
    from xai_core.runs import RunStore

    while not RunStore(app_zoo / "runs").records(method="frame_mask"):  # frame_mask first, then occlusion
        assert time.monotonic() < deadline, "frame_mask did not finish"
        time.sleep(0.2)
    while True:  # the job moves on to occlusion a moment after frame_mask is saved
        at.run()
        assert at.get("progress"), "occlusion should still be running"
        if "occlusion (2 of 2)" in at.get("progress")[0].proto.text:
            break
        assert time.monotonic() < deadline, at.get("progress")[0].proto.text
        time.sleep(0.2)
    at.button(key="explain_cancel").click().run()
    wait_for_job(at, seconds=30)
    said = "was cancelled during occlusion (2 of 2); saved before it: frame_mask."
    assert any(said in w.value for w in at.warning), [w.value for w in at.warning]
    saved = [json.loads(p.read_text())["method"] for p in (app_zoo / "runs").glob("*/explanation.json")]
    assert sorted(saved) == ["frame_mask", "gradcam"]  # gradcam: the page's first choice, saved when shown
    assert any(c.startswith("frame_mask") for c in captions(at))
    assert at.button(key="explain_run").label.startswith("Run occlusion in the background")


def test_a_method_that_fails_in_the_background_says_why_and_the_page_goes_on(app_zoo, monkeypatch):
    at = explain_page(monkeypatch)
    at.multiselect(key=METHODS).set_value(["gradcam", "tsr"]).run()
    at.text_input(key="param_tsr_base_a_cnn_transformer").set_value("frame_mask").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any("TSR needs a spatial base method" in e for e in errors), errors  # refused before any run
    assert any(c.startswith("gradcam for") for c in captions(at))


def test_a_method_that_fails_in_the_background_is_named_and_the_others_are_saved(app_zoo, monkeypatch):
    """Whatever a method raises in the background (here a RuntimeError, as CUDA's out of memory
    would) is said with the method's name; the methods after it still run and are saved."""
    from workbench import runs

    real = runs.explain

    def failing(model, clip, method, **kwargs):
        if method == "frame_mask":
            raise RuntimeError("out of memory (as CUDA says it)")
        return real(model, clip, method, **kwargs)

    monkeypatch.setattr(runs, "explain", failing)
    at = explain_page(monkeypatch)
    at.multiselect(key=METHODS).set_value(["frame_mask", "tsr_onestep"]).run()
    at.button(key="explain_run").click().run()
    wait_for_job(at)
    assert any(e.value == "frame_mask failed: out of memory (as CUDA says it)" for e in at.error), at.error
    saved = [json.loads(p.read_text())["method"] for p in (app_zoo / "runs").glob("*/explanation.json")]
    assert sorted(saved) == ["gradcam", "tsr_onestep"]
    assert any(c.startswith("tsr_onestep for") for c in captions(at))
    at.multiselect(key=METHODS).set_value(["gradcam"]).run()  # other methods chosen: the old outcome is gone
    assert not at.error


def test_every_explanation_is_saved_and_served_again_with_its_provenance(app_zoo, monkeypatch):
    """Issue 19, point 1: the page saves what it computes (with the clip's frames) and a repeated
    request is served from the store, the page saying so."""
    from xai_core.runs import RunStore

    at = open_page("pages/explain.py")
    at.multiselect(key=METHODS).set_value(["gradcam", "saliency"]).run()
    assert not at.exception, [e.value for e in at.exception]
    store = RunStore(app_zoo / "runs")
    records = {r.method: r for r in store.records()}
    assert set(records) == {"gradcam", "saliency"}
    assert all(r.model == "a_cnn_transformer" and r.device == "cpu" and r.source for r in records.values())
    assert store.clip_frames(records["gradcam"].key)[0].dtype.name == "uint8"
    at.run()  # the same request again: from the store
    said = " ".join(c.value for c in at.caption)
    assert f"gradcam: from saved run {records['gradcam'].key[:10]}" in said, said
    assert f"saliency: from saved run {records['saliency'].key[:10]}" in said
    assert len(store.records()) == 2
