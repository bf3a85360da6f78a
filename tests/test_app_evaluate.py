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


def test_a_finished_suite_is_a_saved_run_served_to_the_next_session(app_zoo):
    """Issue 19, point 1: an evaluation is kept in the run store; a new session with the same
    model and settings is shown it without running; the Runs page lists it among evaluations."""
    import json

    from xai_core.runs import RunStore

    at = start()
    at.number_input(key="eval_n").set_value(1).run()
    at.button(key="eval_run").click().run()
    wait_for_job(at)
    [record] = RunStore(app_zoo / "runs").records(kind="evaluation")
    assert record.method == "localization suite" and record.model == "a_cnn_transformer" and record.device == "cpu"
    assert record.params["n"] == 1 and record.params["methods"] == ["gradcam", "saliency"]
    document = json.loads((record.folder / "document.json").read_text())
    assert document["rows"] == json.loads(json.dumps(next(iter(ui_results(at).values()))["rows"], default=str))
    again = start()
    again.number_input(key="eval_n").set_value(1).run()
    assert any(c.value.startswith(f"From saved run {record.key[:10]}") for c in again.caption)
    assert again.dataframe[0].value.index.tolist()[:1] == ["gradcam"]
    runs_page = open_page("pages/runs.py")
    assert "evaluation" in set(runs_page.dataframe[0].value["kind"])
    assert list(runs_page.multiselect(key="runs_chosen").options) == []  # only explanations are opened


def test_a_suite_from_the_command_line_or_the_api_is_served_to_the_page(app_zoo, capsys, tmp_path):
    """The three doors share one key: `xai evaluate --model`, run_suite(store=...) and the page."""
    import xai_core
    from xai_core.cli import main
    from xai_core.evaluate.suites import run_suite
    from xai_core.runs import RunStore

    argv = ["evaluate", "--suite", "localization", "--model", "a_cnn_transformer", "--methods", "saliency,gradcam",
            "--n", "1", "--randomised", "--out", str(tmp_path / "e"), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    [record] = RunStore(app_zoo / "runs").records(kind="evaluation")
    model = xai_core.load_model("a_cnn_transformer", "cpu")
    served = run_suite("localization", model, ["gradcam", "saliency"], n=1, randomised=True, store=app_zoo / "runs")
    assert served["saved_run"] == record.key and len(RunStore(app_zoo / "runs").records()) == 1
    at = start()
    at.number_input(key="eval_n").set_value(1).run()
    assert any(c.value.startswith(f"From saved run {record.key[:10]}") for c in at.caption)
    fresh = run_suite("localization", model, ["gradcam"], n=1, randomised=True, store=app_zoo / "runs")
    assert fresh["saved_run"] != record.key and len(RunStore(app_zoo / "runs").records()) == 2


def test_the_page_opens_a_batch_result(app_zoo, tmp_path):
    """A folder written by `xai batch` shows its per-model / per-method table (the aggregates of its
    Parquet file), a spread chart and the failed items; a folder without results says so."""
    import numpy as np

    from xai_core.batch import BatchSpec, read_results, run_batch
    from xai_core.batch.summary import aggregates

    out = tmp_path / "batch"
    spec = BatchSpec(["a_cnn_transformer", "no_such_model"], ["gradcam", "saliency"], "shapes:0..2",
                     suite="localization")  # fmt: skip
    run_batch(spec, out, report=None)
    at = start()
    at.text_input(key="batch_folder").set_value(str(tmp_path / "nothing")).run()
    assert any("no such folder" in e.value for e in at.error)
    at.text_input(key="batch_folder").set_value(str(out)).run()
    assert not at.exception
    assert any(c.value.startswith("8 items: 4 ok, 4 failed") for c in at.caption)
    panel = next(e for e in at.expander if e.label.startswith("A batch's results"))
    shown = panel.dataframe[0].value
    table = read_results(out)
    expected = {(r["model"], r["method"]): r for r in aggregates(table, ["model", "method"])}
    for (model, method), row in shown.iterrows():
        mean, se, _ = expected[(model, method)]["localization.pointing"]
        cell = row["localization.pointing"]
        assert cell == ("–" if not np.isfinite(mean) else f"{mean:.3f} ± {se:.3f}")
    assert shown.loc[("a_cnn_transformer", "saliency"), "items"] == 2
    assert shown.loc[("no_such_model", "saliency"), "failed"] == 2
    failed = panel.dataframe[1].value
    assert failed["model"].tolist() == ["no_such_model"] * 4 and "no_such_model" in failed["error"].iloc[0]
