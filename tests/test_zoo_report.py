"""Model cards as text (the Models page's facts, the zoo's README), without Streamlit, pandas or plotly."""

from __future__ import annotations

from conftest import small_model

from xai_core import zoo_report


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


def test_the_headline_is_worded_one_way_everywhere():
    """The first test condition with a figure; the clips and the condition's name on request."""
    card = {"metrics": {"test": {"note": {"clips": 3}, "clean": {"mae_degrees": 4.13, "clips": 500}}}}
    assert zoo_report.headline_metric(card) == "MAE 4.1°"
    assert zoo_report.headline_metric(card, clips=True) == "MAE 4.1° (500 clips)"
    assert zoo_report.headline_metric(card, clips=True, condition=True) == "MAE 4.1° (clean, 500 clips)"
    assert zoo_report.headline_metric(card, condition=True) == "MAE 4.1° (clean)"
    assert zoo_report.headline_metric({"name": "upload"}) == "-"
    assert zoo_report.headline_metric({"metrics": {}}, missing="no test figure") == "no test figure"
    test = {"retested": {"accuracy": 0.5, "clips": 9}}
    assert zoo_report.test_headline(test, clips=True, condition=True) == "accuracy 50.0% (retested, 9 clips)"


def test_card_facts():
    card = zoo_card(stopped_early=True, steps_done=120)
    facts = dict(zoo_report.card_facts(card))
    assert facts["Labels"] == "triangle, square, pentagon"
    assert facts["Input"] == "16 frames of 64x64 · mean (0.45, 0.45, 0.45) · std (0.225, 0.225, 0.225) · layout BTCHW"
    assert facts["Training"] == (
        "120 steps, batch 8, 1 h 50 min wall clock, best validation at step 200; stopped early (planned 400 steps)"
    )
    assert zoo_report.describe_arch(card).startswith("cnn_lstm: per-frame CNN + LSTM")


def test_a_loaded_models_card_lists_its_weights_and_notes():
    from xai_core.models.external import make_user_card

    model = small_model("r3d")
    model.info.notes["weights"] = "random weights: no weights file was given"
    card = make_user_card(model)
    facts = dict(zoo_report.card_facts(card))
    assert facts["Grad-CAM layer"] == card["cam_layer"] and card["cam_layer"]
    assert facts["Note (weights)"] == "random weights: no weights file was given"
    assert "Training" not in facts and facts["Input"].startswith("8 frames of 64x64")


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
