"""The Models page's tables and figures (workbench.figures), built from cards without Streamlit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_model
from test_zoo_report import angle_card, zoo_card

from workbench import figures
from xai_core.models.training_runs import Progress


def test_the_table_has_a_row_per_card_with_its_figures():
    cards = [zoo_card(), angle_card(), {"name": "mine", "arch": "torchscript", "task": "classification"}]
    capabilities = {
        "cnn_lstm-sides": ["temporal_head", "cam_layer", "frame_encoder"],
        "r3d-angle": ["cam_layer"],
        "mine": "cannot be loaded: gone",
    }
    table = figures.zoo_table(cards, capabilities)
    assert list(table.columns) == figures.TABLE_COLUMNS
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
    stopped = figures.zoo_table([zoo_card(stopped_early=True, steps_done=120)], {})
    assert stopped.iloc[0]["training time"] == "1 h 50 min (stopped early)"
    assert stopped.iloc[0]["capabilities"] == "none"


def test_held_out_figures_one_row_per_condition():
    metrics = figures.metrics_frame(zoo_card(stopped_early=True, steps_done=120))
    assert metrics.to_dict("records") == [
        {"set": "test", "clips": "noise 8, 2 distractors", "result": "accuracy 97.2%", "n": 500},
        {"set": "robustness", "clips": "no noise, no distractors", "result": "accuracy 100.0%", "n": 200},
        {"set": "robustness", "clips": "noise 8, 2 white distractors", "result": "accuracy 90.0%", "n": 200},
    ]
    assert figures.metrics_frame({"name": "bare"}).empty


def test_a_loaded_models_card_has_no_curve():
    from xai_core.models.external import make_user_card

    assert figures.curve_figure(make_user_card(small_model("r3d"))) is None


def test_curve_figure_shows_validation_and_loss_with_the_kept_step():
    fig = figures.curve_figure(zoo_card())
    validation, loss = fig.data
    assert list(validation.x) == [200, 400] and list(validation.y) == [75.0, 50.0]
    assert list(loss.y) == [0.9, 0.5] and loss.yaxis == "y2"
    assert fig.layout.shapes[0].x0 == 200  # the step whose weights were kept
    assert fig.layout.yaxis.title.text == "accuracy (%)" and fig.layout.title.text == "Validation (50 clips)"
    regression = figures.curve_figure(angle_card())
    assert list(regression.data[0].y) == [12.5] and regression.layout.yaxis.title.text == "MAE (degrees)"


def test_moving_average_matches_a_plain_loop():
    values = list(np.random.default_rng(0).normal(size=30))
    expected = [np.mean(values[max(0, i - 6) : i + 1]) for i in range(30)]
    assert np.allclose(figures.moving_average(values, 7), expected)
    assert figures.moving_average([], 5).size == 0


def test_training_figure_has_losses_their_mean_and_validation_points():
    progress = Progress(
        phase="training",
        total_steps=100,
        steps=[1, 2, 3, 4],
        losses=[4.0, 2.0, 3.0, 1.0],
        validation=[{"step": 4, "accuracy": 0.25, "loss": 2.5}],
    )
    fig = figures.training_figure(progress, smooth=2)
    raw, mean, validation = fig.data
    assert list(raw.x) == [1, 2, 3, 4] and list(raw.y) == [4.0, 2.0, 3.0, 1.0]
    assert list(mean.y) == pytest.approx([4.0, 3.0, 2.5, 2.0])
    assert list(validation.x) == [4] and list(validation.y) == [25.0] and validation.yaxis == "y2"
    assert tuple(fig.layout.xaxis.range) == (0, 100)  # the whole run's length, filled as it goes
    assert tuple(figures.training_figure(progress, whole_run=False).layout.xaxis.range) == (0, 4)
    empty = figures.training_figure(Progress())
    assert len(empty.data) == 2 and len(empty.data[0].x) == 0
