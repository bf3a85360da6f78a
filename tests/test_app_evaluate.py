"""The Evaluate page, driven headless with AppTest: a suite run in the background and its table
(kept in the session when another suite is picked), and a run cancelled from the page."""

from __future__ import annotations

import pytest
from conftest import open_page, wait_for_job

from xai_core.evaluate.suites import format_value, survival, survival_warning

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def ui_results(at) -> dict:
    """The Evaluate page's finished results in the AppTest session."""
    return at.session_state["results"]["evaluate"]


def start():
    return open_page("pages/evaluate.py")


def test_a_localization_run_shows_its_table(app_zoo):
    at = start()
    assert at.radio(key="eval_suite").value == "localization"
    assert at.multiselect(key="eval_methods_localization_a_cnn_transformer").value == ["gradcam", "saliency"]
    at.number_input(key="eval_n").set_value(2).run()
    assert at.checkbox(key="eval_randomised").value is True  # the randomised model beside, by default
    assert "8 explanations (2 methods x 2 clips x 2 models: trained, randomised)" in at.caption[-1].value
    at.button(key="eval_run").click().run()
    wait_for_job(at)
    table = at.dataframe[0].value
    assert table.index.tolist() == ["gradcam", "gradcam", "saliency", "saliency"]
    assert table["model"].tolist() == ["trained", "all weights randomised"] * 2
    result = next(iter(ui_results(at).values()))
    for row, (_, shown) in zip(result["rows"], table.iloc[::2].iterrows(), strict=True):
        assert shown["peak on shape"] == f"{row['inside']:.1%} ± {row['inside_se']:.1%}"
        assert shown["pointing game"] == f"{row['pointing']:.1%} ± {row['pointing_se']:.1%}"
        value = survival(row)
        assert shown["survives randomisation (Spearman)"] == ("⚠ " if value > 0.5 else "") + format_value(
            value, "ratio"
        )
        warned = any(w.value == survival_warning(row) for w in at.warning)
        assert warned == (value > 0.5)
    explained = "Pointing game: the share of frames whose map peaks within 4.28571 pixels"  # 15 * 64 / 224
    assert any(c.value.startswith(explained) for c in at.caption)
    for r in result["rows"]:  # 64-pixel test frames: a tolerance of 4.3 pixels, over the 4 of within_4px
        assert 0 <= r["inside"] <= r["within_4px"] <= r["pointing"] <= 1 and r["area_share"] > 0
    # another suite keeps the first result in the session
    at.radio(key="eval_suite").set_value("temporal").run()
    earlier = next(e for e in at.expander if e.label == "Earlier results in this session (1)")
    assert len(at.dataframe) == len(earlier.dataframe) == 1


def test_a_run_cancelled_from_the_page_keeps_nothing(app_zoo):
    at = start()
    at.radio(key="eval_suite").set_value("sanity").run()
    at.number_input(key="eval_n").set_value(40).run()
    at.button(key="eval_run").click().run()
    assert at.get("progress"), "the run should still be going"
    at.button(key="eval_cancel").click().run()
    wait_for_job(at, seconds=30)
    assert any("was cancelled after" in w.value for w in at.warning)
    assert not at.dataframe
    at.button(key="eval_run").click().run()  # the slot is free again
    assert not at.error and at.get("progress")
    at.button(key="eval_cancel").click().run()
    wait_for_job(at, seconds=30)
