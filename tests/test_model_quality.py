"""Where a model errs (issue 19, point 7): labelled clips, the confusion matrix, per-class
precision / recall / F1 and ROC AUC against a slow count, the regression errors, the command
line and the Models page's tab."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import open_page, wait_for_job

import xai_core
from xai_core.cli import main
from xai_core.data.moving_shapes import parse_source
from xai_core.evaluate import model_quality as mq
from xai_core.video import write_video

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
LABELS = ["triangle", "square", "pentagon"]


def slow_report(truth, predicted, k):
    """Precision, recall and F1 of class k by counting."""
    tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == k and p == k)
    fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != k and p == k)
    fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == k and p != k)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def slow_auc(positive, scores):
    """The probability that a positive clip scores above a negative one (ties count half)."""
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = [s for s, p in zip(scores, positive, strict=True) if not p]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def test_classification_figures_match_a_slow_count():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 60)
    probabilities = rng.dirichlet(np.ones(3), 60)
    probabilities[np.arange(60), truth] += rng.random(60)  # better than chance, not perfect
    probabilities /= probabilities.sum(1, keepdims=True)
    result = mq.classification_quality(truth, probabilities, LABELS)
    predicted = probabilities.argmax(1)
    assert result["accuracy"] == pytest.approx(np.mean(predicted == truth))
    for t in range(3):
        for p in range(3):
            assert result["confusion"][t][p] == int(np.sum((truth == t) & (predicted == p)))
    for k, row in enumerate(result["per_class"]):
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(slow_report(truth, predicted, k))
        assert row["support"] == int(np.sum(truth == k))
        assert result["roc"][LABELS[k]]["auc"] == pytest.approx(slow_auc(truth == k, probabilities[:, k]))
    assert result["macro_auc"] == pytest.approx(np.mean([slow_auc(truth == k, probabilities[:, k]) for k in range(3)]))


def test_a_class_without_clips_has_no_roc_curve_and_regression_errors_are_signed():
    result = mq.classification_quality(np.array([0, 0, 1, 1]), np.eye(3)[[0, 1, 1, 1]], LABELS)
    assert set(result["roc"]) == {"triangle", "square"} and result["per_class"][2]["support"] == 0
    reg = mq.regression_quality(np.array([10.0, 20.0, 30.0]), np.array([[12.0], [18.0], [30.0]]), "degrees")
    assert reg["errors"] == [2.0, -2.0, 0.0] and reg["mae"] == pytest.approx(4 / 3)
    assert reg["rmse"] == pytest.approx(np.sqrt(8 / 3)) and reg["max_error"] == 2.0


def test_shapes_clips_carry_the_generators_labels(tiny_checkpoints):
    model = xai_core.load_model("tiny_r3d")
    clips = mq.shapes_clips(model, 6, seed=1_500_000_000)
    for item in clips:
        clip = xai_core.load_video(item.source, model=model)
        assert LABELS[int(item.label)] == clip.meta["shape"], item
        seed, _ = parse_source(item.source)
        assert seed >= 1_000_000_000  # never a training seed
    with pytest.raises(ValueError, match="at least two clips"):
        mq.shapes_clips(model, 1)


def test_a_folder_of_labelled_clips(tiny_checkpoints, tmp_path):
    model = xai_core.load_model("tiny_r3d")
    for k, name in enumerate(("triangle", "square")):
        (tmp_path / "clips" / name).mkdir(parents=True)
        frames = np.full((8, 64, 64, 3), 60 * (k + 1), np.uint8)
        write_video(frames, tmp_path / "clips" / name / f"{name}.mp4")
    clips = mq.folder_clips(model, tmp_path / "clips")
    assert sorted((c.source.split("/")[-1], c.label) for c in clips) == [("square.mp4", 1.0), ("triangle.mp4", 0.0)]
    result = mq.evaluate_model_quality(model, clips)
    assert result["clips"] == 2 and sum(map(sum, result["confusion"])) == 2
    (tmp_path / "clips" / "hexagon").mkdir()
    with pytest.raises(ValueError, match="hexagon: not a label of tiny_r3d"):
        mq.folder_clips(model, tmp_path / "clips")


def test_the_command_writes_the_report(tiny_checkpoints, tmp_path, capsys):
    assert (
        main(["evaluate-model", "--model", "tiny_cnn_transformer", "--n", "6", "--out", str(tmp_path), "--quiet"]) == 0
    )
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "quality.json").read_text())
    assert result["clips"] == 6 and len(result["sources"]) == 6
    assert "Confusion matrix" in out and (tmp_path / "quality.md").read_text() in out


def test_the_models_page_evaluates_a_model_in_the_background(app_zoo):
    at = open_page("pages/models.py")
    at.selectbox(key="quality_model").set_value("a_cnn_transformer").run()
    at.number_input(key="quality_n").set_value(6).run()
    at.button(key="quality_run").click().run()
    wait_for_job(at)
    assert not at.exception, [e.value for e in at.exception]
    charts = [c.proto.id.split("-")[-1] for c in at.get("plotly_chart")]
    assert "quality_confusion" in charts
    assert any("Accuracy" in m.value for m in at.markdown)
    at.selectbox(key="quality_model").set_value("c_cnn_lstm-angle").run()  # labels ["angle"]: not the task's
    at.button(key="quality_run").click().run()
    assert any("is not a Moving Shapes model" in e.value for e in at.error)


def test_regression_figures_show_the_pairs_and_the_errors():
    from workbench import figures

    result = mq.regression_quality(np.array([10.0, 20.0, 30.0]), np.array([12.0, 18.0, 30.0]), "degrees")
    scatter, histogram = figures.regression_figures(result)
    assert list(scatter.data[0].x) == [10.0, 20.0, 30.0] and list(scatter.data[0].y) == [12.0, 18.0, 30.0]
    assert list(histogram.data[0].x) == [2.0, -2.0, 0.0] and "MAE 1.33 (degrees)" in scatter.layout.title.text
