"""The Motion page, driven headless with AppTest: the decomposition's maps on the scrubbed frame,
the motion-vs-appearance curve, the top flow vectors, the trajectories (a bad point refused with
one message, the rest of the page kept), SmoothFlow and Farneback's settings."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from conftest import open_page

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def captions(at) -> list[str]:
    return [img.proto.imgs[0].caption for img in at.get("image")]


def share_values(at) -> np.ndarray:
    chart = next(c for c in at.get("plotly_chart") if "motion_share" in c.proto.id)
    y = json.loads(chart.proto.spec)["data"][0]["y"]
    return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]) if isinstance(y, dict) else np.asarray(y)


def test_the_flow_gradient_maps_and_the_motion_share(app_zoo):
    at = open_page("pages/motion.py")
    assert at.radio(key="motion_method").value == "flow_gradient"
    shown = captions(at)
    assert len(shown) == 7 and shown[0].startswith("flow into frame") and "top 30 flow vectors" in shown[2]
    assert shown[6].startswith("top 10 trajectories by gradcam over 8 frames")
    share = share_values(at)
    assert share.shape == (7,) and ((share >= 0) & (share <= 1)).all()  # 8 frames: 7 flows
    assert next(c.value for c in at.caption if c.value.startswith("Mean motion share"))
    said = next(c.value for c in at.caption if c.value.startswith("Motion reliance"))
    found = re.search(r"Motion reliance (\d+)%: with every flow set to zero \(nothing moves\) the score goes", said)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Motion reliance"] == f"{found.group(1)}%"  # the headline figure and its explanation agree
    assert set(metrics) == {"Motion reliance", "Score", "Nothing moving", "No errors"}
    at.slider(key="motion_frame").set_value(3).run()
    assert captions(at)[0].startswith("flow into frame 3")
    at.slider(key="motion_top").set_value(10).run()
    assert "top 10 flow vectors" in captions(at)[2]
    at.number_input(key="param_trajectories_top_a_cnn_transformer").set_value(3).run()
    at.text_input(key="param_trajectories_points_a_cnn_transformer").set_value("not a point").run()
    assert at.error and "'x,y,t' triples" in at.error[0].value and len(captions(at)) == 6  # the flow maps stay
    at.text_input(key="param_trajectories_points_a_cnn_transformer").set_value("10,20,2").run()
    assert not at.error and captions(at)[6].startswith("top 3 trajectories")
    table = at.dataframe[0].value
    assert len(table) == 3 and all(re.fullmatch(r"-?\d(\.\d+)?(e[-+]\d+)?|-?\d+(\.\d+)?", v) for v in table["score"])
    assert all(len(v.replace("-", "").replace(".", "").split("e")[0].lstrip("0")) <= 3 for v in table["score"])


def test_smoothflow_and_farneback_settings(app_zoo):
    at = open_page("pages/motion.py")
    before = share_values(at)
    at.radio(key="motion_method").set_value("smoothflow").run()
    at.number_input(key="param_smoothflow_samples_a_cnn_transformer").set_value(2).run()
    assert not at.exception and len(captions(at)) == 7
    assert not np.array_equal(share_values(at), before)  # the averaged gradients differ
    at.number_input(key="param_smoothflow_winsize_a_cnn_transformer").set_value(7).run()
    assert not at.exception and not at.error and len(captions(at)) == 7


def test_the_gradient_maps_carry_colour_bars_and_follow_the_chosen_range(app_zoo, shown_images):
    """The flow, error and first-frame gradients are drawn like the other pages' maps: a colour bar
    beside each (wider than the flow tiles), and the contrast control changes what is coloured."""
    at = open_page("pages/motion.py")
    images = at.get("image")
    widths = [shown_images(image).shape[1] for image in images[:6]]
    assert widths[2] > widths[0] and widths[3] > widths[0] and widths[4] > widths[0]  # the bars
    assert widths[1] == widths[0] == widths[5]  # flows and the warp error: no map range, no bar
    before = shown_images(images[2])
    at.slider(key="motion_contrast").set_value((60.0, 99.0)).run()
    assert not at.exception
    after = shown_images(at.get("image")[2])
    assert after.shape == before.shape and not np.array_equal(after, before)


def test_motion_runs_are_saved_and_served_again_with_their_device(app_zoo):
    """Issue 19, points 1 and 8: the page's flow gradients and trajectories are saved runs, found
    again on the next request, and the device that computed them is said."""
    from xai_core.runs import RunStore

    at = open_page("pages/motion.py")
    store = RunStore(app_zoo / "runs")
    assert {r.method for r in store.records()} == {"flow_gradient", "trajectories"}
    first = next(c.value for c in at.caption if c.value.startswith("flow_gradient: computed in"))
    assert " on cpu" in first and "from saved run" not in first
    again = open_page("pages/motion.py")  # a new session: served from the store
    said = next(c.value for c in again.caption if c.value.startswith("flow_gradient: computed in"))
    assert f"from saved run {store.records(method='flow_gradient')[0].key[:10]}" in said
    labels = [b.proto.label for b in again.get("download_button")]
    assert {"This frame's pictures (PNG)", "flow_gradient run (zip)", "trajectories run (zip)"} <= set(labels)
    assert any(e.label.startswith("About flow_gradient:") for e in again.expander)  # its method card
