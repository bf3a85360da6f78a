"""The Models page's tables and figures, built from cards without Streamlit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_model

from xai_core import zoo_report
from xai_core.models.training_runs import Progress


def zoo_card(**training) -> dict:
    """A card as training writes it (two validations, a test and two robustness conditions)."""
    return {
        "name": "cnn_lstm-sides",
        "arch": "cnn_lstm",
        "task": "classification",
        "labels": ["triangle", "square", "pentagon"],
        "input_spec": {"frames": 16, "height": 64, "width": 64, "mean": [0.45] * 3, "std": [0.225] * 3},
        "layout": "BTCHW",
        "parameters": 356_259,
        "file_bytes": 2_543_300,
        "training": {
            "command": "python -m xai_core train --arch cnn_lstm --task sides --out checkpoints/cnn_lstm-sides",
            "settings": {"task": "sides", "steps": 400, "batch_size": 8},
            "wall_clock_seconds": 6642.3,
            "best_step": 200,
            "curve": [
                {"step": 200, "seconds": 10.0, "loss": 0.9, "accuracy": 0.75, "clips": 50},
                {"step": 400, "seconds": 20.0, "loss": 0.5, "accuracy": 0.5, "clips": 50},
            ],
            **training,
        },
        "metrics": {
            "test": {
                "noise8_distractors2": {"accuracy": 0.972, "clips": 500, "options": {"noise": 8.0, "distractors": 2}}
            },
            "robustness": {
                "clean": {"accuracy": 1.0, "clips": 200, "options": {"noise": 0.0, "distractors": 0}},
                "noise8_white_distractors2": {
                    "accuracy": 0.9,
                    "clips": 200,
                    "options": {"noise": 8.0, "distractors": 2, "white_distractors": True},
                },
            },
        },
    }


def angle_card() -> dict:
    card = zoo_card()
    card.update(name="r3d-angle", arch="r3d", task="regression", labels=["angle"], file_bytes=1_434_348)
    card["training"]["settings"]["task"] = "angle"
    card["training"]["curve"] = [{"step": 100, "loss": 0.2, "mae_degrees": 12.5, "clips": 50}]
    card["metrics"] = {"test": {"noise8_distractors2": {"mae_degrees": 4.13, "clips": 500}}}
    return card


def test_formatting():
    assert zoo_report.format_duration(6642.3) == "1 h 50 min"
    assert zoo_report.format_duration(95) == "1 min 35 s" and zoo_report.format_duration(4.2) == "4 s"
    assert zoo_report.format_duration(None) == "-"
    assert zoo_report.format_bytes(2_543_300) == "2.5 MB" and zoo_report.format_bytes(900) == "900 B"
    assert zoo_report.format_count(356_259) == "356k" and zoo_report.format_count(33_200_000) == "33.2M"
    assert zoo_report.format_metric({"accuracy": 0.972}) == "accuracy 97.2%"
    assert zoo_report.format_metric({"mae_degrees": 4.13}) == "MAE 4.1°"


def test_the_table_has_a_row_per_card_with_its_figures():
    cards = [zoo_card(), angle_card(), {"name": "mine", "arch": "torchscript", "task": "classification"}]
    capabilities = {
        "cnn_lstm-sides": ["temporal_head", "cam_layer", "frame_encoder"],
        "r3d-angle": ["cam_layer"],
        "mine": "cannot be loaded: gone",
    }
    table = zoo_report.zoo_table(cards, capabilities)
    assert list(table.columns) == zoo_report.TABLE_COLUMNS
    assert table["name"].tolist() == ["cnn_lstm-sides", "r3d-angle", "mine"]
    first = table.iloc[0].to_dict()
    assert first == {
        "name": "cnn_lstm-sides",
        "architecture": "cnn_lstm",
        "task": "sides (classification)",
        "held-out": "accuracy 97.2%",
        "training time": "1 h 50 min",
        "file size": "2.5 MB",
        "parameters": "356k",
        "capabilities": "cam_layer, frame_encoder, temporal_head",
    }
    assert table.iloc[1]["held-out"] == "MAE 4.1°" and table.iloc[1]["task"] == "angle (regression)"
    mine = table.iloc[2]
    assert (mine["held-out"], mine["training time"], mine["file size"]) == ("-", "-", "-")
    assert mine["capabilities"] == "cannot be loaded: gone"
    stopped = zoo_report.zoo_table([zoo_card(stopped_early=True, steps_done=120)], {})
    assert stopped.iloc[0]["training time"] == "1 h 50 min (stopped early)"
    assert stopped.iloc[0]["capabilities"] == "none"


def test_card_facts_and_held_out_figures():
    card = zoo_card(stopped_early=True, steps_done=120)
    facts = dict(zoo_report.card_facts(card))
    assert facts["Labels"] == "triangle, square, pentagon"
    assert facts["Input"] == "16 frames of 64x64 · mean (0.45, 0.45, 0.45) · std (0.225, 0.225, 0.225) · layout BTCHW"
    assert facts["Training"] == (
        "120 steps, batch 8, 1 h 50 min wall clock, best validation at step 200; stopped early (planned 400 steps)"
    )
    assert zoo_report.describe_arch(card).startswith("cnn_lstm: per-frame CNN + LSTM")
    metrics = zoo_report.metrics_frame(card)
    assert metrics.to_dict("records") == [
        {"set": "test", "clips": "noise 8, 2 distractors", "result": "accuracy 97.2%", "n": 500},
        {"set": "robustness", "clips": "no noise, no distractors", "result": "accuracy 100.0%", "n": 200},
        {"set": "robustness", "clips": "noise 8, 2 white distractors", "result": "accuracy 90.0%", "n": 200},
    ]
    assert zoo_report.metrics_frame({"name": "bare"}).empty


def test_a_loaded_models_card_lists_its_weights_and_notes():
    from xai_core.models.external import make_user_card

    model = small_model("r3d")
    model.info.notes["weights"] = "random weights: no weights file was given"
    card = make_user_card(model)
    facts = dict(zoo_report.card_facts(card))
    assert facts["Grad-CAM layer"] == card["cam_layer"] and card["cam_layer"]
    assert facts["Note (weights)"] == "random weights: no weights file was given"
    assert "Training" not in facts and facts["Input"].startswith("8 frames of 64x64")
    assert zoo_report.curve_figure(card) is None


def test_curve_figure_shows_validation_and_loss_with_the_kept_step():
    fig = zoo_report.curve_figure(zoo_card())
    validation, loss = fig.data
    assert list(validation.x) == [200, 400] and list(validation.y) == [75.0, 50.0]
    assert list(loss.y) == [0.9, 0.5] and loss.yaxis == "y2"
    assert fig.layout.shapes[0].x0 == 200  # the step whose weights were kept
    assert fig.layout.yaxis.title.text == "accuracy (%)" and fig.layout.title.text == "Validation (50 clips)"
    regression = zoo_report.curve_figure(angle_card())
    assert list(regression.data[0].y) == [12.5] and regression.layout.yaxis.title.text == "MAE (degrees)"


def test_moving_average_matches_a_plain_loop():
    values = list(np.random.default_rng(0).normal(size=30))
    expected = [np.mean(values[max(0, i - 6) : i + 1]) for i in range(30)]
    assert np.allclose(zoo_report.moving_average(values, 7), expected)
    assert zoo_report.moving_average([], 5).size == 0


def test_training_figure_has_losses_their_mean_and_validation_points():
    progress = Progress(
        phase="training",
        total_steps=100,
        steps=[1, 2, 3, 4],
        losses=[4.0, 2.0, 3.0, 1.0],
        validation=[{"step": 4, "accuracy": 0.25, "loss": 2.5}],
    )
    fig = zoo_report.training_figure(progress, smooth=2)
    raw, mean, validation = fig.data
    assert list(raw.x) == [1, 2, 3, 4] and list(raw.y) == [4.0, 2.0, 3.0, 1.0]
    assert list(mean.y) == pytest.approx([4.0, 3.0, 2.5, 2.0])
    assert list(validation.x) == [4] and list(validation.y) == [25.0] and validation.yaxis == "y2"
    assert tuple(fig.layout.xaxis.range) == (0, 100)  # the whole run's length, filled as it goes
    assert tuple(zoo_report.training_figure(progress, whole_run=False).layout.xaxis.range) == (0, 4)
    empty = zoo_report.training_figure(Progress())
    assert len(empty.data) == 2 and len(empty.data[0].x) == 0


def test_zoo_markdown_lists_every_model_with_its_figures_and_command():
    from xai_core.zoo_report import zoo_markdown

    cards = [
        {
            "name": "m-sides",
            "arch": "cnn_lstm",
            "task": "classification",
            "file_bytes": 1_500_000,
            "parameters": 120_000,
            "training": {
                "command": "python -m xai_core train --arch cnn_lstm --task sides --out checkpoints/m-sides",
                "settings": {"task": "sides", "steps": 800, "seed": 0},
                "wall_clock_seconds": 1800,
                "validation": {"seeds": [5, 9]},
                "note": "Resumed once from its step-25 file.",
            },
            "metrics": {
                "test": {"noise8_distractors2": {"accuracy": 0.984, "clips": 500}},
                "robustness": {"clean": {"accuracy": 1.0, "clips": 200}},
                "test_seeds": [100, 599],
            },
        },
        {"name": "m-angle", "arch": "r3d", "task": "regression", "metrics": {"test": {"x": {"mae_degrees": 4.26}}}},
    ]
    text = zoo_markdown(cards)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == 2
    assert "accuracy 98.4% (500 clips)" in rows[0] and "30 min" in rows[0] and "800 steps" in rows[0]
    assert "MAE 4.3°" in rows[1]
    assert "python -m xai_core train --arch cnn_lstm --task sides --out checkpoints/m-sides" in text
    assert "```\n\nResumed once from its step-25 file.\n" in text  # the card's training note, under the command
    assert "Test seeds 100-599" not in text and "test seeds 100-599" in text
